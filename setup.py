"""Build the compiled neighbour kernels; everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("chatterjee.backends._joint", ["chatterjee/backends/_joint.pyx"],
                   extra_compile_args=["-O3", "-ffp-contract=off"])],
        compiler_directives={"language_level": "3"},
    )
)
