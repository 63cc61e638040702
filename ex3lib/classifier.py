"""Classifiers: fitting a classifier of fixed inputs, accuracy, and the evaluation classifier whose features the
Frechet distance compares."""

from __future__ import annotations

import time
import torch
import torch.nn as nn
import torch.nn.functional as F
from dataclasses import dataclass
from dataclasses import replace

from . import settings
from .settings import FULL, RECIPE, Recipe
from .runtime import DEVICE, adam, autocast, batches, set_seed, tqdm
from .cache import cached_model
from .data import check_images, random_shift
from .autoencoder import _down


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
def accuracy(model, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000) -> float:
    """Share of `inputs` that `model` (a module or any function of a batch) puts in the right class."""
    if isinstance(model, nn.Module):
        model.eval()
    preds = torch.cat([model(inputs[i:i + batch_size].to(DEVICE)).argmax(1).cpu()
                       for i in range(0, len(inputs), batch_size)])
    return float((preds == labels).float().mean())


# Sections 4-5: the evaluation classifier, whose features the Frechet distance compares


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple = (16, 32, 64)
    features: int = 128  # the penultimate layer, whose activations the FID compares
    epochs: int = FULL.classifier_epochs
    batch_size: int = 256
    lr: float = 3e-3
    max_shift: int = 2
    train_size: int = FULL.classifier_train_size  # the first training images
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


def eval_classifier_config(recipe: Recipe | None = None) -> ClassifierConfig:
    """The evaluation classifier's config under a recipe (this run's by default)."""
    recipe = recipe or RECIPE
    return ClassifierConfig(epochs=recipe.classifier_epochs, train_size=recipe.classifier_train_size)


def evaluation_classifier(images=None, labels=None, required: bool = False, config: ClassifierConfig | None = None):
    """The report's evaluation classifier (or the classifier of `config`), from the cache or trained now on the
    first config.train_size of `images`; returns (model, info)."""
    config = config or eval_classifier_config()

    def train(model):
        if images is None:
            raise FileNotFoundError(f"no cached evaluation classifier; run `{settings.TRAIN_COMMAND}`")
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


def train_on_generated_accuracy(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                                test_labels: torch.Tensor, seed: int = 0) -> float:
    """Test accuracy of a classifier with the evaluation classifier's recipe trained on `images` alone: with
    generated digits, the classification accuracy score (Ravuri & Vinyals 2019; GAN-train, Shmelkov et al. 2018)."""
    config = replace(eval_classifier_config(), train_size=len(images), seed=seed)
    set_seed(seed)
    model = EvalClassifier(config).to(DEVICE)
    train_classifier(model, images, labels)
    return accuracy(model, test_images, test_labels)
