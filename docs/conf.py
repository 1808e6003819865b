"""Sphinx configuration of the chatterjee documentation.

Why Sphinx (and not MkDocs): the users of this library come from SciPy and
scikit-learn, whose documentation is Sphinx + numpydoc + sphinx-gallery +
pydata-sphinx-theme. Our docstrings are numpydoc already, so the API reference is
generated from them as those projects do, and sphinx-gallery turns the scripts in
``examples/`` into a gallery with their plots and downloadable notebooks. MyST
(myst-parser) lets the guide stay in Markdown, readable on GitHub as it is.

Build: ``make docs`` (HTML in ``docs/_build/html``). The build works offline:
intersphinx reads small local inventories (``_inventories/*.inv``, written by
``_inventories/make_inventories.py``) that list the objects of Python, NumPy, SciPy,
scikit-learn, PyTorch and pandas our pages refer to, with their online addresses, so
the links point to those projects' documentation and nothing is downloaded. Formulas
are rendered by MathJax in the reader's browser. ``-D plot_gallery=0`` builds without
running the examples (what ``tests/test_docs.py`` does).
"""

import importlib
import os
import pkgutil
import sys
from pathlib import Path

DOCS = Path(__file__).absolute().parent
ROOT = DOCS.parent
if (ROOT / "chatterjee").is_dir():  # a checkout: document the code beside it
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import chatterjee  # noqa: E402

project = "chatterjee"
author = "the chatterjee developers"
copyright = "the chatterjee developers"  # noqa: A001
release = chatterjee.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "README.md",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "**.ipynb_checkpoints",
]
templates_path = ["_templates"]
html_static_path = ["_static"]

# Pages written by others (docs/backends.md, docs/spurious.md, docs/unlearning.md)
# join the guide's toctree when they exist (see _optional_pages_toctree below). A
# Markdown page added to docs/ but not yet in a toctree is not an error either (it is
# still built and reachable by links).
suppress_warnings = ["toc.not_included"]

# -- MyST: the .md pages stay plain GitHub Markdown ------------------------------
myst_heading_anchors = 3  # links like benchmarks.md#markov-blankets-on-the-... work
# $...$ and $$...$$ are formulas (rendered by MathJax), as on GitHub
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]

# -- Links to other projects' documentation, offline ----------------------------------
# (base address of the online documentation, local inventory listing what we link to)
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", "_inventories/python.inv"),
    "numpy": ("https://numpy.org/doc/stable", "_inventories/numpy.inv"),
    "scipy": ("https://docs.scipy.org/doc/scipy", "_inventories/scipy.inv"),
    "sklearn": ("https://scikit-learn.org/stable", "_inventories/sklearn.inv"),
    "torch": ("https://docs.pytorch.org/docs/stable", "_inventories/torch.inv"),
    "pandas": ("https://pandas.pydata.org/docs", "_inventories/pandas.inv"),
}
intersphinx_timeout = 1  # never used: every inventory is a local file

# -- Copy buttons on code blocks (prompts and outputs of >>> blocks are not copied) --
copybutton_exclude = ".linenos, .gp, .go"

# -- API reference ----------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Parameter and return types become links where they name a documented object (as in
# scikit-learn's reference: ``FociResult`` in a Returns section); other words stay text.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
# numpydoc links int, float, str, None, bool, ndarray, array_like... into the Python
# and NumPy documentation (intersphinx, above). These names of other projects in our
# docstrings' types link too; their targets must be in _inventories/.
numpydoc_xref_aliases = {
    **{name: f":class:`{name}`" for name in (
        "numpy.random.Generator", "scipy.stats.PermutationMethod", "torch.Tensor",
        "torch.nn.Module", "pandas.DataFrame")},
    "object": ":class:`python:object`",
    "range": ":class:`python:range`",
    "Tensor": "torch.Tensor",
    "Dataset": "torch.utils.data.Dataset",
    "DataLoader": "torch.utils.data.DataLoader",
    "DataFrame": "pandas.DataFrame",
}
# "See Also" entries and roles resolve within the package, or through intersphinx;
# others (joblib.parallel_config) stay text.
nitpicky = False

# -- Gallery ------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
}

# -- HTML ---------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"chatterjee {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "getting-started": [], "benchmarks": []}
html_show_sourcelink = False
html_copy_source = False


# -- API pages of the optional, torch-based subpackages -----------------------------
# chatterjee.regularize needs torch; chatterjee.unlearn needs torch and is being
# written. Their reference pages are generated here from what imports when the docs
# are built: autosummary entries for the modules that exist, a note otherwise.

