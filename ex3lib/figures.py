"""Figures: one function per kind of figure, one style, files under figures/."""

from __future__ import annotations

import math
import numpy as np
import torch
import torch.nn as nn
from pathlib import Path

from . import settings
from .data import PAD
from .autoencoder import decode
from .metrics import correlation_spectrum
from .transfer import ARMS
from .gan import Generator, sample_codes
from .report import AutoencoderStudy


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


# Figures: one function per kind, one style, files under figures/


def figure_style() -> None:
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")


def save_figure(fig, name: str) -> Path:
    settings.FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = settings.FIGURES_DIR / f"{name}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


GRID_PADDING = 2  # pixels between the digits of an _image_grid


def _image_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    from torchvision.utils import make_grid

    return make_grid(images[:, :, PAD:32 - PAD, PAD:32 - PAD], nrow=nrow, padding=GRID_PADDING,
                     pad_value=0.25)[0].numpy()


def _cell_centres(n: int) -> list[int]:
    """Pixel positions of the first n rows' (or columns') centres in an _image_grid of 28x28 digits."""
    digit = 32 - 2 * PAD
    return [GRID_PADDING + (digit + GRID_PADDING) * i + digit // 2 for i in range(n)]


def plot_digit_grid(images: torch.Tensor, title: str, name: str | None, nrow: int = 16,
                    row_labels: list | None = None, col_labels: list | None = None):
    """A grid of digits (shown on their 28x28 area), saved as figures/{name}.png unless name is None;
    labels, where given, name each row (left) and each column (top)."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(images) / nrow)
    fig, ax = plt.subplots(figsize=(nrow * 0.45, rows * 0.45 + 0.5))
    ax.imshow(_image_grid(images, nrow), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title)
    _label_cells(ax, row_labels, col_labels)
    if name:
        save_figure(fig, name)
    return fig


def _label_cells(ax, row_labels: list | None, col_labels: list | None) -> None:
    """Tick labels at the centres of an _image_grid's rows and columns; no axis where there are none."""
    if row_labels is None and col_labels is None:
        ax.axis("off")
        return
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_yticks(_cell_centres(len(row_labels or [])), row_labels or [], fontsize=8)
    ax.set_xticks(_cell_centres(len(col_labels or [])), col_labels or [], fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)


def plot_image_rows(rows: dict, title: str, name: str, col_labels: list | None = None):
    """Rows of digits with a label each: originals and reconstructions, or interpolation strips; labels,
    where given, name the columns under the last row."""
    import matplotlib.pyplot as plt

    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.5 + 1.5, len(rows) * 0.6 + 0.4))
    for ax, (label, images) in zip(np.atleast_1d(axes), rows.items()):
        ax.imshow(_image_grid(images, nrow=len(images)), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if col_labels is not None:
        last = np.atleast_1d(axes)[-1]
        last.set_xticks(_cell_centres(len(col_labels)), col_labels, fontsize=8)
        last.tick_params(length=0)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def plot_curves(series: dict, xlabel: str, ylabel: str, title: str, name: str,
                logx: bool = False, logy: bool = False, bands: dict | None = None, points: dict | None = None,
                xticks: list | None = None):
    """Lines y(x) with optional shaded bands {label: (lo, hi)} and scatter points {label: (x, y)}; on a log x axis
    the ticks are every x value, or `xticks`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    # markers and dashes tell lines apart where they overlap, and in grey
    for (label, (x, y)), marker, dashes in zip(series.items(), "osD^vP" * len(series), ["-", "--", "-.", ":"] * len(series)):
        line, = ax.plot(x, y, marker=marker, linestyle=dashes, label=label)
        if bands and label in bands:
            lo, hi = bands[label]
            ax.fill_between(x, lo, hi, alpha=0.2, color=line.get_color())
    for label, (x, y) in (points or {}).items():
        ax.scatter(x, y, marker="x", s=40, zorder=3, label=label, color="black")
    if logx:
        ax.set_xscale("log", base=2)
        xs = xticks or sorted({v for x, _ in series.values() for v in x})
        ax.set_xticks(xs, [str(v) for v in xs])
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, name)
    return fig


def plot_learning_curves(s1: AutoencoderStudy):
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


SPECTRUM_DS = (4, 16, 32, 64)  # latent sizes whose correlation spectra section 2 draws


def plot_spectrum(codes: dict, untrained: dict, ds=SPECTRUM_DS):
    """Sorted eigenvalues of the correlation matrix as shares of d against rank / d, trained (seed 0)
    against the untrained encoder, at a few d; uncorrelated coordinates would give a flat line at 1/d."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ds), figsize=(4 * len(ds), 3.6), sharey=True)
    for ax, d in zip(np.atleast_1d(axes), ds):
        rank = np.arange(1, d + 1) / d
        ax.plot(rank, correlation_spectrum(codes[d, 0]), marker="o", ms=3, label="trained (seed 0)")
        ax.plot(rank, correlation_spectrum(untrained[d, 0]), marker="s", ms=3, label="untrained")
        ax.axhline(1 / d, color="grey", ls=":", label="uncorrelated (1/d)")
        ax.set_yscale("log")
        ax.set_title(f"d = {d}")
        ax.set_xlabel("eigenvalue rank / d")
    np.atleast_1d(axes)[0].set_ylabel("eigenvalue / d (log scale)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("Spectrum of the correlation matrix of the code", y=1.02)
    save_figure(fig, "correlation_spectrum")
    return fig


def plot_transfer(summary: list[dict]):
    """Test accuracy of every arm against the number of labels, mean ± std over draws."""
    # each arm's points nudged sideways (by a few percent, on the log axis) so that arms with equal means stay visible
    nudge = {arm: 1.04 ** (i - (len(ARMS) - 1) / 2) for i, arm in enumerate(ARMS)}
    ns = {arm: [r["labels"] * nudge[arm] for r in summary] for arm in ARMS}
    return plot_curves({arm: (ns[arm], [r[f"{arm}_mean"] for r in summary]) for arm in ARMS},
                       xlabel="number of labels (class-balanced)", ylabel="test accuracy (10,000 images)",
                       title="Few-label classification, mean ± std over draws", name="transfer", logx=True,
                       xticks=[r["labels"] for r in summary],
                       bands={arm: ([r[f"{arm}_mean"] - r[f"{arm}_std"] for r in summary],
                                    [r[f"{arm}_mean"] + r[f"{arm}_std"] for r in summary]) for arm in ARMS})


def plot_path_density(density: dict, steps_alpha: np.ndarray | None = None):
    """Distance from each kind of interpolation path to the nearest training code, against the position on the
    path (mean over pairs; path_density)."""
    alpha = steps_alpha if steps_alpha is not None else np.linspace(0, 1, len(next(iter(density.values()))))
    return plot_curves({kind: (alpha, dist) for kind, dist in density.items()}, "position on the path α",
                       "distance to the nearest training code (standardised)",
                       "How far each kind of path strays from the training codes", "path_density")


def plot_autoencoder_lengths(rows: list[dict]):
    """Validation MSE against training epochs at each studied latent size (chosen.autoencoder_lengths): section 1's
    budget (three seeds, crosses) and the refined rate's runs of seed 0 with the seed spread at the chosen length
    as a band; a star marks each d's plateau, the length the doubling rule chose."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    star = "chosen length (plateau)"  # in the legend once
    for row, marker in zip(rows, "osD^"):
        epochs = sorted(row["values"])
        values = [row["values"][e] for e in epochs]
        line, = ax.plot(epochs, values, marker=marker, label=f"d = {row['d']}, lr {row['lr']:g}, seed 0")
        ax.fill_between(epochs, [v - row["spread"] for v in values], [v + row["spread"] for v in values],
                        alpha=0.2, color=line.get_color())
        ax.scatter([row["budget_epochs"]] * len(row["budget_seeds"]), row["budget_seeds"], marker="x", s=40,
                   color=line.get_color(), zorder=3,
                   label=f"d = {row['d']}, section 1's budget (lr {row['budget_lr']:g}, seeds 0-{len(row['budget_seeds']) - 1})")
        if row["plateau"]:
            ax.scatter([row["plateau"]], [row["values"][row["plateau"]]], marker="*", s=200, color="black", zorder=4,
                       label=star)
            star = None
    ticks = sorted({e for row in rows for e in row["values"]} | {row["budget_epochs"] for row in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_yscale("log")
    ax.set_xlabel("training epochs (one-cycle schedule over the whole run)")
    ax.set_ylabel("validation MSE per pixel (log scale)")
    ax.set_title("How far section 1's budget lies from the plateau (band: ± seed spread)")
    ax.legend(fontsize=7)
    save_figure(fig, "autoencoder_lengths")
    return fig


def plot_transfer_validation(picked: dict):
    """Validation accuracy against training steps of each arm's chosen setting, one panel per number of labels
    (chosen.transfer_selection, from the stored transfer study); a cross marks the length each arm trains."""
    import matplotlib.pyplot as plt

    curves = picked["curves"]
    labels = sorted({n for arm in curves.values() for n in arm})
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.6), sharey=True)
    for i, (arm, marker) in enumerate(zip(curves, "osD^v")):
        for ax, n in zip(np.atleast_1d(axes), labels):
            curve = curves[arm][n]
            ax.plot(list(curve), list(curve.values()), marker=marker, label=arm)
            ax.scatter([picked["steps"][arm]], [curve[picked["steps"][arm]]], marker="x", s=60, color="black",
                       zorder=3, label="chosen length" if i == 0 else None)
    for ax, n in zip(np.atleast_1d(axes), labels):
        ax.set_xscale("log", base=2)
        ax.set_title(f"{n} labels")
        ax.set_xlabel("training step")
    np.atleast_1d(axes)[0].set_ylabel("validation accuracy")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(f"Validation curves of each arm's chosen setting (mean of {picked['draws']} draws)", y=1.02)
    save_figure(fig, "transfer_validation_curves")
    return fig
