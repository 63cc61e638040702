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


def winner(m, key, names, higher_wins=True):
    """The one winner rule (metrics.winner_of, the rule of metrics.verdict) on a paired interval the run recorded."""
    return h.winner_of(m[f"{key}.low"], m[f"{key}.high"], names, higher_wins)


def seed_winner(m, a, b, names=("a", "b"), higher_wins=True, seeds=SEEDS):
    """metrics.verdict over seeds on two recorded per-seed metrics (each a '{key}.seed{s}' family)."""
    return h.verdict([m[f"{a}.seed{s}"] for s in seeds], [m[f"{b}.seed{s}"] for s in seeds], names, higher_wins)["winner"]


def transfer_winners(m, pair, names):
    return [winner(m, f"transfer.paired.{pair}.n{n}", names) for n in LABELS]


def sampler_winners(m):
    """Each pair of section 4's samplers under the one rule on its recorded interval (lower FD wins)."""
    return {key: winner(m, f"gan.paired.{key}", pair, higher_wins=False) for key, pair in h.SAMPLER_PAIRS.items()}


def ablation_winner(m, stat):
    """The one rule over seeds on the auxiliary term's paired differences (with the term minus without)."""
    return h.verdict([m[f"cgan.ablation.diff.{stat}.seed{s}"] for s in SEEDS], [0.0] * len(SEEDS), ("term", "none"))["winner"]


