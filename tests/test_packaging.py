"""Packaging metadata: the license is an SPDX expression (no setuptools deprecation
banner at install time) and the build backend is recent enough to read it."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

PYPROJECT = Path(__file__).absolute().parents[1] / "pyproject.toml"


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression(pyproject):
    license_ = pyproject["project"]["license"]
    assert license_ == "BSD-3-Clause"  # a string, not the deprecated {text = ...} table
    classifiers = pyproject["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")]  # forbidden with it


def test_build_backend_reads_spdx_licenses(pyproject):
    """setuptools supports ``project.license`` as an SPDX string from version 77."""
    requires = pyproject["build-system"]["requires"]
    setuptools = [r for r in requires if re.match(r"setuptools\b", r)]
    assert len(setuptools) == 1
    match = re.fullmatch(r"setuptools\s*>=\s*(\d+)(\.\d+)*", setuptools[0])
    assert match and int(match.group(1)) >= 77, setuptools[0]


def test_license_file_ships(pyproject):
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    text = (PYPROJECT.parent / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")


def test_docs_extras_install_the_copy_button(pyproject):
    """docs/conf.py loads sphinx_copybutton: the extras that build the docs install it."""
    extras = pyproject["project"]["optional-dependencies"]
    for extra in ("docs", "test"):
        assert any(r.startswith("sphinx-copybutton") for r in extras[extra]), extra
