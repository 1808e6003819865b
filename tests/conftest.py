"""Shared test helpers: the R FOCI reference values.

The reference values live in ``shared/reference/foci/`` *beside* the repository root
(``<repo>/../shared/reference/foci``), not inside it. In CI the repository is cloned
elsewhere with a copy of ``shared/`` next to it, so the folder is always located
relative to this file, never by an absolute path. When it is absent, the tests that
need it are skipped with a message saying where it was looked for.
"""

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# No test may depend on how busy the machine is: no per-example deadline, and no
# health check that times data generation.
settings.register_profile("unhurried", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("unhurried")

REPO_ROOT = Path(__file__).absolute().parents[1]
REFERENCE_DIR = Path(__file__).absolute().parents[2] / "shared" / "reference" / "foci"
MISSING_REFERENCE = (
    f"R FOCI reference values not found: expected the folder {REFERENCE_DIR} "
    "(shared/reference/foci/ beside the repository root); put a copy of shared/ next "
    "to the checkout to run these tests."
)


def reference_available():
    return REFERENCE_DIR.is_dir() and any(REFERENCE_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def load_reference(name):
    """The parsed reference file ``name`` (e.g. ``"c01_uncond_n20_z1_quadratic.json"``)."""
    with open(REFERENCE_DIR / name, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def reference_dir():
    """Path of the R FOCI reference folder; skips the test when it is absent."""
    if not reference_available():
        pytest.skip(MISSING_REFERENCE)
    return REFERENCE_DIR


def _reference_params(prefix, fn=None):
    """One ``pytest.param((file name, call index))`` per call in the ``prefix*`` files
    (only the calls of function ``fn`` when it is given)."""
    if not reference_available():
        return [pytest.param(None, id="reference-missing",
                             marks=pytest.mark.skip(reason=MISSING_REFERENCE))]
    params = []
    for path in sorted(REFERENCE_DIR.glob(f"{prefix}*.json")):
        for index, call in enumerate(load_reference(path.name)["calls"]):
            if fn is None or call["fn"] == fn:
                case_id = f"{path.stem.split('_')[0]}-{index}-{call['fn']}"
                params.append(pytest.param((path.name, index), id=case_id))
    if not params:
        return [pytest.param(None, id="no-cases", marks=pytest.mark.skip(
            reason=f"no {fn or ''} calls in {prefix}*.json files in {REFERENCE_DIR}"))]
    return params


_CASE_FIXTURES = {
    "exact_case": ("c", None),       # tie-free codec and xi calls
    "ties_codec_case": ("t", "codec"),
    "ties_xi_case": ("t", "xi"),
}


def pytest_generate_tests(metafunc):
    """Parametrize the ``*_case`` fixtures over the calls of the reference files."""
    for fixture, (prefix, fn) in _CASE_FIXTURES.items():
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, _reference_params(prefix, fn))


def _call_data(case):
    name, index = case
    data = load_reference(name)
    call = data["calls"][index]
    inputs = data["inputs"]

    def block(names):
        return np.column_stack([np.asarray(inputs[c], dtype=np.float64) for c in names])

    return {
        "file": name,
        "call": call,
        "y": np.asarray(inputs[call["Y"]], dtype=np.float64),
        "z": block(call["Z"]),
        "x": block(call["X"]) if "X" in call else None,
    }


@pytest.fixture
def exact_call(exact_case, reference_dir):
    """Data and R's answer for one call of a ``c*`` file (tie-free data)."""
    return _call_data(exact_case)


@pytest.fixture
def ties_codec_call(ties_codec_case, reference_dir):
    """Data and R's values for one codec call of a ``t*`` file (data with ties)."""
    return _call_data(ties_codec_case)


@pytest.fixture
def ties_xi_call(ties_xi_case, reference_dir):
    """Data and R's values for one xi call of a ``t*`` file (ties in x)."""
    return _call_data(ties_xi_case)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's small torch problems on one thread (torch and BLAS): threads only
    add overhead there, and stall on a busy machine. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    torch = pytest.importorskip("torch")
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
