"""The documentation site builds, with warnings as errors, and lists every public name.

The build runs Sphinx in a subprocess on a copy of ``docs/`` and ``examples/`` (so
that nothing is written into the checkout), without running the gallery's examples
(``-D plot_gallery=0``): ``make docs`` runs them. Skipped when the docs tools (the
``docs`` extra, also in ``test``) are not installed.
"""

import ast
import html
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import chatterjee
import chatterjee.datasets

REPO = Path(__file__).absolute().parents[1]
DOCS = REPO / "docs"
DOC_TOOLS = ("sphinx", "numpydoc", "myst_parser", "sphinx_gallery", "pydata_sphinx_theme",
             "sphinx_copybutton")
# intersphinx's names of the projects we link to: one left as a raw prefix in a page
# ("python:int") is a reference its inventory in docs/_inventories/ lacks
INVENTORY_NAMES = ("python", "numpy", "scipy", "sklearn", "torch", "pandas")
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
    check_rendered_site(out)


def visible_text(page):
    """The text of an HTML page as a reader sees it (no tags, scripts or styles)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def check_rendered_site(out):
    """Links to other projects, formulas and copy buttons in the built HTML."""
    raw = re.compile(rf"\b(?:{'|'.join(INVENTORY_NAMES)}):[A-Za-z_][\w.-]*")
    pages = {path.relative_to(out).as_posix(): path.read_text(encoding="utf-8")
             for path in out.rglob("*.html")}
    texts = {name: visible_text(page) for name, page in pages.items()}
    unresolved = {name: sorted(set(raw.findall(text)))
                  for name, text in texts.items() if raw.search(text)}
    assert not unresolved, f"raw targets, add them to _inventories: {unresolved}"
    # types link to the online documentation of Python, NumPy, SciPy, torch
    codec_page = pages["api/generated/chatterjee.codec.html"]
    for href in ("https://docs.python.org/3/library/functions.html#int",
                 "https://numpy.org/doc/stable/reference/random/generator.html"
                 "#numpy.random.Generator",
                 "https://docs.scipy.org/doc/scipy/reference/generated/"
                 "scipy.stats.PermutationMethod.html#scipy.stats.PermutationMethod"):
        assert f'href="{href}"' in codec_page, href
    # formulas are math, not code
    for name in ("guide/xi-codec.html", "unlearning.html", "index.html"):
        assert 'class="math notranslate nohighlight"' in pages[name], name
    assert "mean_i loss(w, z_i)" not in visible_text(pages["unlearning.html"])
    # code blocks get a copy button
    assert (out / "_static" / "copybutton.js").is_file()
    assert "copybutton.js" in pages["getting-started.html"]


def test_intersphinx_reads_local_inventories_only():
    """The build needs no network: every intersphinx inventory is a file in docs/, and
    each is what _inventories/make_inventories.py writes."""
    tree = ast.parse((DOCS / "conf.py").read_text(encoding="utf-8"))
    mapping = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign)
                   and [getattr(t, "id", None) for t in node.targets]
                   == ["intersphinx_mapping"])
    assert set(mapping) == set(INVENTORY_NAMES)
    sys.path.insert(0, str(DOCS / "_inventories"))
    try:
        import make_inventories
    finally:
        sys.path.pop(0)
    for name, (url, inventory) in mapping.items():
        assert url.startswith("https://"), name
        path = DOCS / inventory
        assert path.is_file(), f"{name}: {inventory} is not in docs/"
        expected = make_inventories.inventory(*make_inventories.INVENTORIES[name])
        header, _, body = path.read_bytes().partition(b"zlib.\n")
        wanted_header, _, wanted_body = expected.partition(b"zlib.\n")
        assert (header, zlib.decompress(body)) == (wanted_header,
                                                   zlib.decompress(wanted_body)), \
            f"{inventory} is stale: run python docs/_inventories/make_inventories.py"
