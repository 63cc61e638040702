"""The report's analyses: what each section trains and computes, as rows of plain numbers."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from dataclasses import dataclass, replace

from .settings import RECIPE
from .runtime import DEVICE, set_seed, tqdm
from .autoencoder import (
    AEConfig, Autoencoder, Encoder, ae_config, autoencoder, count_parameters, decode, encode, mse_per_pixel,
    psnr, reconstruct, train_missing,
)
from .metrics import (
    bootstrap, class_balance, effective_rank, frechet_distance, gaussian_total_correlation, intrinsic_dimension,
    latent_correlation, precision_recall, smallest_eigenvalue, verdict,
)
from .classifier import EvalClassifier, classify, eval_classifier_config
from .transfer import ALL_ARMS, ARMS, arm_config
from .gan import Generator, fit_gaussian, fit_gmm, gan_config, latent_gan, sample_codes, train_missing_gans
from .generation import interpolate, invert_generator, path_scores, slerp
from functools import partial

from .tables import (
    Column, Table, accuracy_cell, format_cell, interval_cell, mean_std, read_metrics,
)


# Section 1 --------------------------------------------------------------------------------------


@dataclass
class AutoencoderStudy:
    """The autoencoders of section 1: {config: (model, info)} and which config is which."""

    trained: dict
    sweep: dict  # (d, seed) -> AEConfig, at section 1's budget (RECIPE.sweep_epochs)
    designs: dict  # (design, seed) -> AEConfig, at the same budget
    report: AEConfig  # the report's autoencoder (d = RECIPE.report_d), at its plateau (RECIPE.ae_epochs)

    def model(self, d: int = RECIPE.report_d, seed: int = 0) -> Autoencoder:
        """The sweep's model of size d at section 1's budget."""
        return self.trained[self.sweep[d, seed]][0]

    def report_model(self) -> Autoencoder:
        """The autoencoder that sections 3-5 build on."""
        return self.trained[self.report][0]


def section1_config(d: int, design: str | None = None, seed: int = 0, recipe=None) -> AEConfig:
    """Section 1's autoencoder of size d and design (the report's by default): the recipe's at section 1's length and
    rate (recipe.sweep_epochs, recipe.sweep_lr)."""
    recipe = recipe or RECIPE
    return replace(ae_config(d, design, seed=seed, recipe=recipe), epochs=recipe.sweep_epochs, lr=recipe.sweep_lr)


def train_autoencoder_study(images: torch.Tensor) -> AutoencoderStudy:
    """Every autoencoder of section 1: the latent-size sweep (RECIPE.seeds at RECIPE.seed_ds) and the bottleneck
    designs at RECIPE.sweep_epochs and RECIPE.sweep_lr, every seed of RECIPE.seeds for the RECIPE.seeded_designs designs with the lowest
    held-out error, and the report's autoencoder at its length (RECIPE.ae_epochs)."""
    sweep = {(d, s): section1_config(d, seed=s) for d in RECIPE.sweep_ds for s in RECIPE.seeds
             if s == 0 or d in RECIPE.seed_ds}
    designs = {(name, 0): section1_config(RECIPE.report_d, name) for name in RECIPE.bottleneck_designs}
    report = ae_config()
    configs = [report, *sweep.values(), *designs.values()]
    train_missing(configs, images)
    trained = {c: autoencoder(c, images) for c in configs}
    held_out = {name: trained[c][1]["val_mse_history"][-1] for (name, _), c in designs.items()}
    for name in sorted(held_out, key=held_out.get)[:RECIPE.seeded_designs]:
        designs.update({(name, s): section1_config(RECIPE.report_d, name, seed=s) for s in RECIPE.seeds[1:]})
    train_missing(list(designs.values()), images)
    trained.update({c: autoencoder(c, images) for c in designs.values()})
    return AutoencoderStudy(trained, sweep, designs, report)


def reconstruction_scores(s1: AutoencoderStudy, test_images: torch.Tensor) -> dict:
    """{config: {"mse", "psnr", "last_gain_pct", "train_seconds"}} of every autoencoder, on the test images."""
    scores = {}
    for config, (model, info) in s1.trained.items():
        recon = reconstruct(model, test_images)
        val = info["val_mse_history"]
        scores[config] = {"mse": mse_per_pixel(recon, test_images), "psnr": psnr(recon, test_images),
                          "last_gain_pct": 100 * (1 - val[-1] / val[-2]) if len(val) > 1 else None,
                          "train_seconds": info["train_seconds"]}
    return scores


def design_rows(s1: AutoencoderStudy, scores: dict) -> list[dict]:
    """One row per bottleneck design: parameters, held-out MSE of seed 0 (which picks the designs that get
    more seeds), test MSE of each seed, PSNR of seed 0."""
    rows = []
    for name in RECIPE.bottleneck_designs:
        configs = [c for (n, _), c in s1.designs.items() if n == name]
        model = s1.trained[configs[0]][0]
        mse = [scores[c]["mse"] for c in configs]
        rows.append({"design": name, "parameters": count_parameters(model),
                     "bottleneck parameters": count_parameters(model.encoder.head, model.decoder.head),
                     "val_mse": s1.trained[configs[0]][1]["val_mse_history"][-1],
                     "mse": mse[0], "mse_seeds": mse if len(mse) > 1 else None,
                     "mse_mean": float(np.mean(mse)) if len(mse) > 1 else None,
                     "psnr": scores[configs[0]]["psnr"], "train_seconds": scores[configs[0]]["train_seconds"]})
    return rows


