"""The convolutional autoencoder: Encoder and Decoder, training, reconstruction metrics, the PCA baseline, and the
report's configs and trained models."""

from __future__ import annotations

import time
import torch
import torch.nn as nn
import torch.nn.functional as F
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .settings import FULL, RECIPE, Recipe
from .runtime import DEVICE, adam, autocast, batches, set_seed, tqdm
from .cache import cached_model, train_side_by_side
from .data import DIGIT_AREA, check_images, load_mnist


# Autoencoder: Encoder and Decoder, with a fully connected or a purely convolutional bottleneck

BOTTLENECKS = ("fc", "linear", "conv")


@dataclass(frozen=True)
class AEConfig:
    """Everything that defines one trained autoencoder; with the precision and the training code,
    its hash names the checkpoint."""

    d: int = FULL.report_d  # latent size
    bottleneck: str = "fc"  # how the 4x4 map becomes d numbers: "fc", "linear" or "conv" (see Encoder)
    channels: tuple = (16, 32, 64)  # conv widths at 16x16, 8x8, 4x4
    hidden: tuple = (512,)  # "fc": widths of the hidden fully connected layers (the report's fc512 design)
    conv_width: int = 64  # "conv": channels of the extra 2x2 map
    epochs: int = FULL.ae_epochs
    batch_size: int = FULL.ae_batch_size
    lr: float = FULL.ae_lr  # peak of the one-cycle schedule
    train_size: int = FULL.ae_train_size  # the first train_size training images; the rest are held out
    val_size: int = FULL.ae_val_size  # held-out training images whose MSE is recorded after every epoch
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


def reconstruction_loss(logits, x):
    # Bernoulli likelihood of the pixels (Kingma & Welling 2014, appendix C.1), on logits for stability.
    return F.binary_cross_entropy_with_logits(logits, x)


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
    # channels_last activations: 29.2 against 34.3 ms per bfloat16 step at batch 128 on one CPU thread (1.18x)
    model.to(memory_format=torch.channels_last)
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


# The report's models: which configs the notebook trains, and loading them back


def ae_config(d: int | None = None, design: str | None = None, seed: int = 0, epochs: int | None = None,
              recipe: Recipe | None = None) -> AEConfig:
    """The one way to build an autoencoder's config: the recipe's autoencoder with latent size d (the report's
    by default), a bottleneck design of recipe.bottleneck_designs (the report's by default) and the recipe's
    epochs unless `epochs` says otherwise. `autoencoder(ae_config(d))` is the report's trained model of size d."""
    recipe = recipe or RECIPE
    d = recipe.report_d if d is None else d
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ValueError(f"d must be a positive integer or None, got {d!r}")
    design = recipe.report_design if design is None else design
    if design not in recipe.bottleneck_designs:
        raise ValueError(f"design must be one of {sorted(recipe.bottleneck_designs)}, got {design!r}")
    return AEConfig(d=d, seed=seed, epochs=epochs or recipe.ae_epochs, lr=recipe.ae_lr, batch_size=recipe.ae_batch_size,
                    train_size=recipe.ae_train_size, val_size=recipe.ae_val_size, **recipe.bottleneck_designs[design])


def autoencoder(config: AEConfig, images: torch.Tensor | None = None, required: bool = False,
                progress: bool = True, folder: Path | None = None):
    """The one way to get a trained autoencoder: the Autoencoder of `config` (in eval mode) with its training
    info, from the cache, or trained on `images` now; `required=True` refuses to train."""
    def train(model):
        if images is None:
            raise FileNotFoundError(f"no cached autoencoder for {config}; run `{settings.TRAIN_COMMAND}`")
        return train_autoencoder(model, images, progress)

    if required and config.d not in RECIPE.sweep_ds:
        raise ValueError(f"d={config.d} was not trained by the report; trained sizes: {RECIPE.sweep_ds}")
    return cached_model(config, Autoencoder, train, required=required, folder=folder)


def _train_in_worker(config: AEConfig, threads: int, folder: Path) -> None:
    torch.set_num_threads(threads)
    autoencoder(config, load_mnist(train=True)[0], progress=False, folder=folder)


def train_missing(configs: list, images: torch.Tensor) -> None:
    """Train the configs that have no checkpoint yet side by side (cache.train_side_by_side), so that
    `autoencoder(config)` loads each. The workers read MNIST's training images themselves, so `images` must be
    those."""
    def check():
        if not torch.equal(images[:100], load_mnist(train=True)[0][:100]):
            raise ValueError("images must be MNIST's training images when models train in worker processes")

    train_side_by_side(configs, lambda c: c.epochs, _train_in_worker, "autoencoders", check)


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
