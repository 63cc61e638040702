"""Every comparison that the report's prose states, checked against the committed figures/metrics.json.

Each claim quotes the sentence of ex3.ipynb it guards, and the test checks both that the sentence is
still in the notebook and that the numbers of the run support it. An edit of the prose breaks the
quote, a re-run whose numbers contradict the prose breaks the check: either way `make test` fails
instead of leaving a report that contradicts itself.
"""

import json
import re
from pathlib import Path

import pytest

import helpers as h

ROOT = Path(__file__).resolve().parent.parent
# The committed notebook is a full-mode run: its sizes and seeds, not the smoke mode's of this process.
FULL = h.FULL
DS, SEED_DS, SEEDS = FULL.sweep_ds, FULL.seed_ds, FULL.seeds
DESIGNS = tuple(h.RECIPE.bottleneck_designs)
ARMS = h.ARMS


def seed_mse(m, design, seed):
    if design == "fc512":
        return m[f"ae.test_mse_seeds.d10.seed{seed}"]
    return m[f"ae.bottleneck.{design}.test_mse"] if seed == 0 else m[f"ae.bottleneck.{design}.test_mse_seeds.seed1"]


def best_two_hold(m):
    others = max(seed_mse(m, d, s) for d in ("fc2x512", "fc512") for s in (0, 1))
    return others < min(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS if d not in ("fc2x512", "fc512"))


def paired(m, key, n):
    return m[f"transfer.paired.{key}.n{n}.low"], m[f"transfer.paired.{key}.n{n}.high"]


def corr_values(m, ds, key="corr"):
    """Every seed's value of a correlation metric at the sizes ds (seed 0 alone where only it exists)."""
    return [v for d in ds for k, v in m.items() if re.fullmatch(rf"{re.escape(key)}\.d{d}(\.seed\d)?", k)]


LABELS = h.RECIPE.label_counts
SAMPLERS = tuple(h.SAMPLERS)


def gap(m, arm, n):
    """Training accuracy minus test accuracy of an arm at n labels: the overfitting."""
    return m[f"transfer.{arm}.n{n}.train_acc"] - m[f"transfer.{arm}.n{n}.mean"]


def per_seed(m, key):
    return [m[f"{key}.seed{s}"] for s in SEEDS]