DESIGN_TABLE = Table(
    Column("design", "design"),
    Column("parameters", "parameters", ",", "ae.bottleneck.{design}.parameters"),
    Column("bottleneck parameters", "between trunk and code", ","),
    Column("val_mse", "held-out MSE, seed 0", ".4g", "ae.bottleneck.{design}.val_mse"),
    Column("mse", "test MSE, seed 0", ".4g", "ae.bottleneck.{design}.test_mse"),
    Column("mse_seeds", "test MSE, mean ± std of seeds", mean_std("mse_seeds", ".4g"), "ae.bottleneck.{design}.test_mse_seeds"),
    Column("psnr", "PSNR dB, seed 0", ".2f", "ae.bottleneck.{design}.psnr"),
    Column("mse_mean", metric="ae.bottleneck.{design}.test_mse_seeds.mean"),
    Column("train_seconds", metric="ae.bottleneck.{design}.train_seconds"))


def sweep_rows(s1: AutoencoderStudy, scores: dict, pca: dict, test_images: torch.Tensor) -> list[dict]:
    """One row per latent size: the autoencoder's test MSE (seed 0, and every seed trained) against PCA's."""
    rows = []
    for d in RECIPE.sweep_ds:
        seeds = [scores[s1.sweep[d, s]]["mse"] for s in RECIPE.seeds if (d, s) in s1.sweep]
        first = scores[s1.sweep[d, 0]]
        several = len(seeds) > 1
        rows.append({"d": d, "mse": first["mse"], "mse_seeds": seeds if several else None,
                     "mse_mean": float(np.mean(seeds)) if several else None,
                     "mse_std": float(np.std(seeds, ddof=1)) if several else None,
                     "pca_mse": mse_per_pixel(pca[d][0], test_images), "psnr": first["psnr"],
                     "pca_psnr": psnr(pca[d][0], test_images), "last_gain_pct": first["last_gain_pct"],
                     "train_seconds": first["train_seconds"]})
    return rows


SWEEP_TABLE = Table(
    Column("d", "d"),
    Column("mse", "AE, seed 0", ".4g", "ae.test_mse.d{d}"),
    Column("mse_seeds", "AE, mean ± std of seeds", mean_std("mse_seeds", ".4g"), "ae.test_mse_seeds.d{d}"),
    Column("pca_mse", "PCA", ".4g", "pca.test_mse.d{d}"),
    Column("psnr", "AE PSNR dB", ".2f", "ae.psnr.d{d}"),
    Column("pca_psnr", "PCA PSNR dB", ".2f"),
    Column("last_gain_pct", metric="ae.last_epoch_gain_pct.d{d}"),
    Column("mse_mean", metric="ae.test_mse_seeds.d{d}.mean"),
    Column("mse_std", metric="ae.test_mse_seeds.d{d}.std"),
    Column("train_seconds", metric="ae.train_seconds.d{d}"))


def plateau_rows() -> list[dict]:
    """How far section 1's budget lies from the plateau, from the stored autoencoder study (chosen.
    autoencoder_lengths): one row per studied d, validation MSE (on the 5,000 held-out training images) at the
    budget (mean of three seeds) and at the length the doubling rule chose, and the share of the error it removes."""
    from .chosen import autoencoder_lengths

    return autoencoder_lengths()


PLATEAU_TABLE = Table(
    Column("d", "d"),
    Column("budget_epochs", "epochs in section 1", "", "ae.plateau.d{d}.budget_epochs"),
    Column("budget_mse", "validation MSE there, mean of 3 seeds", ".4g", "ae.plateau.d{d}.budget_mse"),
    Column("spread", "seed spread", ".2g", "ae.plateau.d{d}.spread"),
    Column("plateau", "plateau (epochs, seed 0)", lambda r: f"{r['plateau']}" if r["plateau"] else f"none by {r['end_epochs']}",
           "ae.plateau.d{d}.epochs"),
    Column("end_mse", "validation MSE there", ".4g", "ae.plateau.d{d}.mse"),
    Column("gain", "share of the error removed", ".1%", "ae.plateau.d{d}.gain"))


# Section 2 --------------------------------------------------------------------------------------


def untrained_codes(images: torch.Tensor, seeds: tuple = RECIPE.seeds) -> dict:
    """{(d, seed): codes} of the report's encoder architecture with random weights (initialised at each seed), at
    every d of the sweep."""
    out = {}
    for d in RECIPE.sweep_ds:
        for seed in seeds:
            set_seed(seed)
            out[d, seed] = encode(Encoder(ae_config(d)).to(DEVICE), images)
    return out


