"""Statistics of codes and of feature sets: latent correlation (section 2), paired intervals (section 3), the
Frechet distance and precision/recall (sections 4-5)."""

from __future__ import annotations

import numpy as np
import torch


# Section 2: how correlated the latent coordinates are


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


def paired_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the paired differences a - b: a Student t interval over the pairs."""
    from scipy import stats

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.ndim != 1 or len(diff) < 2:
        raise ValueError(f"a and b must be paired 1-d samples of at least 2 values, got shape {diff.shape}")
    half = stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return float(diff.mean()), float(diff.mean() - half), float(diff.mean() + half)


def verdict(a, b, names: tuple = ("a", "b"), higher_wins: bool = True, level: float = 0.95) -> dict:
    """The one rule for naming a winner: a side wins when the paired differences a - b (same seeds, draws or
    label draws) have a Student t interval that excludes zero; otherwise the two are "level"."""
    mean, low, high = paired_interval(a, b, level)
    return {"mean": mean, "low": low, "high": high, "winner": winner_of(low, high, names, higher_wins)}


def winner_of(low: float, high: float, names: tuple = ("a", "b"), higher_wins: bool = True) -> str:
    """The winner rule on a recorded interval [low, high] of the paired difference a - b: names[0] when it
    excludes zero on a's side, names[1] on b's, else "level" (verdict's rule, for the claims test)."""
    first_ahead, second_ahead = (low > 0, high < 0) if higher_wins else (high < 0, low > 0)
    return names[0] if first_ahead else names[1] if second_ahead else "level"


def intrinsic_dimension(x) -> float:
    """TwoNN estimate (Facco et al. 2017) of the intrinsic dimension of the points x [N, D]: from the ratio of
    each point's second to first nearest-neighbour distance, via scikit-dimension."""
    import skdim

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return float(skdim.id.TwoNN().fit(x).dimension_)


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
