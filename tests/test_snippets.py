"""Every ```python block of README.md and of the documentation's Markdown pages runs.

The blocks of one file run in order in one namespace (a page may build on its earlier
blocks), in a temporary directory. A block in doctest form (``>>>`` prompts) runs its
code; its printed outputs are illustrations and are not compared.

What a block needs is written in the block, as a comment line that readers see too:

* ``# requires: torch`` (or ``cupy``, ``matplotlib``, ``pandas``): the block is
  skipped when that module is not installed;
* ``# requires: cuda``: the block is skipped without a CUDA device.

A block that imports torch or cupy needs no comment: it is skipped when the module is
missing. A skipped block must not define names that later blocks of its file use.
"""

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).absolute().parents[1]
DOCS = REPO / "docs"
GENERATED = {"_build", "auto_examples", "generated"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^\n`]*)$")
REQUIRES = re.compile(r"^\s*(?:>>> |\.\.\. )?#\s*requires:\s*(?P<names>[\w ,]+?)\s*$",
                      re.MULTILINE)
IMPORTS = re.compile(r"^\s*(?:>>> )?(?:import|from)\s+(?P<module>torch|cupy)\b",
                     re.MULTILINE)


def markdown_files():
    pages = [REPO / "README.md"]
    pages += [path for path in sorted(DOCS.rglob("*.md"))
              if not GENERATED & set(path.relative_to(DOCS).parts)]
    return pages


def python_blocks(text):
    """``(line, source)`` of each ```python block of a Markdown text: ``line`` is the
    1-based line of its first code line."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        i += 1
        if not match:
            continue
        fence, indent = match["fence"], len(match["indent"])
        start, body = i, []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        i += 1
        if match["info"].split()[:1] in (["python"], ["py"], ["pycon"]):
            blocks.append((start + 1, "\n".join(body)))
    return blocks


def as_code(source):
    """The code of a block: doctest prompts removed and their outputs left out."""
    if not source.lstrip().startswith(">>>"):
        return source
    code = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            code.append(stripped[4:])
    return "\n".join(code)


def requirements(source):
    needs = {name.strip() for match in REQUIRES.finditer(source)
             for name in match["names"].split(",")}
    return needs | {match["module"] for match in IMPORTS.finditer(source)}


def missing(needs):
    """The first requirement that this machine does not meet, or None."""
    for name in sorted(needs):
        if name == "cuda":
            if importlib.util.find_spec("torch") is None:
                return "cuda (torch is not installed)"
            import torch

            if not torch.cuda.is_available():
                return "cuda"
        elif importlib.util.find_spec(name) is None:
            return name
    return None


PAGES = [path for path in markdown_files()
         if python_blocks(path.read_text(encoding="utf-8"))]


def test_the_pages_with_snippets_are_found():
    names = {path.relative_to(REPO).as_posix() for path in PAGES}
    assert {"README.md", "docs/getting-started.md", "docs/guide/foci.md",
            "docs/unlearning.md"} <= names


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path.relative_to(REPO).as_posix())
def test_snippets_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__snippet__"}
    skipped, ran = [], 0
    name = path.relative_to(REPO).as_posix()
    try:
        for line, source in python_blocks(path.read_text(encoding="utf-8")):
            reason = missing(requirements(source))
            if reason is not None:
                skipped.append(f"line {line}: needs {reason}")
                continue
            # the block's line numbers in tracebacks are those of the page
            code = compile("\n" * (line - 1) + as_code(source), f"{name}", "exec")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a snippet is not a warnings test
                exec(code, namespace)  # noqa: S102
            ran += 1
    finally:
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            plt.close("all")
    if skipped and not ran:
        pytest.skip("; ".join(skipped))


def test_block_parsing():
    text = ("Text\n\n```python\n>>> a = 1\n>>> a + 1\n2\n```\n\n```bash\nls\n```\n\n"
            "* item\n\n  ```python\n  # requires: cuda\n  b = 2\n  ```\n")
    blocks = python_blocks(text)
    assert [line for line, _ in blocks] == [4, 16]
    assert as_code(blocks[0][1]) == "a = 1\na + 1"
    assert blocks[1][1] == "# requires: cuda\nb = 2"
    assert requirements(blocks[1][1]) == {"cuda"}
    both = ">>> import torch\n>>> from cupy import asarray"
    assert requirements(both) == {"torch", "cupy"}
