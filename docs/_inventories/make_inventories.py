"""Write the small Sphinx inventories (``*.inv``) that ``docs/conf.py`` gives intersphinx.

The documentation builds offline, so intersphinx cannot download the projects'
``objects.inv``. These files list, for each project, the objects our pages refer to
(the types numpydoc links in the API reference, "See Also" entries, roles in the
docstrings), with their addresses in that project's online documentation: the links
of the built site point there, and the build needs no network.

A new reference to another project's object (a type in a docstring, say) needs a line
below; then run ``python docs/_inventories/make_inventories.py`` and commit the
``.inv`` files. An object missing here stays plain text (tests/test_docs.py fails if
a raw ``python:`` or ``numpy:`` target shows in the pages).

Each entry is ``(name, domain:role, uri, display name)``; a ``uri`` ending in ``$``
stands for the name, and the display name ``-`` for the name (Sphinx's inventory
format, version 2; ``uri`` is relative to the base address in ``conf.py``).
"""

import zlib
from pathlib import Path

HERE = Path(__file__).absolute().parent

PYTHON_EXCEPTIONS = ("Exception", "FloatingPointError", "ImportError",
                     "NotImplementedError", "RuntimeError", "RuntimeWarning", "TypeError",
                     "UserWarning", "ValueError", "Warning")

INVENTORIES = {
    "python": ("Python", "3", [
        ("None", "py:data", "library/constants.html#$", "-"),
        ("True", "py:data", "library/constants.html#$", "-"),
        ("False", "py:data", "library/constants.html#$", "-"),
        ("bool", "py:class", "library/functions.html#$", "-"),
        ("int", "py:class", "library/functions.html#$", "-"),
        ("float", "py:class", "library/functions.html#$", "-"),
        ("object", "py:class", "library/functions.html#$", "-"),
        ("slice", "py:class", "library/functions.html#$", "-"),
        ("callable", "py:function", "library/functions.html#$", "-"),
        ("str", "py:class", "library/stdtypes.html#$", "-"),
        ("list", "py:class", "library/stdtypes.html#$", "-"),
        ("tuple", "py:class", "library/stdtypes.html#$", "-"),
        ("dict", "py:class", "library/stdtypes.html#$", "-"),
        ("set", "py:class", "library/stdtypes.html#$", "-"),
        ("range", "py:class", "library/stdtypes.html#$", "-"),
        ("contextlib.contextmanager", "py:function", "library/contextlib.html#$", "-"),
        ("collections.namedtuple", "py:function", "library/collections.html#$", "-"),
        *((name, "py:exception", "library/exceptions.html#$", "-")
          for name in PYTHON_EXCEPTIONS),
        ("iterable", "std:term", "glossary.html#term-iterable", "-"),
        ("sequence", "std:term", "glossary.html#term-sequence", "-"),
        ("generator", "std:term", "glossary.html#term-generator", "-"),
        ("bltin-boolean-values", "std:label", "library/stdtypes.html#bltin-boolean-values",
         "Boolean Type - bool"),
    ]),
    "numpy": ("NumPy", "stable", [
        ("numpy", "py:module", "index.html#module-numpy", "-"),
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#$", "-"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#$", "-"),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html#$",
         "-"),
        ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$", "-"),
        ("numpy.inf", "py:data", "reference/constants.html#$", "-"),
        ("numpy.nan", "py:data", "reference/constants.html#$", "-"),
        ("array_like", "std:term", "glossary.html#term-array_like", "-"),
        ("arrays.scalars", "std:label", "reference/arrays.scalars.html#arrays-scalars",
         "Scalars"),
    ]),
    "scipy": ("SciPy", "stable", [
        ("scipy.stats.chatterjeexi", "py:function",
         "reference/generated/scipy.stats.chatterjeexi.html#$", "-"),
        ("scipy.stats.PermutationMethod", "py:class",
         "reference/generated/scipy.stats.PermutationMethod.html#$", "-"),
    ]),
    "sklearn": ("scikit-learn", "stable", [
        (name, role, f"modules/generated/{name}.html#$", "-") for name, role in [
            ("sklearn.base.BaseEstimator", "py:class"),
            ("sklearn.base.TransformerMixin", "py:class"),
            ("sklearn.feature_selection.SelectorMixin", "py:class"),
            ("sklearn.feature_selection.SequentialFeatureSelector", "py:class"),
            ("sklearn.pipeline.Pipeline", "py:class"),
            ("sklearn.model_selection.GridSearchCV", "py:class"),
            ("sklearn.utils.estimator_checks.check_estimator", "py:function"),
            ("sklearn.datasets.load_diabetes", "py:function"),
            ("sklearn.datasets.load_digits", "py:function"),
        ]
    ]),
    "torch": ("PyTorch", "stable", [
        ("torch", "py:module", "index.html#module-torch", "-"),
        ("torch.Tensor", "py:class", "tensors.html#$", "-"),
        ("torch.func", "py:module", "func.api.html", "-"),
        ("torch.utils.data.Dataset", "py:class", "data.html#$", "-"),
        ("torch.utils.data.DataLoader", "py:class", "data.html#$", "-"),
        *((f"torch.nn.{name}", "py:class", f"generated/torch.nn.{name}.html#$", "-")
          for name in ("Module", "Linear", "Conv1d", "Conv2d", "Conv3d",
                       "MultiheadAttention", "TransformerEncoderLayer",
                       "CrossEntropyLoss")),
    ]),
    "pandas": ("pandas", "stable", [
        ("pandas.DataFrame", "py:class", "reference/api/pandas.DataFrame.html#$", "-"),
        ("pandas.Series", "py:class", "reference/api/pandas.Series.html#$", "-"),
    ]),
}


def inventory(project, version, entries):
    """The bytes of an ``objects.inv`` (format version 2) listing ``entries``."""
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    body = "".join(f"{name} {role} {-1 if role.startswith('std:') else 1} {uri} {display}\n"
                   for name, role, uri, display in entries)
    return header.encode() + zlib.compress(body.encode())


def main():
    for key, (project, version, entries) in INVENTORIES.items():
        path = HERE / f"{key}.inv"
        path.write_bytes(inventory(project, version, entries))
        print(f"{path.name}: {len(entries)} objects")


if __name__ == "__main__":
    main()
