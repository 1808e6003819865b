"""The documentation site builds, with warnings as errors, and lists every public name.

The build runs Sphinx in a subprocess on a copy of ``docs/`` and ``examples/`` (so
that nothing is written into the checkout), without running the gallery's examples
(``-D plot_gallery=0``): ``make docs`` runs them. Skipped when the docs tools (the
``docs`` extra, also in ``test``) are not installed.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chatterjee
import chatterjee.datasets

REPO = Path(__file__).absolute().parents[1]
DOCS = REPO / "docs"
DOC_TOOLS = ("sphinx", "numpydoc", "myst_parser", "sphinx_gallery", "pydata_sphinx_theme")
GENERATED = ("_build", "auto_examples", "generated", "sg_execution_times.rst",
             "regularize.rst", "unlearn.rst", "__pycache__")


@pytest.mark.parametrize("module", [chatterjee, chatterjee.datasets],
                         ids=lambda module: module.__name__)
def test_api_reference_lists_every_public_name(module):
    text = (DOCS / "api" / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^ {3}(\w+)$", text, flags=re.MULTILINE))
    missing = sorted(set(module.__all__) - listed)
    assert not missing, f"add to docs/api/index.rst: {missing}"


def test_every_example_is_a_gallery_script():
    examples = sorted((REPO / "examples").glob("*.py"))
    assert examples
    for path in examples:
        assert path.name.startswith("plot_"), path.name
        assert path.read_text(encoding="utf-8").startswith('"""'), f"{path.name}: docstring first"


def test_docs_build_without_warnings(tmp_path):
    for tool in DOC_TOOLS:
        pytest.importorskip(tool, reason=f"{tool} missing: install the docs extra")
    source = tmp_path / "src"
    shutil.copytree(DOCS, source / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(REPO / "examples", source / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "html"
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"),
               str(source / "docs"), str(out)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"the docs build failed:\n{run.stderr[-6000:]}"
    for page in ("index.html", "getting-started.html", "guide/foci.html",
                 "api/index.html", "api/generated/chatterjee.foci.html",
                 "api/generated/chatterjee.datasets.make_bullseye.html",
                 "auto_examples/index.html", "benchmarks.html"):
        assert (out / page).is_file(), page