CLAIMS = {
    # Section 1: the layers between the trunk and the code.
    "The single linear map from the flattened map to the code is the worst design":
        lambda m: m["ae.bottleneck.linear.test_mse"] == max(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS),
    "conv_wide (convolutional hidden layer) has a lower test error than fc128 (fully connected hidden layer), by several times the seed standard deviation of fc512":
        lambda m: m["ae.bottleneck.fc128.test_mse"] - m["ae.bottleneck.conv_wide.test_mse"] > 3 * m["ae.test_mse_seeds.d10.std"]
        and abs(m["ae.bottleneck.conv_wide.parameters"] / m["ae.bottleneck.fc128.parameters"] - 1) < 0.02,
    "fc2x512 and fc512 have the lowest test error of the six designs, in both of their seeds": best_two_hold,
    "the smaller of the two designs with the lowest held-out error (the two given a second seed)":
        lambda m: sorted(DESIGNS, key=lambda d: m[f"ae.bottleneck.{d}.val_mse"])[:2] == ["fc2x512", h.RECIPE.report_design]
        and all(f"ae.bottleneck.{d}.test_mse_seeds.seed1" in m for d in ("fc2x512", h.RECIPE.report_design))
        and m[f"ae.bottleneck.{h.RECIPE.report_design}.parameters"] < m["ae.bottleneck.fc2x512.parameters"],
    "fc2x512 has the lower test error in both seeds, by more than the standard deviation of fc512's three seeds":
        lambda m: all(seed_mse(m, "fc512", s) - seed_mse(m, "fc2x512", s) > m["ae.test_mse_seeds.d10.std"] for s in (0, 1)),
    "the gain of the second hidden layer is real but small next to the gaps between latent sizes below":
        lambda m: (m["ae.test_mse_seeds.d10.mean"] - m["ae.bottleneck.fc2x512.test_mse_seeds.mean"]) / m["ae.test_mse_seeds.d10.mean"] < 0.1
        and m["ae.test_mse.d8"] / m["ae.test_mse.d10"] > 1.2,
    # Section 1: the latent-size sweep and the plateau.
    "The test error falls at every step of $d$, and the autoencoder beats PCA at every $d$":
        lambda m: all(m[f"ae.test_mse.d{a}"] > m[f"ae.test_mse.d{b}"] for a, b in zip(DS, DS[1:]))
        and all(m[f"ae.test_mse.d{d}"] < m[f"pca.test_mse.d{d}"] for d in DS),
    "the spread between seeds is a few percent of the error, far less than the gap between neighbouring sizes":
        lambda m: all(m[f"ae.test_mse_seeds.d{d}.std"] / m[f"ae.test_mse_seeds.d{d}.mean"] < 0.05 for d in SEED_DS)
        and all(m[f"ae.test_mse.d{a}"] / m[f"ae.test_mse.d{b}"] > 1.2 for a, b in zip(DS, DS[1:])),
    "twice the epochs lowers the test error at both sizes checked":
        lambda m: all(m[f"ae.long_schedule.d{d}.rel_change"] < -0.03 for d in h.RECIPE.long_schedule_ds),
    "by a few percent at $d = 10$ and by about a fifth at $d = 64$":
        lambda m: -0.1 < m["ae.long_schedule.d10.rel_change"] < -0.03 and -0.25 < m["ae.long_schedule.d64.rel_change"] < -0.15,
    "and more so for large codes": lambda m: m["ae.long_schedule.d64.rel_change"] < m["ae.long_schedule.d10.rel_change"],
    # Section 2: correlation of the latent coordinates.
    "correlation of the trained codes stays between 0.1 and 0.2 in every seed":
        lambda m: len(v := corr_values(m, DS[1:])) >= 12 and all(0.1 < x < 0.2 for x in v),
    "it is slightly lower at $d = 64$ than at $d = 4$ in all three seeds":
        lambda m: all(a < b for a, b in zip(per_seed(m, "corr.d64"), per_seed(m, "corr.d4"))),
    "between those sizes it does not change monotonically (seed 0 in the figure)":
        lambda m: not all(m[f"corr.d{a}"] >= m[f"corr.d{b}"] for a, b in zip(DS[1:], DS[2:])),
    "The untrained encoder sits at 0.11 to 0.13 from $d = 4$ on, below the trained codes at $d = 4$ and 10 in every seed, and PCA codes stay near zero at every $d$":
        lambda m: all(0.11 <= round(m[f"corr.untrained.d{d}"], 2) <= 0.13 for d in DS[1:])
        and all(v > m[f"corr.untrained.d{d}"] for d in (4, 10) for v in per_seed(m, f"corr.d{d}"))
        and all(m[f"corr.pca.d{d}"] < 0.03 for d in DS),
    "so training moves the pairwise level by at most 0.07 from the untrained encoder's":
        lambda m: 0.06 < max(abs(v - m[f"corr.untrained.d{d}"]) for d in DS for v in corr_values(m, [d])) < 0.07,
    "stays between 0.1 and 0.2 from $d = 4$ to 64, within 0.07 of the untrained encoder's":
        lambda m: all(0.1 < v < 0.2 and abs(v - m[f"corr.untrained.d{d}"]) < 0.07 for d in DS[1:] for v in corr_values(m, [d])),
    "At $d = 2$ the trained and untrained codes are both nearly uncorrelated":
        lambda m: m["corr.d2"] < 0.05 and m["corr.untrained.d2"] < 0.05,
    "For $4 \\le d \\le 32$ the trained and untrained codes differ by less than 0.05 in total correlation per coordinate and by less than a factor of two in the smallest eigenvalue":
        lambda m: all(abs(m[f"corr.tc.d{d}"] - m[f"corr.untrained.tc.d{d}"]) < 0.05
                      and 0.5 < m[f"corr.eig_min.d{d}"] / m[f"corr.untrained.eig_min.d{d}"] < 2 for d in DS[1:-1]),
    "the total correlation per coordinate is more than 1.7 times the untrained encoder's in every seed":
        lambda m: all(v > 1.7 * m["corr.untrained.tc.d64"] for v in per_seed(m, "corr.tc.d64")),
    "the smallest eigenvalue is about 50 to 90 times smaller in every seed":
        lambda m: all(45 < m["corr.untrained.eig_min.d64"] / v < 95 for v in per_seed(m, "corr.eig_min.d64")),
    # Section 3: transfer learning.
    "the paired differences stay within one point at every number of labels, with no clear winner at 10, 20 and 50 labels, fine-tuning ahead by half a point at 100 and the frozen encoder ahead by a third of a point at 1,000":
        lambda m: all(abs(m[f"transfer.paired.frozen_minus_finetune.n{n}.mean"]) < 0.01 for n in LABELS)
        and all(paired(m, "frozen_minus_finetune", n)[0] < 0 < paired(m, "frozen_minus_finetune", n)[1] for n in (10, 20, 50))
        and paired(m, "frozen_minus_finetune", 100)[1] < 0 and -0.007 < m["transfer.paired.frozen_minus_finetune.n100.mean"] < -0.003
        and paired(m, "frozen_minus_finetune", 1000)[0] > 0 and 0.002 < m["transfer.paired.frozen_minus_finetune.n1000.mean"] < 0.005,
    "its learning rate is a hundredth of its head's, itself a third of the frozen head's":
        lambda m: h.RECIPE.transfer_settings["finetune"]["encoder_lr"] * 100 == h.arm_config("finetune").lr
        and abs(3 * h.arm_config("finetune").lr - h.arm_config("frozen").lr) < 1e-12,
    "at the frozen arm's settings with encoder learning rate 0, the fine-tuning code gives exactly the frozen arm's accuracy (control)":
        lambda m: m["transfer.control.encoder_lr0.max_abs_diff"] == 0,
    "is less accurate than the frozen head at 10 to 100 labels and more accurate at 1,000 (means), and likewise against the tuned fine-tuning (by 2 to 8 points, intervals above zero)":
        lambda m: all(m[f"transfer.frozen.n{n}.mean"] > m[f"transfer.whole.n{n}.mean"] for n in (10, 20, 50, 100))
        and m["transfer.frozen.n1000.mean"] < m["transfer.whole.n1000.mean"]
        and all(paired(m, "finetune_minus_whole", n)[0] > 0 and 0.02 <= m[f"transfer.paired.finetune_minus_whole.n{n}.mean"] <= 0.08
                      for n in (10, 20, 50, 100)) and paired(m, "finetune_minus_whole", 1000)[1] < 0,
    "Its validation curve at 10 labels peaks after 100 steps and then falls (figure), and it starts below the frozen head's":
        lambda m: (lambda c, frozen: max(c, key=c.get) == "100" and c["800"] < c["100"] and c["50"] < frozen["50"])(
            h.read_validation()["transfer"]["arms"]["whole"][0]["runs"]["10"]["curve"],
            next(c for c in h.read_validation()["transfer"]["arms"]["frozen"] if c["setting"] == {"lr": 3e-3})["runs"]["10"]["curve"]),
    "Up to 100 labels the frozen, fine-tuned, whole and scratch arms classify every labelled image correctly (the accuracy in brackets), while their test accuracy is far lower; the gap is the overfitting, and it narrows at 1,000 labels":
        lambda m: all(m[f"transfer.{a}.n{n}.train_acc"] == 1 and 1 - m[f"transfer.{a}.n{n}.mean"] > 0.1
                      for a in ("frozen", "finetune", "whole", "scratch") for n in (10, 20, 50, 100))
        and all(gap(m, a, 1000) < gap(m, a, 100) for a in ("frozen", "finetune", "whole", "scratch")),
    "Self-training is more accurate than the frozen head at 10 to 100 labels, by a margin that shrinks as the labels grow, and slightly less accurate at 1,000":
        lambda m: all(paired(m, "selftrain_minus_frozen", n)[0] > 0 for n in (10, 20, 50, 100))
        and all(m[f"transfer.paired.selftrain_minus_frozen.n{a}.mean"] > m[f"transfer.paired.selftrain_minus_frozen.n{b}.mean"]
                for a, b in ((10, 20), (20, 50), (50, 100)))
        and paired(m, "selftrain_minus_frozen", 1000)[1] < 0 and m["transfer.paired.selftrain_minus_frozen.n1000.mean"] > -0.02,
    "Cluster-then-label on the same frozen codes is the most accurate arm at every number of labels, ahead of self-training in every paired comparison, and reaches about 95% test accuracy from 10 labels on":
        lambda m: all(m[f"transfer.cluster.n{n}.mean"] == max(m[f"transfer.{a}.n{n}.mean"] for a in ARMS) for n in LABELS)
        and all(paired(m, "cluster_minus_selftrain", n)[0] > 0 for n in LABELS)
        and all(0.93 < m[f"transfer.cluster.n{n}.mean"] < 0.97 for n in LABELS),
    "From 20 labels on every draw names the clusters the same way, so its accuracy no longer depends on the draw (standard deviation 0) nor grows with more labels":
        lambda m: all(m[f"transfer.cluster.n{n}.std"] == 0 and m[f"transfer.cluster.n{n}.mean"] == m["transfer.cluster.n20.mean"]
                      for n in (20, 50, 100, 1000)),
    "From scratch** is the least accurate arm at every number of labels":
        lambda m: all(m[f"transfer.scratch.n{n}.mean"] == min(m[f"transfer.{a}.n{n}.mean"] for a in ARMS) for n in LABELS),
    "about 95% on the same codes": lambda m: m["transfer.cluster.n10.mean"] > 0.93,
    "For the arms that learn a classifier on the pretrained encoder, the spread over draws at 10 labels is several times that at 100":
        lambda m: all(m[f"transfer.{a}.n10.std"] > 3 * m[f"transfer.{a}.n100.std"] for a in ("frozen", "selftrain", "finetune", "whole")),
    # Section 4: latent GANs against mixtures.
    "The 100-component Gaussian mixture has the lowest FD of all samplers in every seed, and also the highest precision and coverage":
        lambda m: all(m[f"gan.fid_gmm_best.seed{s}"] < min(m[f"gan.fid_{k}.seed{s}"] for k in SAMPLERS if k not in ("gmm_best", "gaussian", "k2"))
                      for s in SEEDS) and m["gan.fid_gmm_best.mean"] < min(m["gan.fid_gaussian"], m["gan.fid_k2"])
        and all(m[f"gan.{stat}.gmm_best"] == max(m[f"gan.{stat}.{k}"] for k in SAMPLERS) for stat in ("precision", "coverage")),
    "its lead over the Gaussian-noise GAN is 0.06 to 0.7, in one seed by less than the FD's own sampling noise":
        lambda m: (lambda lead: round(min(lead), 2) == 0.06 and round(max(lead), 1) == 0.7
                   and sum(x < m["gan.fd.sample_noise_std"] for x in lead) == 1)(
            [m[f"gan.fid_k8.seed{s}"] - m[f"gan.fid_gmm_best.seed{s}"] for s in SEEDS]),
    "vary by a standard deviation of about 0.5, larger than the spread of either GAN over seeds":
        lambda m: 0.4 < m["gan.fd.sample_noise_std"] < 0.6
        and m["gan.fd.sample_noise_std"] > max(m["gan.fid_gmm_prior.std"], m["gan.fid_k8.std"]),
    "the Gaussian-noise GAN ($k = 8$, 24,000 steps) has a lower FD than the mixture-prior GAN (4,000 steps) in every seed, but in two seeds by less than 0.1":
        lambda m: FULL.gan_steps == 24000 and FULL.mixture_steps == 4000
        and (lambda gap: all(g > 0 for g in gap) and sum(g < 0.1 for g in gap) == 2)(
            [m[f"gan.fid_gmm_prior.seed{s}"] - m[f"gan.fid_k8.seed{s}"] for s in SEEDS]),
    # Two FDs, each with the sampling noise of one draw: their difference has sqrt(2) times that noise.
    "Both beat the 10-component mixture in every seed, by more than the noise of a difference of two FDs (0.65), except the mixture-prior GAN in seed 2 (0.48)":
        lambda m: (lambda gaps, noise: round(noise, 2) == 0.65 and all(g > 0 for g in gaps.values())
                   and [key for key, g in gaps.items() if g <= noise] == [("gmm_prior", 2)]
                   and round(gaps["gmm_prior", 2], 2) == 0.48)(
            {(k, s): m[f"gan.fid_gmm10.seed{s}"] - m[f"gan.fid_{k}.seed{s}"] for s in SEEDS for k in ("k8", "gmm_prior")},
            2 ** 0.5 * m["gan.fd.sample_noise_std"]),
    "Gaussian noise is far worse in every seed (FD about 6.5 against 3.9, recall 0.74 against 0.81)":
        lambda m: m["gan.k8_mixrecipe_minus_gmm_prior.min"] > 1 and round(m["gan.fid_k8_mixrecipe.mean"] * 2) / 2 == 6.5
        and round(m["gan.fid_gmm_prior.mean"], 1) == 3.9
        and round(m["gan.recall.k8_mixrecipe"], 2) == 0.74 and round(m["gan.recall.gmm_prior"], 2) == 0.81,
    "So the mixture prior wins when the recipe is matched, and the Gaussian-noise GAN's own recipe":
        lambda m: m["gan.k8_mixrecipe_minus_gmm_prior.min"] > 0 and m["gan.k8_mixrecipe_minus_k8.min"] > 0
        and m["gan.fid_k8.mean"] < m["gan.fid_gmm_prior.mean"],
    "With $k = 2$ it is much worse, with a low recall (0.07)":
        lambda m: m["gan.fid_k2"] > 2 * m["gan.fid_k8.mean"] and round(m["gan.recall.k2"], 2) == 0.07,
    "A single Gaussian is the worst sampler by FD, with the lowest precision but the highest recall":
        lambda m: m["gan.fid_gaussian"] == max(m[f"gan.fid_{k}.mean"] for k in SAMPLERS)
        and m["gan.precision.gaussian"] == min(m[f"gan.precision.{k}"] for k in SAMPLERS)
        and m["gan.recall.gaussian"] > max(m[f"gan.recall.{k}"] for k in SAMPLERS if k != "gaussian"),
    "Every sampler stays above the floor": lambda m: all(m[f"gan.fid_{k}.mean"] > m["fid.real_floor"] for k in SAMPLERS),
    # Section 4: interpolation.
    "Their inner images have a lower FD and a higher classifier confidence than those of the straight line in the autoencoder's space, and slerp has a lower FD than the straight line between the same noise vectors":
        lambda m: all(m[f"interp.{k}.fid"] < m["interp.ae_line.fid"] and m[f"interp.{k}.confidence"] > m["interp.ae_line.confidence"]
                      for k in ("gan_line", "gan_slerp")) and m["interp.gan_slerp.fid"] < m["interp.gan_line.fid"],
    "Its largest single step is a smaller share of the path, more of its paths change label exactly once, and fewer pass through a third digit":
        lambda m: all(m["interp.ae_line.max_jump"] < m[f"interp.{k}.max_jump"] and m["interp.ae_line.one_change"] > m[f"interp.{k}.one_change"]
                      and m["interp.ae_line.third_digit"] < m[f"interp.{k}.third_digit"] for k in ("gan_line", "gan_slerp")),
    "the inversion also leaves an error (printed above)": lambda m: 0 < m["interp.inversion.code_mse"] < 0.1,
    # Section 5: the digit-conditional generator.
    "With weight 0.1 the requested digit is recognised more often, on average and for the worst digit, and precision is higher, in every seed":
        lambda m: all(min(m[f"cgan.ablation.diff.{k}.seed{s}"] for s in SEEDS) > 0 for k in ("accuracy", "worst", "precision")),
    "the recognised samples' spread ratio falls by about 0.05, and recall by 0.08 to 0.10":
        lambda m: all(max(m[f"cgan.ablation.diff.{k}.seed{s}"] for s in SEEDS) < 0 for k in ("spread", "recall"))
        and abs(m["cgan.ablation.diff.spread.mean"] + 0.05) < 0.01 and all(-0.10 <= round(m[f"cgan.ablation.diff.recall.seed{s}"], 2) <= -0.08 for s in SEEDS),
    "Without the term, the recognised samples are as varied as the decoder's reconstructions of real digits (spread ratio near 1)":
        lambda m: all(abs(m[f"cgan.ablation.aux0.diversity.seed{s}"] - 1) < 0.02 for s in SEEDS),
    "The mean per-digit FD does not move consistently: lower with the term in two seeds, higher in one":
        lambda m: sorted(m[f"cgan.ablation.diff.fid.seed{s}"] > 0 for s in SEEDS) == [False, False, True],
    "The generator's samples are recognised more often than the decoder's reconstructions of real test digits (both averaged over digits)":
        lambda m: all(m[f"cgan.accuracy.seed{s}"] > m["cgan.recon_ceiling"] for s in SEEDS),
    "reaches a test accuracy about one point below the same classifier trained on as many reconstructed real digits":
        lambda m: 0.005 < m["cgan.cas_real"] - m["cgan.cas"] < 0.015,
    "Digit 8 has the highest FD and digit 1 the lowest":
        lambda m: max(range(10), key=lambda d: m[f"cgan.fid.digit{d}"]) == 8 and min(range(10), key=lambda d: m[f"cgan.fid.digit{d}"]) == 1,
    "The recall is lowest for 8 and highest for 1":
        lambda m: min(range(10), key=lambda d: m[f"cgan.recall.digit{d}"]) == 8 and max(range(10), key=lambda d: m[f"cgan.recall.digit{d}"]) == 1,
    # Conclusion.
    "with less than a third of the squared error of PCA with 10 components":
        lambda m: m["ae.test_mse_seeds.d10.mean"] < m["pca.test_mse.d10"] / 3,
    "The 10-epoch recipe is short of its plateau, more so at large $d$":
        lambda m: m["ae.long_schedule.d64.rel_change"] < m["ae.long_schedule.d10.rel_change"] < -0.03,
    "mean absolute correlation stays between 0.1 and 0.2 from $d = 4$ to 64":
        lambda m: all(0.1 < x < 0.2 for x in corr_values(m, DS[1:])),
    "the frozen encoder with a small head and the fine-tuned network are within one point of each other at every number of labels, the whole network trained at one learning rate is less accurate below 1,000 labels, and training from scratch is far behind":
        lambda m: all(abs(m[f"transfer.paired.frozen_minus_finetune.n{n}.mean"]) < 0.01 for n in LABELS)
        and all(paired(m, "finetune_minus_whole", n)[0] > 0 for n in (10, 20, 50, 100))
        and all(min(m[f"transfer.frozen.n{n}.mean"], m[f"transfer.finetune.n{n}.mean"]) - m[f"transfer.scratch.n{n}.mean"] > 0.05 for n in LABELS),
    "cluster-then-label on them reaches about 95% from 10 labels on":
        lambda m: all(0.93 < m[f"transfer.cluster.n{n}.mean"] < 0.97 for n in LABELS),
    "The best sampler of codes is a 100-component Gaussian mixture, in every seed":
        lambda m: all(m[f"gan.fid_gmm_best.seed{s}"] == min(m[f"gan.fid_{k}.seed{s}"] for k in SAMPLERS if f"gan.fid_{k}.seed{s}" in m)
                      for s in SEEDS),
    "with both it and the Gaussian-noise GAN at the largest size and length tried":
        lambda m: FULL.gmm_components == max(int(c) for c in h.read_validation()["mixture"]["scores"])
        and FULL.gan_steps == max(int(n) for n in h.read_validation()["length"]["k8"]["fd"]),
    "unlike in the weight's one-seed search":
        lambda m: (lambda fd: fd["0.1"]["fd"] < fd["0.0"]["fd"])(h.read_validation()["recipe"]["cgan_aux_weight"]["scores"]),
    "one seed within the FD's noise), with both it and the Gaussian-noise GAN at the largest size and length tried. A GAN from Gaussian noise trained for 24,000 steps and a GAN that refines a 10-component mixture for 4,000 are close, both better than the 10-component mixture; under the mixture prior's recipe the mixture prior is far ahead":
        lambda m: sum(m[f"gan.fid_k8.seed{s}"] - m[f"gan.fid_gmm_best.seed{s}"] < m["gan.fd.sample_noise_std"] for s in SEEDS) == 1
        and abs(m["gan.fid_k8.mean"] - m["gan.fid_gmm_prior.mean"]) < m["gan.fd.sample_noise_std"]
        and all(m[f"gan.fid_gmm10.seed{s}"] > max(m[f"gan.fid_k8.seed{s}"], m[f"gan.fid_gmm_prior.seed{s}"]) for s in SEEDS)
        and m["gan.k8_mixrecipe_minus_gmm_prior.min"] > 1,
    "at a cost in variety within each digit in every seed":
        lambda m: all(m[f"cgan.ablation.diff.spread.seed{s}"] < 0 for s in SEEDS),
    "a classifier trained on its samples alone is nearly as accurate as one trained on reconstructed real digits":
        lambda m: m["cgan.cas_real"] - m["cgan.cas"] < 0.02,
}


@pytest.fixture(scope="module")
def metrics():
    return json.loads((ROOT / "figures" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def prose():
    nb = json.loads((ROOT / "ex3.ipynb").read_text())
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("quote", CLAIMS, ids=[q[:60] for q in CLAIMS])
def test_the_prose_states_it_and_the_run_supports_it(quote, metrics, prose):
    assert quote in prose, f"the report no longer says: {quote!r}; update the claim with the prose"
    assert CLAIMS[quote](metrics), f"this run's figures/metrics.json does not support: {quote!r}"


def test_a_contradicting_run_is_caught(metrics):
    flipped = dict(metrics, **{"pca.test_mse.d64": metrics["ae.test_mse.d64"] / 2})
    assert not CLAIMS["The test error falls at every step of $d$, and the autoencoder beats PCA at every $d$"](flipped)
