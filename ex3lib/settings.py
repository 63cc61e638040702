"""The run's mode and folders, and the report's recipe: every setting the notebook uses, as one frozen value.

Three environment variables: EX3_SMOKE=1 runs the same code on tiny data and schedules (the regression
test), EX3_OUTPUT names the folder that receives figures/ and checkpoints/, EX3_DATA the folder that
caches MNIST (EX3_PRECISION is described at runtime.pick_precision).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = os.environ.get("EX3_SMOKE", "0") == "1"
OUTPUT_DIR = Path(os.environ.get("EX3_OUTPUT", ROOT))
FIGURES_DIR = OUTPUT_DIR / "figures"
CHECKPOINT_DIR = OUTPUT_DIR / "checkpoints"
DATA_DIR = Path(os.environ.get("EX3_DATA", ROOT / "data"))
TRAIN_COMMAND = "make report"  # the command that trains and caches every model of the report


def _frozen(mapping: dict):
    return field(default_factory=lambda: dict(mapping))


@dataclass(frozen=True)
class Recipe:
    """Every setting of the report, one place each. FULL is the report; SMOKE the same code, tiny."""

    # Section 1: the autoencoders.
    report_d: int = 10  # the latent size that sections 3-5 build on
    sweep_ds: tuple = (2, 4, 8, 10, 16, 32, 64)
    seed_ds: tuple = (4, 10, 64)  # latent sizes trained with every seed of `seeds`
    seeds: tuple = (0, 1, 2)
    # The report's autoencoder (d = report_d, sections 3-5) trains to the length its validation curve calls for, at
    # the rate refined there; section 1 compares designs and sizes at one shorter length, the autoencoder study's
    # grid length, at the rate its grid chose for that length (Appendix A shows how far that lies from the plateau
    # at d = 10 and 64).
    ae_epochs: int = 40
    ae_lr: float = 4e-3  # peak of the one-cycle schedule
    sweep_epochs: int = 10
    sweep_lr: float = 0.016
    ae_batch_size: int = 128
    ae_train_size: int = 55000  # the first training images ...
    ae_val_size: int = 5000  # ... and the next ones, held out
    train_size: int = 60000  # the training images load_mnist returns (the first ones): all of them in the report
    test_size: int = 10000  # the test images load_mnist returns: all of them in the report
    # The bottleneck designs compared at d = 10, all on the same trunk and recipe. conv_wide's 2x2 map is
    # as wide as needed to match fc128's parameter count.
    bottleneck_designs: dict = _frozen({
        "conv": dict(bottleneck="conv", conv_width=64),
        "conv_wide": dict(bottleneck="conv", conv_width=160),
        "linear": dict(bottleneck="linear"),
        "fc128": dict(bottleneck="fc", hidden=(128,)),
        "fc512": dict(bottleneck="fc", hidden=(512,)),
        "fc2x512": dict(bottleneck="fc", hidden=(512, 512)),
    })
    report_design: str = "fc512"  # the design of the sweep and of sections 2-5
    seeded_designs: int = 2  # the designs with the lowest held-out error that get every seed of `seeds`
    # Section 3: labelled images per draw, draws per label count, and each arm's recipe as the stored transfer study
    # chose it on validation images (search.picked_recipe; a test keeps the two equal): the frozen head's rate,
    # width and weight decay for every head, the arm's own searched settings, and its length (the longest of the
    # label counts' plateaus on its validation curve).
    label_counts: tuple = (10, 20, 50, 100, 1000)
    label_draws: int = 10
    transfer_settings: dict = _frozen({
        "frozen": dict(lr=1e-3, hidden=512, weight_decay=1e-4, steps=200),
        "selftrain": dict(lr=1e-3, hidden=512, weight_decay=1e-4, steps=200),  # the frozen head, then the rounds
        "finetune": dict(lr=1e-3, hidden=512, weight_decay=1e-4, encoder_lr=3e-4, batchnorm="train", steps=200),
        "whole": dict(lr=3e-4, hidden=512, weight_decay=1e-4, batchnorm="train", max_shift=2, steps=400),
        "scratch": dict(lr=1e-3, hidden=512, weight_decay=1e-4, max_shift=2, steps=1600),
    })
    cluster_setting: dict = _frozen(dict(dims=10, neighbors=15, components=10))  # UMAP size, neighbours, mixture
    transfer_max_steps: int = 0  # > 0 caps every arm's steps (the smoke mode)
    transfer_pool_size: int = 55000  # the unlabelled pool and the labelled draws: the autoencoder's training images
    selftrain_fractions: tuple = (0.1, 0.3, 0.5, 0.7, 0.9)  # share of the pool pseudo-labelled in each round
    selftrain_steps: int = 300  # training steps of each self-training round
    # Sections 4-5: the evaluation classifier trains on the autoencoders' training images only, so the
    # images held out after them are real digits it never saw: the independent floor of every distance.
    classifier_epochs: int = 8  # the classifier study's length
    classifier_train_size: int = 55000
    gan_seeds: tuple = (0, 1, 2)  # seeds of every latent GAN and mixture
    # The latent GANs' learning rate, R1 weight and width (shared by every latent GAN) and each family's length, as
    # the stored gan_k8 and gan_cgan studies chose them on validation FD (search.picked_recipe).
    gan_recipe: dict = _frozen(dict(lr=3e-4, r1=10.0, hidden=64))
    report_noise_dim: int = 8  # the Gaussian-noise GAN's, the conditional generator's and the interpolation's
    noise_sweep: tuple = (2, 4, 16)  # section 4: the Gaussian-noise GAN's other noise sizes k, at seed 0
    gan_steps: int = 192000  # unconditional, Gaussian noise
    cgan_steps: int = 48000  # conditional
    cgan_lr: float = 3e-4  # the conditional generator's learning rate (its own study's)
    cgan_aux_steps: int = 1000  # training steps of the conditional generator's digit classifier of codes
    cgan_aux_weight: float = 0.1  # weight of the auxiliary digit-classifier loss of the conditional generator
    # The mixture-prior latent GAN's starting recipe, which its study (gan_gmm_prior) searches from: it starts as a
    # Gaussian mixture fitted to the codes, refined adversarially at a constant learning rate, keeping a weight
    # average. The report does not use it (search.REPORT_GANS).
    mixture_steps: int = 4000
    mixture_lr: float = 3e-4
    mixture_ema: float = 0.999
    mixture_warmup: int = 300  # discriminator-only steps first: the generator starts at a good fit already
    gmm_components: int = 200  # the mixture baseline's size, by held-out log-likelihood of validation codes
    cgan_seeds: tuple = (0, 1, 2)  # section 5: seeds of both arms of the auxiliary-term ablation
    fd_draws: int = 20  # section 4: independent sample draws of one fixed sampler, for the FD's own noise
    fd_seed_draws: int = 3  # section 4: sample draws per trained sampler; its FD is their mean
    cluster_fits: int = 3  # section 3: seeds of cluster-then-label's projection and mixture; draw s uses fit s mod 3
    cas_size: int = 20000  # section 5: digits that train the train-on-generated classifier (and its real twin)
    digit_samples: int = 1000  # section 5: samples of each requested digit that its per-digit scores read

    def __post_init__(self):
        if not 0 < self.train_size <= 60000 or not 0 < self.test_size <= 10000:
            raise ValueError(f"train_size and test_size must be within MNIST's 60,000 and 10,000 images, got "
                             f"{self.train_size:,} and {self.test_size:,}")
        # Every part of the report that reads the first training images must find them among load_mnist's.
        readers = {"ae_train_size + ae_val_size": self.ae_train_size + self.ae_val_size,
                   "transfer_pool_size": self.transfer_pool_size, "classifier_train_size": self.classifier_train_size,
                   "cas_size": self.cas_size}
        for name, n in readers.items():
            if n > self.train_size:
                raise ValueError(f"{name} = {n:,} exceeds train_size = {self.train_size:,}, the training images "
                                 f"load_mnist returns")


FULL = Recipe()
# The regression test's recipe: the same code on tiny data and schedules. Two seeds wherever the report has
# three, so every per-seed statistic (standard deviations, agreement across seeds) still has two to run on,
# and three label counts: the smallest, the headline's 100 and the largest.
# The transfer pool's 1,500 codes hold at least 134 of every digit, enough for class-balanced draws of 1,000
# labels; below 4,096 codes UMAP finds exact neighbours, which avoids the numba compile of the NN-descent
# that the report's 60,000 codes use. The first 3,000 training images stand for the training set (the
# autoencoders' 1,024, the pool's 1,500, the 2,000 real digits of the train-on-generated twin) and the first
# 2,000 test images (at least 150 of every digit) for the test set.
SMOKE_RECIPE = replace(
    FULL, ae_epochs=2, sweep_epochs=1, ae_train_size=512, ae_val_size=512, seeds=(0, 1), label_counts=(10, 100, 1000),
    label_draws=2, transfer_max_steps=20, transfer_pool_size=1500, selftrain_fractions=(0.5,), selftrain_steps=20,
    classifier_epochs=1, classifier_train_size=512, gan_seeds=(0, 1), gan_steps=100, cgan_seeds=(0, 1),
    cgan_steps=100, fd_draws=3, fd_seed_draws=2, cluster_fits=2, cgan_aux_steps=100, mixture_steps=100,
    mixture_warmup=20, gmm_components=4, cas_size=2000, digit_samples=300, train_size=3000, test_size=2000)
RECIPE = SMOKE_RECIPE if SMOKE else FULL  # the recipe of this process
