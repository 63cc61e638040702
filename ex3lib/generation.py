"""Exploring and judging generators: interpolation and inversion, per-digit scores, train-on-generated accuracy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .settings import RECIPE
from .runtime import DEVICE
from .autoencoder import decode
from .metrics import feature_spread, frechet_distance, precision_recall
from .classifier import EvalClassifier, classify
from .gan import Generator, LatentGAN, sample_codes


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
    of paths whose inner images show a digit that neither end shows. "per_path" holds each path's own
    confidence, largest step, single label change and third digit, for paired comparisons over the pairs.
    """
    paths, steps = images.shape[:2]
    feats, probs = classify(classifier, images.flatten(0, 1))
    inner = np.zeros((paths, steps), dtype=bool)
    inner[:, 1:-1] = True
    inner = inner.flatten()
    labels = probs.argmax(1).reshape(paths, steps)
    jumps = np.linalg.norm(np.diff(feats.reshape(paths, steps, -1), axis=1), axis=2)
    changes = label_changes(labels)
    per_path = {"confidence": probs.max(1).reshape(paths, steps)[:, 1:-1].mean(1),
                "max jump": jumps.max(1) / jumps.sum(1).clip(1e-12), "one change": (changes == 1).astype(float),
                "third digit": np.array([bool(set(row[1:-1]) - {row[0], row[-1]}) for row in labels], dtype=float)}
    return {"FID": frechet_distance(feats[inner], reference_feats), "confidence": float(probs[inner].max(1).mean()),
            "label changes": float(changes.mean()), "per_path": per_path,
            **{stat: float(per_path[stat].mean()) for stat in ("max jump", "one change", "third digit")}}


def conditional_scores(decoder: nn.Module, generator: Generator, classifier: EvalClassifier,
                       real_feats: np.ndarray, real_labels: torch.Tensor, recon_feats: np.ndarray,
                       recon_probs: np.ndarray, n: int = RECIPE.digit_samples) -> list[dict]:
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


def balanced_generated(decoder: nn.Module, generator: Generator, n: int, seed: int = 0):
    """(images, labels): n decoded samples of the conditional generator, n / 10 of each digit."""
    labels = torch.arange(10).repeat_interleave(n // 10)
    return decode(decoder, sample_codes(generator, len(labels), labels, seed=seed)), labels


@torch.no_grad()
def aux_classifier_accuracy(gan: LatentGAN, codes: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of `codes` that the conditional GAN's auxiliary classifier of codes labels correctly."""
    standardised = (codes.to(DEVICE) - gan.generator.code_mean) / gan.generator.code_std
    return float((gan.classifier(standardised).argmax(1).cpu() == labels).float().mean())
