"""``import chatterjee`` is cheap: heavy and optional modules are loaded on first use."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).absolute().parents[1]
HEAVY = ("torch", "cupy", "sklearn", "scipy.stats")


def run_python(code):
    """Run ``code`` in a fresh interpreter that imports this checkout; return its JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      env.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               text=True, env=env, cwd=REPO_ROOT, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_import_is_light():
    """Lightness is counted, not timed: the only packages outside the standard library
    that ``import chatterjee`` loads are NumPy and array-api-compat (speed belongs in
    benchmarks; a clock would fail on a busy machine)."""
    report = run_python(f"""
import json, sys
before = set(sys.modules)
import chatterjee
packages = {{name.partition(".")[0] for name in set(sys.modules) - before}}
outside = sorted(name for name in packages
                 if name not in sys.stdlib_module_names and name != "chatterjee")
print(json.dumps({{"file": chatterjee.__file__, "outside": outside,
                  "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
""")
    assert Path(report["file"]).absolute().parent == REPO_ROOT / "chatterjee"
    assert report["loaded"] == [], f"import chatterjee imported {report['loaded']}"
    assert report["outside"] == ["array_api_compat", "numpy"]


def test_public_functions_load_without_optional_modules():
    """Resolving xi, codec and lcodec loads neither torch, cupy, sklearn nor
    scipy.stats (that one only when a permutation p-value is asked for)."""
    report = run_python(f"""
import json, sys
from chatterjee import codec, xi, lcodec, ConstantInputWarning, CodecResult, XiResult
print(json.dumps({{"loaded": [m for m in {HEAVY!r} if m in sys.modules],
                  "callable": [callable(f) for f in (codec, xi, lcodec)]}}))
""")
    assert report["loaded"] == []
    assert report["callable"] == [True, True, True]


def test_public_names_are_functions_in_any_import_order():
    """The functions share their modules' names; importing a submodule first must not
    leave the package attribute bound to the module."""
    report = run_python("""
import json
from chatterjee import lcodec, codec
import chatterjee.xi
import chatterjee
print(json.dumps([callable(f) for f in (lcodec, codec, chatterjee.codec, chatterjee.xi)]))
""")
    assert report == [True, True, True, True]


def test_unknown_attribute_and_dir():
    import chatterjee

    with pytest.raises(AttributeError, match="no_such_name"):
        chatterjee.no_such_name  # noqa: B018
    assert {"xi", "codec", "lcodec", "ConstantInputWarning"} <= set(dir(chatterjee))
    assert isinstance(chatterjee.__version__, str)
