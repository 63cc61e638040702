"""Test settings: smoke mode, and every file the run writes goes to a temporary folder.

These variables are set before helpers is imported, and the kernel that nbval starts for
ex3.ipynb inherits them, so running the tests never touches the committed figures/.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

_OUTPUT = tempfile.mkdtemp(prefix="ex3-test-")
os.environ["EX3_SMOKE"] = "1"
os.environ["EX3_OUTPUT"] = _OUTPUT
# Under pytest-xdist (make test runs two workers, one per core) every worker and the notebook's kernel compute on
# one thread: two processes of two OpenMP threads each on two cores spend their time waiting on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for library in ("OMP", "MKL", "NUMBA"):
        os.environ[f"{library}_NUM_THREADS"] = "1"
# numba (under umap) compiles its functions in every process that first fits a projection; kept on disk,
# the compiled code is reused by the notebook's kernel and by later runs.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent / ".venv" / "numba-cache"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402


def pytest_configure(config):
    """Under pytest-xdist the workers start together: the controller (or a run without workers) fetches MNIST
    into data/ first, so that the workers read one finished cache instead of each building it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        from ex3lib.data import mnist_arrays

        mnist_arrays()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_OUTPUT, ignore_errors=True)


def patch_everywhere(monkeypatch, name: str, value) -> None:
    """Rebind `name` in helpers and in every module of ex3lib that binds it (each module looks its names up
    in its own namespace), for one test."""
    import helpers

    modules = [helpers] + [m for key, m in sorted(sys.modules.items()) if key.startswith("ex3lib.")]
    found = [m for m in modules if hasattr(m, name)]
    assert found, f"no module binds {name}"
    for module in found:
        monkeypatch.setattr(module, name, value)


@pytest.fixture
def patch(monkeypatch):
    """patch(name, value): patch_everywhere for one test."""
    return lambda name, value: patch_everywhere(monkeypatch, name, value)


@pytest.fixture
def checkpoint_dir(tmp_path, patch):
    """An empty checkpoint cache for one test."""
    patch("CHECKPOINT_DIR", tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


@pytest.fixture
def no_test_images(patch):
    """MNIST's training images only: a test that asks for the test set (load_mnist(train=False)) fails."""
    from ex3lib import data

    real = data.load_mnist

    def training_set_only(train=True, folder=None):
        if train is not True:
            raise AssertionError("the validation search asked for the test set")
        return real(train, folder)

    patch("load_mnist", training_set_only)