CLAIMS = {
    # Section 1: the layers between the trunk and the code (one seed each, fc512 and fc2x512 two; the noise
    # reference is the standard deviation of fc512's three seeds at d = 10).
    "The single linear map is the worst design and the wide fully connected layers the best: fc512 and fc2x512 have the lowest test error in each of their two seeds":
        lambda m: m["ae.bottleneck.linear.test_mse"] == max(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS) and best_two_hold(m),
    "fc2x512 is the lower of the two in both seeds, too few for a verdict, so the report uses fc512, two thirds of its size":
        lambda m: all(seed_mse(m, "fc2x512", s) < seed_mse(m, "fc512", s) for s in (0, 1))
        and 0.6 < m["ae.bottleneck.fc512.parameters"] / m["ae.bottleneck.fc2x512.parameters"] < 0.72
        and h.RECIPE.report_design == "fc512",
    "At equal parameter count conv_wide beats fc128 by far more than the seed spread of fc512":
        lambda m: m["ae.bottleneck.fc128.test_mse"] - m["ae.bottleneck.conv_wide.test_mse"] > 3 * m["ae.test_mse_seeds.d10.std"]
        and abs(m["ae.bottleneck.conv_wide.parameters"] / m["ae.bottleneck.fc128.parameters"] - 1) < 0.02,
    "fc512, with fewer units than conv_wide but more than three times its parameters, is lower still":
        lambda m: m["ae.bottleneck.conv_wide.test_mse"] - m["ae.bottleneck.fc512.test_mse"] > 2 * m["ae.test_mse_seeds.d10.std"]
        and 3 < m["ae.bottleneck.fc512.parameters"] / m["ae.bottleneck.conv_wide.parameters"] < 4,
    "256 (conv; level with fc128 within the seed spread)":
        lambda m: abs(m["ae.bottleneck.conv.test_mse"] - m["ae.bottleneck.fc128.test_mse"]) < m["ae.test_mse_seeds.d10.std"],
    "The design's error falls with the number of hidden units before the code":
        lambda m: [m[f"ae.bottleneck.{d}.test_mse"] for d in ("linear", "fc128", "conv", "conv_wide", "fc512")]
        == sorted((m[f"ae.bottleneck.{d}.test_mse"] for d in ("linear", "fc128", "conv", "conv_wide", "fc512")), reverse=True),
    # Section 1: the latent-size sweep and the plateau.
    "The test error falls at every step of $d$, and the autoencoder beats PCA at every $d$, at $d = 10$ by a factor of more than three":
        lambda m: all(m[f"ae.test_mse.d{a}"] > m[f"ae.test_mse.d{b}"] for a, b in zip(DS, DS[1:]))
        and all(m[f"ae.test_mse.d{d}"] < m[f"pca.test_mse.d{d}"] for d in DS)
        and m["pca.test_mse.d10"] > 3 * m["ae.test_mse_seeds.d10.mean"],
    "Three seeds at $d = 4$, 10 and 64 differ by a few percent of the error, far less than the gap between neighbouring sizes":
        lambda m: all(m[f"ae.test_mse_seeds.d{d}.std"] / m[f"ae.test_mse_seeds.d{d}.mean"] < 0.05 for d in SEED_DS)
        and all(m[f"ae.test_mse.d{a}"] / m[f"ae.test_mse.d{b}"] > 1.2 for a, b in zip(DS, DS[1:])),
    "the digits lie near a curved set of about 14 dimensions (section 2)": lambda m: round(m["id.twonn.images"]) == 14,
    "Twice the epochs lowers the test error by a few percent at $d = 10$ and by about a fifth at $d = 64$":
        lambda m: -0.1 < m["ae.long_schedule.d10.rel_change"] < -0.03 and -0.25 < m["ae.long_schedule.d64.rel_change"] < -0.15,
    # Section 2: correlation of the latent coordinates, over seeds 0-2 of trained and untrained encoders.
    "over the three seeds, $\\overline{|r|}$ is lower at $d = 64$ than at $d = 4$, and at $d = 4$, 10 and 64 it is level with the untrained encoder's":
        lambda m: seed_winner(m, "corr.d64", "corr.d4", ("d64", "d4")) == "d4"
        and all(seed_winner(m, f"corr.d{d}", f"corr.untrained.d{d}") == "level" for d in SEED_DS),
    "Seeds differ by more than the bootstrap band (at $d = 10$ by about 0.02)":
        lambda m: (lambda v: round(max(v) - min(v), 2) == 0.02 and max(v) - min(v) > m["corr.high.d10"] - m["corr.low.d10"])(per_seed(m, "corr.d10")),
    "nor is $d = 2$, whose mean is a single pair and whose untrained value ranges from 0.03 to 0.31 over initialisations":
        lambda m: (lambda v: round(min(v), 2) == 0.03 and round(max(v), 2) == 0.31)(per_seed(m, "corr.untrained.d2")),
    "at $d = 64$ the smallest eigenvalue falls 44 to 104 times below the untrained encoder's, and the total correlation per coordinate rises, in every seed (both beyond the noise)":
        lambda m: (lambda r: round(min(r)) == 44 and round(max(r)) == 104)(
            [m[f"corr.untrained.eig_min.d64.seed{s}"] / m[f"corr.eig_min.d64.seed{s}"] for s in SEEDS])
        and seed_winner(m, "corr.eig_min.d64", "corr.untrained.eig_min.d64", ("trained", "untrained"), higher_wins=False) == "trained"
        and seed_winner(m, "corr.tc.d64", "corr.untrained.tc.d64", ("trained", "untrained")) == "trained",
    "The TwoNN estimate of the test images' intrinsic dimension is about 14": lambda m: round(m["id.twonn.images"]) == 14,
    "The codes' own intrinsic dimension (last column) equals $d$ up to $d = 4$, then grows ever more slowly and levels off near 11 from $d = 32$ on":
        lambda m: (lambda i: all(round(m[f"id.twonn.codes.d{d}"]) == d for d in (2, 4)) and all(a < b for a, b in zip(i, i[1:]))
                   and abs(m["id.twonn.codes.d32"] - 11) < 0.6 and abs(m["id.twonn.codes.d64"] - 11) < 0.6)(
            [m[f"id.twonn.codes.d{d}"] for d in DS])
        and all(m[f"id.twonn.codes.d{b}"] - m[f"id.twonn.codes.d{a}"] > m[f"id.twonn.codes.d{c}"] - m[f"id.twonn.codes.d{b}"]
                for a, b, c in ((8, 16, 32), (16, 32, 64))),
    "hence the collapse of the smallest eigenvalue at $d = 64$, and not at $d \\le 32$, where trained and untrained smallest eigenvalues stay within a factor of two":
        lambda m: all(0.5 < m[k] / m[k.replace("corr.", "corr.untrained.")] < 2
                      for d in (4, 8, 10, 16, 32) for k in m if re.fullmatch(rf"corr\.eig_min\.d{d}(\.seed\d)?", k)),
    # Section 3: transfer learning; every winner by the one rule over the 10 draws.
    "The frozen encoder with a small head wins from 10 to 100 labels, by about 7 points at 10 and 20 labels and 2 at 100, and the whole network wins at 1,000 labels, by half a point":
        lambda m: transfer_winners(m, "frozen_minus_whole", ("frozen", "whole")) == ["frozen"] * 4 + ["whole"]
        and all(round(m[f"transfer.paired.frozen_minus_whole.n{n}.mean"], 2) in (0.07, 0.08) for n in (10, 20))
        and round(m["transfer.paired.frozen_minus_whole.n100.mean"], 2) == 0.02
        and round(m["transfer.paired.frozen_minus_whole.n1000.mean"], 3) in (-0.005, -0.006, -0.004),
    "Fine-tuning at a small encoder learning rate stays within a point of the frozen head at every number of labels":
        lambda m: all(abs(m[f"transfer.paired.frozen_minus_finetune.n{n}.mean"]) < 0.01 for n in LABELS),
    "with encoder learning rate 0 the same code gives exactly the frozen arm's accuracy (control)":
        lambda m: m["transfer.control.encoder_lr0.max_abs_diff"] == 0,
    "Up to 100 labels the frozen, fine-tuned, whole and scratch arms classify all of their labelled images correctly while their test accuracy is far lower: they overfit, less so at 1,000":
        lambda m: all(m[f"transfer.{a}.n{n}.train_acc"] == 1 and 1 - m[f"transfer.{a}.n{n}.mean"] > 0.1
                      for a in ("frozen", "finetune", "whole", "scratch") for n in (10, 20, 50, 100))
        and all(gap(m, a, 1000) < gap(m, a, 100) for a in ("frozen", "finetune", "whole", "scratch")),
    "The whole network trains over half a million encoder weights on ten to a hundred images":
        lambda m: m["ae.bottleneck.fc512.parameters"] / 2 > 5e5,
    "Its validation curve at 10 labels peaks early and then falls (figure)":
        lambda m: (lambda c: max(c, key=lambda k: c[k]) in ("50", "100") and c["800"] < max(c.values()))(
            h.read_validation()["transfer"]["arms"]["whole"][0]["runs"]["10"]["curve"]),
    "Self-training beats the frozen head from 10 to 100 labels, by 13 points at 10 and 2 at 100, and loses by a point at 1,000, where it also fits its own labelled images less well (95% against 99%)":
        lambda m: transfer_winners(m, "selftrain_minus_frozen", ("selftrain", "frozen")) == ["selftrain"] * 4 + ["frozen"]
        and round(m["transfer.paired.selftrain_minus_frozen.n10.mean"], 2) == 0.13
        and round(m["transfer.paired.selftrain_minus_frozen.n100.mean"], 2) == 0.02
        and round(m["transfer.paired.selftrain_minus_frozen.n1000.mean"], 2) == -0.01
        and round(m["transfer.selftrain.n1000.train_acc"], 2) == 0.95 and round(m["transfer.frozen.n1000.train_acc"], 2) == 0.99,
    "Cluster-then-label on the same frozen codes beats self-training at every number of labels and reaches about 96% from 20 labels on":
        lambda m: transfer_winners(m, "cluster_minus_selftrain", ("cluster", "selftrain")) == ["cluster"] * 5
        and all(round(m[f"transfer.cluster.n{n}.mean"], 2) == 0.96 for n in LABELS[1:]),
    "from 20 labels on every draw names the clusters alike, and its standard deviation over draws, which includes the three fits, is 0.01 points":
        lambda m: h.FULL.cluster_fits == 3 and all(round(100 * m[f"transfer.cluster.n{n}.std"], 2) == 0.01 for n in LABELS[1:]),
    "Training from scratch is the least accurate arm at every number of labels":
        lambda m: all(m[f"transfer.scratch.n{n}.mean"] == min(m[f"transfer.{a}.n{n}.mean"] for a in ARMS) for n in LABELS),
    "Of the 25 paired intervals, four end within a quarter of a point of zero (frozen against whole at 100 labels, frozen against fine-tuning at 50, 100 and 1,000 labels), so those verdicts are fragile":
        lambda m: len(h.TRANSFER_PAIRS) * len(LABELS) == 25 and sorted(
            f"{k}.n{n}" for k in h.TRANSFER_PAIRS for n in LABELS
            if min(abs(m[f"transfer.paired.{k}.n{n}.low"]), abs(m[f"transfer.paired.{k}.n{n}.high"])) < 0.0025) == sorted(
            ["frozen_minus_whole.n100", "frozen_minus_finetune.n50", "frozen_minus_finetune.n100", "frozen_minus_finetune.n1000"]),
    # Section 4: samplers (each seed's FD the mean of its draws), compared by the one rule over seeds.
    "Every sampler stays above the floor of held-out real images":
        lambda m: all(m[f"gan.fid_{k}.mean"] > m["fid.real_floor"] for k in SAMPLERS),
    "Of the five paired comparisons over three seeds, two have a winner: the 100-component mixture has a lower FD than the Gaussian-noise GAN, and the mixture-prior GAN a lower FD than the 10-component mixture it starts from":
        lambda m: len(h.SAMPLER_PAIRS) == 5 and len(SEEDS) == 3
        and sampler_winners(m) == {"gmm_best_minus_k8": "gmm_best", "gmm_best_minus_gmm_prior": "level",
                                   "k8_minus_gmm_prior": "level", "k8_minus_gmm10": "level", "gmm_prior_minus_gmm10": "gmm_prior"},
    "The Gaussian-noise and mixture-prior GANs are level, as are the mixture-prior GAN and the 100-component mixture":
        lambda m: sampler_winners(m)["k8_minus_gmm_prior"] == sampler_winners(m)["gmm_best_minus_gmm_prior"] == "level",
    "With three seeds the interval uses $t = 4.3$":
        lambda m: round(__import__("scipy.stats").stats.t.ppf(0.975, len(SEEDS) - 1), 1) == 4.3,
    "A single Gaussian has the worst FD and precision but the highest recall":
        lambda m: m["gan.fid_gaussian"] == max(m[f"gan.fid_{k}.mean"] for k in SAMPLERS)
        and m["gan.precision.gaussian"] == min(m[f"gan.precision.{k}"] for k in SAMPLERS)
        and m["gan.recall.gaussian"] == max(m[f"gan.recall.{k}"] for k in SAMPLERS),
    "The FD falls from $k = 2$ to 8 and little further at 16, and recall collapses below $k = 8$ (0.07 at $k = 2$)":
        lambda m: m["gan.fid_k2"] > m["gan.fid_k4"] > m["gan.fid_k8.seed0"] > m["gan.fid_k16"]
        and m["gan.fid_k8.seed0"] - m["gan.fid_k16"] < 0.2 * m["gan.fid_k8.seed0"] < m["gan.fid_k4"] - m["gan.fid_k8.seed0"]
        and m["gan.recall.k4"] < m["gan.recall.k8"] - 0.1 and round(m["gan.recall.k2"], 2) == 0.07,
    "the codes' intrinsic dimension at $d = 10$ is about 8 (section 2)": lambda m: round(m["id.twonn.codes.d10"]) == 8,
    # Section 4: interpolation (one GAN, 200 pairs).
    "The GAN's paths are more realistic: their inner images have a far lower FD and a higher confidence than the AE line's":
        lambda m: all(m[f"interp.{k}.fid"] < m["interp.ae_line.fid"] / 2 and m[f"interp.{k}.confidence"] > m["interp.ae_line.confidence"]
                      for k in ("gan_line", "gan_slerp")),
    "The AE line is smoother: a smaller largest step, more paths with exactly one label change, fewer through a third digit":
        lambda m: all(m["interp.ae_line.max_jump"] < m[f"interp.{k}.max_jump"] and m["interp.ae_line.one_change"] > m[f"interp.{k}.one_change"]
                      and m["interp.ae_line.third_digit"] < m[f"interp.{k}.third_digit"] for k in ("gan_line", "gan_slerp")),
    "Along the AE line the distance to the nearest training code rises by about a quarter from the ends to the middle; along the GAN's paths by a tenth (line) and a fifth (slerp)":
        lambda m: round(m["interp.ae_line.nn_dist.ratio"] * 4) / 4 == 1.25 and round(m["interp.gan_line.nn_dist.ratio"], 1) == 1.1
        and round(m["interp.gan_slerp.nn_dist.ratio"], 1) == 1.2
        and m["interp.ae_line.nn_dist.ratio"] > max(m["interp.gan_line.nn_dist.ratio"], m["interp.gan_slerp.nn_dist.ratio"]),
    "the inversion leaves an error (printed)": lambda m: 0 < m["interp.inversion.code_mse"] < 0.1,
    "the price is variety: the recognised samples' spread ratio falls by about 0.05 and recall by about 0.08. All five differences are beyond the noise; the mean per-digit FD is level":
        lambda m: all(ablation_winner(m, k) == "term" for k in ("accuracy", "worst", "precision"))
        and all(ablation_winner(m, k) == "none" for k in ("spread", "recall")) and ablation_winner(m, "fid") == "level"
        and round(m["cgan.ablation.diff.spread.mean"], 2) == -0.05 and round(m["cgan.ablation.diff.recall.mean"], 2) in (-0.08, -0.09),
    "With weight 0.1 the requested digit is recognised more often, on average and for the worst digit, and precision is higher":
        lambda m: h.FULL.cgan_aux_weight == 0.1 and all(ablation_winner(m, k) == "term" for k in ("accuracy", "worst", "precision")),
    "Without the term the recognised samples are as varied as the decoder's reconstructions of real digits (spread ratio near 1)":
        lambda m: all(abs(m[f"cgan.ablation.aux0.diversity.seed{s}"] - 1) < 0.02 for s in SEEDS),
    "the generator's samples are recognised more often than those reconstructions (99.6% against 96.9%)":
        lambda m: all(m[f"cgan.accuracy.seed{s}"] > m["cgan.recon_ceiling"] for s in SEEDS)
        and f"{m['cgan.accuracy']:.1%}" == "99.6%" and f"{m['cgan.recon_ceiling']:.1%}" == "96.9%",
    "A classifier trained only on generated digits reaches 96.6% on the real test set, against 97.7% when trained on as many reconstructed real digits":
        lambda m: f"{m['cgan.cas']:.1%}" == "96.6%" and f"{m['cgan.cas_real']:.1%}" == "97.7%",
    "Digit 8 has the highest FD and the lowest recall, digit 1 the lowest FD and the highest recall":
        lambda m: max(range(10), key=lambda d: m[f"cgan.fid.digit{d}"]) == 8 and min(range(10), key=lambda d: m[f"cgan.fid.digit{d}"]) == 1
        and min(range(10), key=lambda d: m[f"cgan.recall.digit{d}"]) == 8 and max(range(10), key=lambda d: m[f"cgan.recall.digit{d}"]) == 1,
    # Conclusion.
    "With a 10-number code the autoencoder's test error is less than a third of PCA's, and it falls at every code size from 2 to 64":
        lambda m: m["ae.test_mse_seeds.d10.mean"] < m["pca.test_mse.d10"] / 3
        and all(m[f"ae.test_mse.d{a}"] > m[f"ae.test_mse.d{b}"] for a, b in zip(DS, DS[1:])),
    "The frozen encoder with a small head beats the whole network trained on the same few labels up to 100 labels and loses by half a point at 1,000":
        lambda m: transfer_winners(m, "frozen_minus_whole", ("frozen", "whole")) == ["frozen"] * 4 + ["whole"],
    "cluster-then-label on them reaches about 96% from 20 labels":
        lambda m: all(round(m[f"transfer.cluster.n{n}.mean"], 2) == 0.96 for n in LABELS[1:]),
    "The 100-component mixture has a lower FD than the Gaussian-noise GAN; the two GANs are level; noise smaller than the codes' intrinsic dimension loses recall":
        lambda m: sampler_winners(m)["gmm_best_minus_k8"] == "gmm_best" and sampler_winners(m)["k8_minus_gmm_prior"] == "level"
        and all(k < m["id.twonn.codes.d10"] and m[f"gan.recall.k{k}"] < m["gan.recall.k8"] - 0.1 for k in (2, 4)),
    "the requested digit is recognised in 99.6% of samples": lambda m: f"{m['cgan.accuracy']:.1%}" == "99.6%",
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
    assert not CLAIMS["The test error falls at every step of $d$, and the autoencoder beats PCA at every $d$, at $d = 10$ by a factor of more than three"](flipped)