def correlation_rows(codes: dict, untrained: dict, pca_codes: dict, n_boot: int = 200) -> list[dict]:
    """One row per latent size: mean |r| (seed 0, with a bootstrap interval, and every seed), effective
    rank and Gaussian total correlation, for the trained codes, the untrained encoder and PCA."""
    rows = []
    for d in RECIPE.sweep_ds:
        seeds = [s for s in RECIPE.seeds if (d, s) in codes]
        value, low, high = bootstrap(latent_correlation, codes[d, 0], n_boot=n_boot)
        rows.append({"d": d, "r": value, "low": low, "high": high,
                     "r_seeds": [latent_correlation(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "rank": effective_rank(codes[d, 0]),
                     "rank_seeds": [effective_rank(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "tc": gaussian_total_correlation(codes[d, 0]),
                     "tc_seeds": [gaussian_total_correlation(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "eig_min_seeds": [smallest_eigenvalue(codes[d, s]) for s in seeds] if len(seeds) > 1 else None,
                     "untrained_r": latent_correlation(untrained[d, 0]), "untrained_rank": effective_rank(untrained[d, 0]),
                     "untrained_tc": gaussian_total_correlation(untrained[d, 0]),
                     "untrained_r_seeds": [latent_correlation(untrained[d, s]) for s in RECIPE.seeds],
                     "untrained_tc_seeds": [gaussian_total_correlation(untrained[d, s]) for s in RECIPE.seeds],
                     "untrained_eig_min_seeds": [smallest_eigenvalue(untrained[d, s]) for s in RECIPE.seeds],
                     "eig_min": smallest_eigenvalue(codes[d, 0]), "untrained_eig_min": smallest_eigenvalue(untrained[d, 0]),
                     "pca_r": latent_correlation(pca_codes[d]), "pca_rank": effective_rank(pca_codes[d]),
                     "twonn": intrinsic_dimension(codes[d, 0].numpy())})
    return rows


def seeds_or_first(key: str, spec: str):
    """Table cell: a row's per-seed values where it has several, else its single value."""
    return lambda row: format_cell(row[f"{key}_seeds"] or row[key], spec)


CORRELATION_TABLE = Table(
    Column("d", "d"),
    Column("r", "mean abs r, seed 0", ".3f", "corr.d{d}"),
    Column("low", "95% interval", lambda r: f"[{r['low']:.3f}, {r['high']:.3f}]", "corr.low.d{d}"),
    Column("r_seeds", "seeds 0, 1, 2", ".3f", "corr.d{d}"),
    Column("untrained_r", "untrained, seeds 0, 1, 2", seeds_or_first("untrained_r", ".3f"), "corr.untrained.d{d}"),
    Column("pca_r", "PCA", ".3f", "corr.pca.d{d}"),
    Column("high", metric="corr.high.d{d}"),
    Column("rank", metric="corr.effective_rank.d{d}"),
    Column("rank_seeds", metric="corr.effective_rank.d{d}"),
    Column("tc", metric="corr.tc.d{d}"),
    Column("tc_seeds", metric="corr.tc.d{d}"),
    Column("eig_min", metric="corr.eig_min.d{d}"),
    Column("eig_min_seeds", metric="corr.eig_min.d{d}"),
    Column("untrained_rank", metric="corr.untrained.effective_rank.d{d}"),
    Column("untrained_tc", metric="corr.untrained.tc.d{d}"),
    Column("untrained_eig_min", metric="corr.untrained.eig_min.d{d}"),
    Column("untrained_r_seeds", metric="corr.untrained.d{d}"),
    Column("untrained_tc_seeds", metric="corr.untrained.tc.d{d}"),
    Column("untrained_eig_min_seeds", metric="corr.untrained.eig_min.d{d}"),
    Column("twonn", metric="id.twonn.codes.d{d}"))


# The same rows as CORRELATION_TABLE (which records them): the dependence measures beyond |r|.
CORRELATION_DETAIL_TABLE = Table(
    Column("d", "d"),
    Column("tc", "TC per coordinate (seeds)", seeds_or_first("tc", ".3f")),
    Column("untrained_tc", "TC, untrained (seeds)", seeds_or_first("untrained_tc", ".3f")),
    Column("eig_min", "smallest eigenvalue (seeds)", seeds_or_first("eig_min", ".4f")),
    Column("untrained_eig_min", "smallest eigenvalue, untrained (seeds)", seeds_or_first("untrained_eig_min", ".4f")),
    Column("twonn", "intrinsic dimension of the codes (TwoNN)", ".1f"))


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


TRANSFER_TABLE = Table(
    Column("labels", "labels"),
    Column("draws", metric="transfer.draws.n{labels}"),
    *[Column(f"{arm}_mean", arm, accuracy_cell(arm), f"transfer.{arm}.n{{labels}}.mean") for arm in ARMS],
    *[Column(f"{arm}_{stat}", metric=f"transfer.{arm}.n{{labels}}.{name}") for arm in ARMS
      for stat, name in (("std", "std"), ("train", "train_acc"))])


# The paired comparisons of section 3: (a, b) for the difference a - b, draw by draw.
TRANSFER_PAIRS = {"frozen_minus_whole": ("frozen", "whole"), "frozen_minus_finetune": ("frozen", "finetune"),
                  "finetune_minus_whole": ("finetune", "whole"), "selftrain_minus_frozen": ("selftrain", "frozen"),
                  "cluster_minus_selftrain": ("cluster", "selftrain")}


def paired_rows(summary: list[dict]) -> list[dict]:
    """One row per number of labels: the paired differences of test accuracy of TRANSFER_PAIRS over the draws, mean,
    95% interval and the verdict of the one winner rule (metrics.verdict)."""
    rows = []
    for s in summary:
        row = {"labels": s["labels"]}
        for key, (a, b) in TRANSFER_PAIRS.items():
            v = verdict(s[f"{a}_acc"], s[f"{b}_acc"], (a, b))
            row.update({f"{key}_{stat}": v[stat] for stat in ("mean", "low", "high", "winner")})
        rows.append(row)
    return rows


PAIRED_TABLE = Table(
    Column("labels", "labels"),
    *[Column(f"{key}_mean", f"{a} − {b}", interval_cell(key), f"transfer.paired.{key}.n{{labels}}.mean")
      for key, (a, b) in TRANSFER_PAIRS.items()],
    *[Column(f"{key}_{stat}", metric=f"transfer.paired.{key}.n{{labels}}.{stat}")
      for key in TRANSFER_PAIRS for stat in ("low", "high")])


def selection_rows() -> list[dict]:
    """One row per arm of section 3: the setting the stored transfer and unlabelled studies chose on validation
    images and its mean validation accuracy (chosen.transfer_selection)."""
    from .chosen import transfer_selection

    return transfer_selection()["rows"]


SELECTION_TABLE = Table(
    Column("arm", "arm"),
    Column("setting", "chosen setting", "", "transfer.selection.{arm}"),
    Column("validation", "mean validation accuracy", ".1%", "transfer.selection.{arm}.validation_accuracy"))


# The encoder-lr-0 control (transfer.encoder_lr0_control): one row.
CONTROL_TABLE = Table(
    Column("frozen", "frozen, 10 labels, first draw", ".2%", "transfer.control.encoder_lr0.frozen"),
    Column("finetune_lr0", "fine-tuned at encoder lr 0", ".2%", "transfer.control.encoder_lr0.finetune_lr0"),
    Column("max_abs_diff", "difference", ".2%", "transfer.control.encoder_lr0.max_abs_diff"),
    Column("max_logit_diff", "largest logit difference", ".1e", "transfer.control.encoder_lr0.max_logit_diff"),
    Column("labels", metric="transfer.control.encoder_lr0.labels"))


# Section 4 --------------------------------------------------------------------------------------


def train_section4_gans(ae_cfg: AEConfig, train_codes: torch.Tensor) -> dict:
    """{(kind, seed): LatentGAN}: the Gaussian-noise GAN (k = RECIPE.report_noise_dim) under its searched recipe, at
    every RECIPE.gan_seeds seed; the other noise sizes RECIPE.noise_sweep at seed 0.
    They train on the codes of the autoencoder's own training images (the first RECIPE.ae_train_size), as the search's
    did, side by side (train_missing_gans)."""
    configs = {}
    for seed in RECIPE.gan_seeds:
        configs["k8", seed] = gan_config(RECIPE.report_noise_dim, ae_cfg, seed=seed)
    for k in RECIPE.noise_sweep:
        configs[f"k{k}", 0] = gan_config(k, ae_cfg)
    codes = train_codes[:RECIPE.ae_train_size]
    train_missing_gans(list(configs.values()), codes)
    return {key: latent_gan(config, codes)[0] for key, config in configs.items()}


def train_section5_gans(ae_cfg: AEConfig, train_codes: torch.Tensor, train_labels: torch.Tensor) -> dict:
    """{(auxiliary weight, seed): LatentGAN}: the conditional generator with the recipe's auxiliary weight and
    without the term, at every RECIPE.cgan_seeds seed (the ablation's arms share initial weights, batches and
    noise), on the same codes as section 4's GANs."""
    configs = {(w, s): gan_config(RECIPE.report_noise_dim, ae_cfg, conditional=True, aux_weight=w, seed=s)
               for w in (RECIPE.cgan_aux_weight, 0.0) for s in RECIPE.cgan_seeds}
    codes, labels = train_codes[:RECIPE.ae_train_size], train_labels[:RECIPE.ae_train_size]
    train_missing_gans(list(configs.values()), codes, labels)
    return {key: latent_gan(config, codes, labels)[0] for key, config in configs.items()}


# The samplers of section 4's table: metric key -> name in the table.
SAMPLERS = {"gaussian": "one Gaussian", "gmm10": "Gaussian mixture, 10 components",
            "gmm_best": f"Gaussian mixture, {RECIPE.gmm_components} components",
            **{f"k{k}": f"GAN, Gaussian noise k={k}" for k in sorted({*RECIPE.noise_sweep, RECIPE.report_noise_dim})}}


def section4_samplers(gans: dict, train_codes: torch.Tensor) -> dict:
    """{(sampler key, seed): (n, seed) -> codes} of every sampler of section 4."""

    samplers = {("gaussian", 0): fit_gaussian(train_codes)}
    for seed in RECIPE.gan_seeds:
        samplers["gmm10", seed] = fit_gmm(train_codes, seed=seed)
        samplers["gmm_best", seed] = fit_gmm(train_codes, RECIPE.gmm_components, seed=seed)
    for (kind, seed), gan in gans.items():
        samplers[kind, seed] = partial(sample_codes, gan.generator)
    return samplers


def judge_sampler(sample, decoder: nn.Module, classifier: EvalClassifier, reference_feats: np.ndarray, n: int,
                  fd_only: bool = False) -> dict:
    """FD of n decoded samples to the reference features, and (unless fd_only) precision, recall, density and
    coverage, the classifier's mean confidence and the label entropy."""
    feats, probs = classify(classifier, decode(decoder, sample(n)))
    if fd_only:
        return {"fd": frechet_distance(feats, reference_feats)}
    # k-NN radii depend on the reference's size: precision and recall compare n samples with n real images.
    return {"fd": frechet_distance(feats, reference_feats), **precision_recall(reference_feats[:n], feats),
            "confidence": float(probs.max(1).mean()), "entropy": class_balance(probs)["entropy"]}


def draw_seed(seed: int, draw: int) -> int:
    """The noise stream of one sample draw of a sampler trained or fitted at `seed`: each pair its own."""
    return 1 + seed + 1000 * draw


def sampler_rows(samplers: dict, decoder: nn.Module, classifier: EvalClassifier, reference_feats: np.ndarray,
                 n: int = RECIPE.ae_val_size, draws: int = RECIPE.fd_seed_draws) -> list[dict]:
    """One row per sampler of SAMPLERS: per seed, the FD of n decoded samples against the reference as the mean
    over `draws` independent sample draws (so a spread over seeds holds the draws' noise as well as the fit's),
    and precision, recall, density and coverage of the first draw; and their means over seeds."""
    judged = {}
    for (kind, seed), sample in tqdm(samplers.items(), desc="samplers", leave=False):
        runs = [judge_sampler(partial(sample, seed=draw_seed(seed, j)), decoder, classifier, reference_feats, n,
                              fd_only=j > 0) for j in range(draws)]
        judged[kind, seed] = {**runs[0], "fd": float(np.mean([r["fd"] for r in runs])), "fd_draws": [r["fd"] for r in runs]}
    rows = []
    for kind in SAMPLERS:
        runs = [judged[key] for key in judged if key[0] == kind]
        fd = [r["fd"] for r in runs]
        rows.append({"key": kind, "sampler": SAMPLERS[kind], "seeds": len(runs), "fd": fd[0], "fd_seeds": fd,
                     "fd_mean": float(np.mean(fd)), "fd_std": float(np.std(fd, ddof=1)) if len(fd) > 1 else None,
                     **{stat: float(np.mean([r[stat] for r in runs]))
                        for stat in ("precision", "recall", "density", "coverage", "confidence", "entropy")}})
    return rows


# The section 4 evaluation's references: one row (see the notebook's references cell).
REFERENCES_TABLE = Table(
    Column("accuracy", "evaluation classifier, test accuracy", ".2%", "classifier.test_accuracy"),
    Column("images", "held-out images", ",", "fid.reference_images"),
    Column("floor", "FD floor: held-out real images", ".2f", "fid.real_floor"),
    Column("recon", "FD: their reconstructions", ".2f", "fid.recon"))


SAMPLER_TABLE = Table(
    Column("sampler", "sampler"),
    Column("seeds", "seeds"),
    Column("fd_mean", "FD, mean ± std", mean_std("fd_seeds", ".2f"), "gan.fid_{key}.mean"),
    Column("fd_seeds", "FD per seed (or draw)", ".2f", "gan.fid_{key}"),
    Column("precision", "precision", ".3f", "gan.precision.{key}"),
    Column("recall", "recall", ".3f", "gan.recall.{key}"),
    Column("coverage", "coverage", ".3f", "gan.coverage.{key}"),
    Column("fd", metric="gan.fid_{key}"),
    Column("fd_std", metric="gan.fid_{key}.std"),
    Column("density", metric="gan.density.{key}"),
    Column("confidence", metric="gan.confidence.{key}"),
    Column("entropy", metric="gan.entropy.{key}"))


def fd_sample_noise(sample, decoder: nn.Module, classifier: EvalClassifier, reference_feats: np.ndarray,
                    n: int = RECIPE.ae_val_size, draws: int = RECIPE.fd_draws) -> list[float]:
    """FD of `draws` independent draws of n samples from one fixed sampler (sample(n, seed)): the FD's own noise,
    from draws none of the sampler rows use."""
    return [frechet_distance(classify(classifier, decode(decoder, sample(n, seed=100_000 + i)))[0], reference_feats)
            for i in tqdm(range(draws), desc="FD draws", leave=False)]


# The paired comparisons of section 4's samplers: (a, b) for the FD difference a - b, seed by seed (lower wins).
SAMPLER_PAIRS = {"gmm_best_minus_k8": ("gmm_best", "k8"), "k8_minus_gmm10": ("k8", "gmm10")}


def sampler_pair_rows(rows: list[dict]) -> list[dict]:
    """One row per pair of SAMPLER_PAIRS: the paired FD difference over seeds (each seed's FD the mean of its
    draws), its 95% interval, and the verdict of the one winner rule (lower FD wins)."""
    fd = {r["key"]: r["fd_seeds"] for r in rows}
    return [{"key": key, "pair": f"{SAMPLERS[a]} − {SAMPLERS[b]}",
             **verdict(fd[a], fd[b], (SAMPLERS[a], SAMPLERS[b]), higher_wins=False)}
            for key, (a, b) in SAMPLER_PAIRS.items()]


SAMPLER_PAIRS_TABLE = Table(
    Column("pair", "FD difference"),
    Column("mean", "mean over seeds [95% interval]", lambda r: f"{r['mean']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]",
           "gan.paired.{key}.mean"),
    Column("winner", "lower FD (one winner rule)"),
    Column("low", metric="gan.paired.{key}.low"),
    Column("high", metric="gan.paired.{key}.high"))


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

    Returns (paths by kind, their codes [pairs, steps, d] by kind, inversion error per end point)."""
    n_pairs = len(codes_a)
    noise, error = invert_generator(generator, torch.cat([codes_a, codes_b]))
    noise_a, noise_b = noise.split(n_pairs)
    with torch.no_grad():
        through_gan = lambda path: generator(path.flatten(0, 1).to(DEVICE)).cpu()
        codes = {"AE line": interpolate(codes_a, codes_b, steps).flatten(0, 1),
                 "GAN line": through_gan(interpolate(noise_a, noise_b, steps)),
                 "GAN slerp": through_gan(slerp(noise_a, noise_b, steps))}
        paths = {kind: decode(decoder, c).view(n_pairs, steps, 1, 32, 32) for kind, c in codes.items()}
    return paths, {kind: c.view(n_pairs, steps, -1) for kind, c in codes.items()}, error


def path_density(code_paths: dict, train_codes: torch.Tensor) -> dict:
    """{kind: [steps]}: along each kind of path, the mean over pairs of the distance from the path's code to its
    nearest training code, in the training codes' standardised units: where a path leaves the data."""
    from sklearn.neighbors import NearestNeighbors

    mean, std = train_codes.mean(0), train_codes.std(0)
    index = NearestNeighbors(n_neighbors=1).fit(((train_codes - mean) / std).numpy())
    out = {}
    for kind, codes in code_paths.items():
        pairs, steps, d = codes.shape
        dist = index.kneighbors(((codes.reshape(-1, d) - mean) / std).numpy())[0].reshape(pairs, steps)
        out[kind] = dist.mean(0)
    return out


def density_metrics(density: dict) -> dict:
    """The path-density figures the prose argues from: per kind, the nearest-code distance at the path's ends
    (mean of its first and last step), its largest value and the ratio of the two."""
    out = {}
    for kind, dist in density.items():
        key = kind.lower().replace(" ", "_")
        ends, peak = float((dist[0] + dist[-1]) / 2), float(dist.max())
        out |= {f"interp.{key}.nn_dist.ends": ends, f"interp.{key}.nn_dist.max": peak,
                f"interp.{key}.nn_dist.ratio": peak / ends}
    return out


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


# The interpolation's paired comparisons over the same image pairs: the AE line against each path through the
# GAN, and the GAN's line against its great circle.
INTERP_PAIRS = {"ae_line_minus_gan_line": ("ae_line", "gan_line"), "ae_line_minus_gan_slerp": ("ae_line", "gan_slerp"),
                "gan_line_minus_gan_slerp": ("gan_line", "gan_slerp")}
INTERP_STATS = {"confidence": True, "max jump": False, "one change": True, "third digit": False}  # higher is better?


def interp_pair_rows(rows: list[dict]) -> list[dict]:
    """One row per pair of INTERP_PAIRS and statistic of INTERP_STATS: the paired difference over the image pairs
    (the same pairs on both paths), its 95% interval and the verdict of the one winner rule."""
    per_path = {r["key"]: r["per_path"] for r in rows if "per_path" in r}
    names = {r["key"]: r["path"] for r in rows}
    return [{"key": f"{key}.{stat.replace(' ', '_')}", "pair": f"{names[a]} − {names[b]}", "statistic": stat,
             **verdict(per_path[a][stat], per_path[b][stat], (names[a], names[b]), higher_wins=better)}
            for key, (a, b) in INTERP_PAIRS.items() for stat, better in INTERP_STATS.items()]


INTERP_PAIRS_TABLE = Table(
    Column("pair", "paths"),
    Column("statistic", "per-pair statistic"),
    Column("mean", "mean difference over pairs [95% interval]",
           lambda r: f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]", "interp.paired.{key}.mean"),
    Column("winner", "better (one winner rule)"),
    Column("low", metric="interp.paired.{key}.low"),
    Column("high", metric="interp.paired.{key}.high"))


INTERP_TABLE = Table(
    Column("path", "path"),
    Column("FID", "FD", ".2f", "interp.{key}.fid"),
    Column("confidence", "confidence", ".3f", "interp.{key}.confidence"),
    Column("max jump", "largest step / length", ".3f", "interp.{key}.max_jump"),
    Column("label changes", "label changes", ".2f", "interp.{key}.label_changes"),
    Column("one change", "paths with one change", ".1%", "interp.{key}.one_change"),
    Column("third digit", "paths through a third digit", ".1%", "interp.{key}.third_digit"))


# Section 5 --------------------------------------------------------------------------------------


def conditional_rows(per_digit: dict) -> list[dict]:
    """One row per auxiliary weight, from conditional_scores' per-digit rows {(weight, seed): rows}: per seed
    the mean over digits of recognition, spread ratio and FD, and the worst digit's recognition."""
    rows = []
    for weight in dict.fromkeys(w for w, _ in per_digit):
        seeds = [s for w, s in per_digit if w == weight]
        stat = lambda key, agg=np.mean: [float(agg([r[key] for r in per_digit[weight, s]])) for s in seeds]
        rows.append({"weight": weight, "prefix": "cgan" if weight == RECIPE.cgan_aux_weight else f"cgan.ablation.aux{weight:g}",
                     "seeds": len(seeds), "accuracy_seeds": stat("accuracy"), "worst_seeds": stat("accuracy", np.min),
                     "spread_seeds": stat("spread ratio"), "fid_seeds": stat("FID vs real digit"),
                     "precision_seeds": stat("precision"), "recall_seeds": stat("recall")})
        rows[-1].update({key[:-len("_seeds")]: float(np.mean(v)) for key, v in list(rows[-1].items()) if key.endswith("_seeds")})
    return rows


CONDITIONAL_TABLE = Table(
    Column("weight", "auxiliary weight"),
    Column("accuracy_seeds", "recognised, per seed", ".1%", "{prefix}.accuracy"),
    Column("worst_seeds", "worst digit, per seed", ".1%", "{prefix}.accuracy_min_digit"),
    Column("spread_seeds", "spread ratio, per seed", ".3f", "{prefix}.diversity"),
    Column("fid_seeds", "mean per-digit FD, per seed", ".2f", "{prefix}.fid_mean"),
    Column("precision", "precision", ".3f", "{prefix}.precision"),
    Column("recall", "recall", ".3f", "{prefix}.recall"),
    Column("accuracy", metric="{prefix}.accuracy"),
    Column("worst", metric="{prefix}.accuracy_min_digit"),
    Column("spread", metric="{prefix}.diversity"),
    Column("fid", metric="{prefix}.fid_mean"),
    Column("seeds", metric="{prefix}.seeds"))


def ablation_rows(rows: list[dict]) -> list[dict]:
    """The auxiliary term's effect, seed by seed (each seed's two arms see the same batches and noise):
    per statistic, the differences weight RECIPE.cgan_aux_weight minus weight 0, and whether every seed agrees."""
    ours, ablation = rows[0], rows[1]
    out = []
    for key, name in (("accuracy", "recognised"), ("worst", "worst digit recognised"), ("spread", "spread ratio"),
                      ("fid", "mean per-digit FD"), ("precision", "precision"), ("recall", "recall")):
        diff = np.array(ours[f"{key}_seeds"]) - np.array(ablation[f"{key}_seeds"])
        out.append({"key": key, "statistic": name, "diffs": diff.tolist(), "mean": float(diff.mean()),
                    "agree": "all seeds higher" if (diff > 0).all() else "all seeds lower" if (diff < 0).all() else "mixed"})
    return out


ABLATION_TABLE = Table(
    Column("statistic", f"weight {RECIPE.cgan_aux_weight:g} minus weight 0"),
    Column("diffs", "per seed", "+.3f", "cgan.ablation.diff.{key}"),
    Column("agree", "seeds"),
    Column("mean", metric="cgan.ablation.diff.{key}.mean"))


# What caps recognition (section 5): one row.
CEILING_TABLE = Table(
    Column("recon", "reconstructions of real test digits recognised (mean over digits)", ".1%", "cgan.recon_ceiling"),
    Column("aux", "test codes the auxiliary classifier labels correctly (seed 0)", ".1%", "cgan.aux_classifier_accuracy"))


def noise_walk(decoder: nn.Module, generator: Generator, digit: int, walks: int = 3, steps: int = 10,
               seed: int = 11) -> torch.Tensor:
    """Decoded samples [walks, steps, 1, 32, 32] of one requested digit along great circles (slerp) between
    pairs of noise vectors: what the noise alone changes in the digit's shape."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    noise = generator.sample_noise(2 * walks, torch.Generator().manual_seed(seed))
    path = slerp(noise[:walks], noise[walks:], steps).flatten(0, 1)
    generator.eval()
    with torch.no_grad():
        codes = generator(path.to(DEVICE), torch.full((len(path),), digit, device=DEVICE)).cpu()
    return decode(decoder, codes).view(walks, steps, 1, 32, 32)


def digit_rows(per_digit: dict) -> list[dict]:
    """One row per digit, means over RECIPE.cgan_seeds: the report's generator beside the one without the auxiliary term."""
    mean = lambda w, d, key: float(np.mean([per_digit[w, s][d][key] for s in RECIPE.cgan_seeds if (w, s) in per_digit]))
    return [{"digit": d, "accuracy": mean(RECIPE.cgan_aux_weight, d, "accuracy"), "spread": mean(RECIPE.cgan_aux_weight, d, "spread ratio"),
             "fid": mean(RECIPE.cgan_aux_weight, d, "FID vs real digit"), "precision": mean(RECIPE.cgan_aux_weight, d, "precision"),
             "recall": mean(RECIPE.cgan_aux_weight, d, "recall"), "accuracy0": mean(0.0, d, "accuracy"),
             "spread0": mean(0.0, d, "spread ratio"), "fid0": mean(0.0, d, "FID vs real digit")} for d in range(10)]


DIGIT_TABLE = Table(
    Column("digit", "digit"),
    Column("accuracy", "recognised", ".1%", "cgan.accuracy.digit{digit}"),
    Column("spread", "spread ratio", ".3f", "cgan.diversity.digit{digit}"),
    Column("fid", "FD", ".2f", "cgan.fid.digit{digit}"),
    Column("precision", "precision", ".3f", "cgan.precision.digit{digit}"),
    Column("recall", "recall", ".3f", "cgan.recall.digit{digit}"),
    Column("accuracy0", "recognised, weight 0", ".1%", "cgan.ablation.aux0.accuracy.digit{digit}"),
    Column("spread0", "spread ratio, weight 0", ".3f", "cgan.ablation.aux0.diversity.digit{digit}"),
    Column("fid0", metric="cgan.ablation.aux0.fid.digit{digit}"))


# Train on generated, test on real (section 5): one row.
CAS_TABLE = Table(
    Column("n", "training digits", ",", "cgan.cas_size"),
    Column("generated", "trained on generated, test accuracy", ".2%", "cgan.cas"),
    Column("real", "trained on reconstructed real digits, test accuracy", ".2%", "cgan.cas_real"))


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
        {"result": "1. validation error removed by training to the plateau instead of section 1's length, d=10 / d=64",
         "value": " / ".join(f"{m[f'ae.plateau.d{d}.gain']:.1%}" for d in (10, 64))},
        {"result": "2. mean abs correlation of the d=10 code (seed 0)", "value": f"{m['corr.d10']:.3f}"},
        *[{"result": f"3. {arm}, 10 / 100 labels, test accuracy", "value": arms(arm)} for arm in ARMS],
        {"result": f"4. FD, Gaussian mixture of {RECIPE.gmm_components} components (3 seeds)", "value": pm("gan.fid_gmm_best", ".2f")},
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


def model_code() -> str:
    """The source of the report's networks, read from the package so that it can never go stale."""
    import inspect

    from . import autoencoder, gan

    parts = {autoencoder: (autoencoder._down, autoencoder._up, autoencoder.Encoder, autoencoder.Decoder,
                           autoencoder.Autoencoder), gan: (gan._mlp, gan.Generator)}
    return "\n\n".join(f"# ---- {module.__name__.replace('.', '/')}.py\n\n"
                         + "\n\n".join(inspect.getsource(p).rstrip() for p in objects)
                         for module, objects in parts.items())


def environment_rows() -> list[dict]:
    """Device, precision, threads and the versions of the libraries that compute the results."""
    import platform

    import scipy
    import sklearn

    m = read_metrics()
    return [{"item": "device, training precision, threads",
             "value": f"{m['runtime.device']}, {m['runtime.precision']}, {m['runtime.threads']}"},
            {"item": f"cost unit: one training step of the d={RECIPE.report_d} autoencoder (batch {RECIPE.ae_batch_size}), over its whole training",
             "value": f"{m['runtime.unit_step_ms']:.1f} ms"},
            {"item": "models trained by this run, and read back (trained before it: in a cold run, by the validation search)",
             "value": f"{m['runtime.models_trained']}, {m['runtime.models_loaded']}"},
            {"item": "Python, PyTorch, NumPy, scikit-learn, SciPy",
             "value": f"{platform.python_version()}, {torch.__version__}, {np.__version__}, {sklearn.__version__}, "
                      f"{scipy.__version__}"}]


ENVIRONMENT_TABLE = Table(Column("item", "setting"), Column("value", "value"))
RUNTIME_TABLE = Table(Column("part", "part of the run"), Column("seconds", "seconds", ".0f"),
                      Column("steps", "in autoencoder training steps", ",.0f"))
RECIPE_TABLE = Table(Column("model", "model"), Column("recipe", "recipe"), Column("chosen", "how the settings were chosen"))

HEADLINE_TABLE = Table(Column("result", "result"), Column("value", "value"))


def transfer_recipe(arm: str) -> str:
    """One arm's recipe of section 3 in words."""
    t, lr = arm_config(arm), lambda x: f"{x:g}"
    text = (f"Adam, {t.steps} steps, batch up to {t.batch_size}, head {t.hidden} units, lr {lr(t.lr)}, "
            f"weight decay {lr(t.weight_decay)}")
    if arm in ("finetune", "whole"):
        bn = "BatchNorm statistics of pretraining" if t.batchnorm == "frozen" else "BatchNorm learning"
        text += f"; encoder lr {lr(t.encoder_lr if arm == 'finetune' else t.lr)}, {bn}"
    if t.max_shift:
        text += f"; random shifts of up to {t.max_shift} pixels"
    if arm == "selftrain":
        text += (f"; then rounds at {', '.join(f'{f:.0%}' for f in t.pseudo_fractions)} of the pool, "
                 f"{t.pseudo_steps} steps of batch {t.pseudo_batch_size}")
    return text


def recipe_rows() -> list[dict]:
    """The settings that matter of every model family, one row each, with how the stored studies chose them
    (chosen.how_chosen)."""
    from .chosen import how_chosen

    ae, clf = ae_config(), eval_classifier_config()
    gan = gan_config(RECIPE.report_noise_dim, ae)
    cgan = gan_config(RECIPE.report_noise_dim, ae, conditional=True)
    lr = lambda x: f"{x:g}"
    rows = [
        {"model": "autoencoders (section 1)", "recipe": f"Adam, batch {ae.batch_size}, one-cycle schedule, binary "
         f"cross-entropy on logits, over {ae.train_size:,} images; section 1's comparisons {RECIPE.sweep_epochs} epochs "
         f"at peak lr {lr(RECIPE.sweep_lr)}, the d = {ae.d} model of sections 3-5 {ae.epochs} epochs at {lr(ae.lr)}"},
        *[{"model": f"section 3, {arm}", "recipe": transfer_recipe(arm)} for arm in ALL_ARMS],
        {"model": "section 3, cluster", "recipe": f"UMAP to {RECIPE.cluster_setting['dims']} dimensions, "
         f"{RECIPE.cluster_setting['neighbors']} neighbours, on all training codes; {RECIPE.cluster_setting['components']}-component "
         "full-covariance Gaussian mixture; each cluster named by the labelled codes' responsibilities"},
        {"model": "evaluation classifier (sections 4-5)", "recipe": f"Adam, {clf.epochs} epochs, batch "
         f"{clf.batch_size}, one-cycle peak {lr(clf.lr)}, random shifts of up to {clf.max_shift} pixels, "
         f"{clf.features} features"},
        {"model": "latent GAN, Gaussian noise (section 4)", "recipe": f"k = {gan.noise_dim}, MLPs of 3x{gan.hidden}, "
         f"{gan.steps:,} steps of batch {gan.batch_size}, lr {lr(gan.lr)} (D x{gan.d_lr_scale:g}) decaying to 0, "
         f"R1 {gan.r1:g} every {gan.r1_every} D steps, on {gan.train_codes:,} codes"},
        {"model": "Gaussian mixtures (section 4)", "recipe": f"EM, full covariance, 10 and {RECIPE.gmm_components} "
         "components, on the standardised training codes (scikit-learn)"},
        {"model": "conditional GAN (section 5)", "recipe": f"as the Gaussian-noise GAN with a one-hot digit, {cgan.steps:,} "
         f"steps, lr {lr(cgan.lr)}, projection discriminator, auxiliary weight {cgan.aux_weight:g} (classifier: "
         f"{cgan.aux_steps} steps)"},
        {"model": "train-on-generated classifier (section 5)", "recipe": f"the evaluation classifier's recipe on {RECIPE.cas_size:,} "
         "generated digits (or as many reconstructed real training digits), 1/10 of each digit"},
    ]
    how = {**how_chosen(), "train-on-generated classifier (section 5)": "the evaluation classifier's recipe, unchanged"}
    return [{**row, "chosen": how[row["model"]]} for row in rows]