def _importable(name):
    try:
        return importlib.import_module(name), None
    except Exception as error:  # ImportError, or torch missing inside the module
        return None, f"{type(error).__name__}: {error}"


def _autosummary(module_name, names, toctree="generated"):
    lines = [f".. currentmodule:: {module_name}", "", ".. autosummary::",
             f"   :toctree: {toctree}", ""]
    lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"


def _optional_api_page(package, title, blurb):
    header = f"{title}\n{'=' * len(title)}\n\n{blurb}\n\n"
    module, error = _importable(package)
    if module is None:
        return header + (
            f".. note::\n\n   ``{package}`` could not be imported when these pages were "
            f"built ({error}); its reference is omitted. Install the ``torch`` extra "
            "to build it.\n"
        )
    body = f".. automodule:: {package}\n   :no-members:\n\n"
    public = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
    if public:
        return header + body + _autosummary(package, public)
    sections = []
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if info.name.startswith("_"):
            continue
        name = f"{package}.{info.name}"
        submodule, error = _importable(name)
        if submodule is None:
            sections.append(f"``{name}``\n{'-' * (len(name) + 4)}\n\n"
                            f"Not importable in this build ({error}).\n")
            continue
        names = [n for n in getattr(submodule, "__all__", []) if not n.startswith("_")]
        if names:
            sections.append(f"``{name}``\n{'-' * (len(name) + 4)}\n\n"
                            + _autosummary(name, names))
    if not sections:
        sections.append("Nothing public yet: the subpackage is being written.\n")
    return header + body + "\n".join(sections)


_NEEDS_TORCH = ("Needs torch: from a clone of the repository, "
                '``pip install -e ".[torch]"`` (the package is not on PyPI)')
_OPTIONAL_PAGES = {
    "api/regularize.rst": (
        "chatterjee.regularize", "chatterjee.regularize: spurious-feature regularization",
        _NEEDS_TORCH + ".",
    ),
    "api/unlearn.rst": (
        "chatterjee.unlearn", "chatterjee.unlearn: deep unlearning",
        _NEEDS_TORCH + ". The subpackage is being "
        "written: this page lists what exists in the version the docs were built from.",
    ),
}
for _page, _args in _OPTIONAL_PAGES.items():
    _text = _optional_api_page(*_args)
    _path = DOCS / _page
    if not _path.exists() or _path.read_text(encoding="utf-8") != _text:
        _path.write_text(_text, encoding="utf-8")


# -- Tolerance for docstrings written elsewhere -------------------------------------
# Two patterns in the package's docstrings are fine as text but not as reST; they are
# fixed on the fly here rather than failing the build:
# * autosummary cuts a summary line at its first ". ", which splits an inline literal
#   containing "..." (``Y = (X1 + ... + Xp) mod 1`` in make_codec_example): the summary
#   line gets a one-character ellipsis instead;
# * a shape written as ``(n_features_in_,)`` in an Attributes type (the selectors)
#   reads as a link to a target "n_features_in": the trailing underscore is escaped.
import re  # noqa: E402

_SHAPE_UNDERSCORE = re.compile(r"(?<=[A-Za-z0-9])_(?=,?\s*\))")


def _tolerate_docstrings(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if line.strip():
            if "``" in line and "..." in line:
                lines[i] = line.replace("...", "\u2026")
            break
    for i, line in enumerate(lines):
        if line.lstrip().startswith((">>>", "...")):
            continue
        parts = line.split("`")  # even parts are outside any backquoted span
        parts[::2] = [_SHAPE_UNDERSCORE.sub(r"\_", part) for part in parts[::2]]
        lines[i] = "`".join(parts)


# -- Pages written by others, in the guide's toctree when they exist ----------------
OPTIONAL_GUIDE_PAGES = ["backends", "spurious", "unlearning"]
_OPTIONAL_MARKER = "% optional pages: filled in by conf.py"


def _optional_pages_toctree(app, docname, source):
    if docname != "guide/index" or _OPTIONAL_MARKER not in source[0]:
        return
    present = [page for page in OPTIONAL_GUIDE_PAGES if (DOCS / f"{page}.md").exists()]
    toctree = ""
    if present:
        entries = "\n".join(f"../{page}" for page in present)
        toctree = f"```{{toctree}}\n:maxdepth: 1\n:caption: More\n\n{entries}\n```\n"
    source[0] = source[0].replace(_OPTIONAL_MARKER, toctree)


def setup(app):
    # after numpydoc (priority 500), on the reST it produced
    app.connect("autodoc-process-docstring", _tolerate_docstrings, priority=600)
    app.connect("source-read", _optional_pages_toctree)
