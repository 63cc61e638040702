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
    return m[f"ae.bottleneck.{design}.test_mse_seeds.seed{seed}"]


def best_two_hold(m):
    """fc512's and fc2x512's every seed below every other design (those have seed 0 only)."""
    others = max(seed_mse(m, d, s) for d in ("fc2x512", "fc512") for s in SEEDS)
    return others < min(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS if d not in ("fc2x512", "fc512"))


def paired(m, key, n):
    return m[f"transfer.paired.{key}.n{n}.low"], m[f"transfer.paired.{key}.n{n}.high"]


def corr_values(m, ds, key="corr"):
    """Every seed's value of a correlation metric at the sizes ds (seed 0 alone where only it exists)."""
    return [v for d in ds for k, v in m.items() if re.fullmatch(rf"{re.escape(key)}\.d{d}(\.seed\d)?", k)]


LABELS = h.FULL.label_counts  # the committed run's (the report's), whatever the mode of the tests
SAMPLERS = tuple(h.SAMPLERS)


def one_change(a, b) -> set:
    """The fields in which two arms' configs differ."""
    return {f for f in vars(a) if getattr(a, f) != getattr(b, f)}


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


def interp_winner(m, key, stat):
    """The one rule on an interpolation pair's recorded interval: the better path's key of h.INTERP_PAIRS[key]
    (or "level"), as the paired table names it for that statistic."""
    return winner(m, f"interp.paired.{key}.{stat}", h.INTERP_PAIRS[key], higher_wins=h.INTERP_STATS[stat.replace("_", " ")])


def ablation_winner(m, stat):
    """The one rule over seeds on the auxiliary term's paired differences (with the term minus without)."""
    return h.verdict([m[f"cgan.ablation.diff.{stat}.seed{s}"] for s in SEEDS], [0.0] * len(SEEDS), ("term", "none"))["winner"]


CLAIMS = {
    # Section 1: the layers between the trunk and the code (one seed each; fc512 and fc2x512 three, paired by seed;
    # the noise reference is the standard deviation of fc512's three seeds at d = 10).
    "The linear map is the worst design and the wide fully connected layers the best: in each of three seeds, fc512 and fc2x512 lie below every other design (trained at one seed)":
        lambda m: m["ae.bottleneck.linear.test_mse"] == max(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS) and best_two_hold(m),
    "fc512 and fc2x512 are level (paired over seeds); the report uses fc512, two thirds of the size":
        lambda m: seed_winner(m, "ae.bottleneck.fc512.test_mse_seeds", "ae.bottleneck.fc2x512.test_mse_seeds",
                              higher_wins=False) == "level"
        and 0.6 < m["ae.bottleneck.fc512.parameters"] / m["ae.bottleneck.fc2x512.parameters"] < 0.72
        and h.RECIPE.report_design == "fc512",
    "The error falls with the units before the code: none (linear), 128 (fc128), 640 shared (conv_wide), 512 unshared (fc512); conv's 256 shared units lie between linear and fc128":
        lambda m: (lambda e: e["linear"] > e["conv"] > e["fc128"] > e["conv_wide"] > e["fc512"])({d: m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS})
        and (h.RECIPE.bottleneck_designs["fc128"]["hidden"], h.RECIPE.bottleneck_designs["fc512"]["hidden"]) == ((128,), (512,))
        and 4 * h.RECIPE.bottleneck_designs["conv_wide"]["conv_width"] == 640,
    "At equal parameter count conv_wide lies below fc128 by more than three times the seed spread: five times the hidden units outweigh unshared weights":
        lambda m: m["ae.bottleneck.fc128.test_mse"] - m["ae.bottleneck.conv_wide.test_mse"] > 3 * m["ae.test_mse_seeds.d10.std"]
        and abs(m["ae.bottleneck.conv_wide.parameters"] / m["ae.bottleneck.fc128.parameters"] - 1) < 0.02,
    # Section 1: the latent-size sweep (seed 0 at every d; seeds 0-2 at d = 4, 10 and 64) and the plateau.
    "The autoencoder beats PCA at every $d$, at $d = 10$ by a factor of more than three":
        lambda m: all(m[f"ae.test_mse.d{d}"] < m[f"pca.test_mse.d{d}"] for d in DS)
        and m["pca.test_mse.d10"] > 3 * m["ae.test_mse_seeds.d10.mean"],
    "Its error falls steeply up to $d = 32$ and then stops: at 10 epochs $d = 64$ is no better than $d = 32$, and its three seeds spread by 9% of the error, those at $d = 4$ and 10 by about 1%":
        lambda m: all(m[f"ae.test_mse.d{a}"] / m[f"ae.test_mse.d{b}"] > 1.2 for a, b in zip(DS, DS[1:]) if b <= 32)
        and m["ae.test_mse.d32"] - m["ae.test_mse_seeds.d64.mean"] < m["ae.test_mse_seeds.d64.std"]
        and round(100 * m["ae.test_mse_seeds.d64.std"] / m["ae.test_mse_seeds.d64.mean"]) == 9
        and all(round(100 * m[f"ae.test_mse_seeds.d{d}.std"] / m[f"ae.test_mse_seeds.d{d}.mean"]) == 1 for d in (4, 10)),
    "at $d = 64$ the validation error is still falling at 80 epochs, while $d = 10$ levels off by 40 (Appendix A":
        lambda m: m["ae.plateau.d10.epochs"] == 40 and m.get("ae.plateau.d64.epochs") is None
        and m["ae.plateau.d64.gain"] > m["ae.plateau.d10.gain"],
    "the digits lie near a curved set of about 14 dimensions (section 2)": lambda m: round(m["id.twonn.images"]) == 14,
    # Section 2: correlation of the latent coordinates, over seeds 0-2 of trained and untrained encoders.
    "over the three seeds, $\\overline{|r|}$ at $d = 64$ is level with $d = 4$, and at $d = 4$, 10 and 64 the trained codes are level with the untrained encoder's":
        lambda m: seed_winner(m, "corr.d64", "corr.d4", ("d64", "d4")) == "level"
        and [seed_winner(m, f"corr.d{d}", f"corr.untrained.d{d}", ("trained", "untrained")) for d in SEED_DS] == ["level"] * 3,
    "up to $d = 16$ trained and untrained smallest eigenvalues stay within a factor of two, while at $d = 64$ the trained one falls more than 300 times below the untrained encoder's in every seed (at $d = 32$, seed 0, 14 times)":
        lambda m: all(0.5 < m[k] / m[k.replace("corr.", "corr.untrained.")] < 2
                      for d in DS if d <= 16 for k in m if re.fullmatch(rf"corr\.eig_min\.d{d}(\.seed\d)?", k))
        and min(m[f"corr.untrained.eig_min.d64.seed{s}"] / m[f"corr.eig_min.d64.seed{s}"] for s in SEEDS) > 300
        and round(m["corr.untrained.eig_min.d32"] / m["corr.eig_min.d32"]) == 14,
    "at $d = 64$ the TC is 4 to 5.5 times the untrained encoder's":
        lambda m: (lambda r: round(min(r)) == 4 and round(2 * max(r)) / 2 == 5.5)(
            [m[f"corr.tc.d64.seed{s}"] / m[f"corr.untrained.tc.d64.seed{s}"] for s in SEEDS]),
    "The test images' TwoNN dimension is about 14": lambda m: round(m["id.twonn.images"]) == 14,
    "The codes' own dimension equals $d$ up to $d = 4$, then grows more slowly and levels off near 10.5 from $d = 32$ on":
        lambda m: all(round(m[f"id.twonn.codes.d{d}"]) == d for d in (2, 4))
        and all(0 < m[f"id.twonn.codes.d{b}"] - m[f"id.twonn.codes.d{a}"] < b - a for a, b in zip(DS, DS[1:]) if 4 <= a and b <= 32)
        and all(round(m[f"id.twonn.codes.d{d}"] * 2) / 2 == 10.5 for d in (32, 64)),
    "Up to $d = 16$ at most 7 coordinates are spare; at 32 and 64 about 20 and 50 are":
        lambda m: max(d - m[f"id.twonn.codes.d{d}"] for d in DS if d <= 16) < 7.5
        and round(32 - m["id.twonn.codes.d32"], -1) == 20 and round(64 - m["id.twonn.codes.d64"], -1) == 50,
    # Section 3: transfer learning; every winner by the one rule over the 10 draws.
    "The frozen encoder with a small head leads the whole network only at 10 labels, by about 2 points with an interval that barely excludes zero, is level at 20, and falls behind from 50 labels on":
        lambda m: transfer_winners(m, "frozen_minus_whole", ("frozen", "whole")) == ["frozen", "level", "whole", "whole", "whole"]
        and round(m["transfer.paired.frozen_minus_whole.n10.mean"], 2) == 0.02
        and 0 < m["transfer.paired.frozen_minus_whole.n10.low"] < 0.001,
    "Fine-tuning changes one thing against the frozen arm, the encoder's learning: it is level at 10 labels and ahead from 20 on":
        lambda m: transfer_winners(m, "frozen_minus_finetune", ("frozen", "finetune")) == ["level"] + ["finetune"] * 4
        and one_change(h.arm_config("frozen"), h.arm_config("finetune")) <= {"encoder_lr", "batchnorm"},
    "Training from scratch trails every pretrained arm by at least 9 points up to 100 labels":
        lambda m: all(round(min(m[f"transfer.{arm}.n{n}.mean"] for arm in ARMS if arm != "scratch")
                            - m[f"transfer.scratch.n{n}.mean"], 2) >= 0.09 for n in LABELS if n <= 100),
    "the moving encoder of finetune gains nothing over frozen. The whole arm's deficit at 10 and 20 labels comes from its other settings (one rate, shifts, length), since fine-tuning beats it there":
        lambda m: transfer_winners(m, "frozen_minus_finetune", ("frozen", "finetune"))[0] == "level"
        and transfer_winners(m, "finetune_minus_whole", ("finetune", "whole"))[:2] == ["finetune"] * 2,
    "every network arm fits its labelled images perfectly (table, brackets)":
        lambda m: all(m[f"transfer.{arm}.n10.train_acc"] == 1.0 for arm in ("frozen", "finetune", "whole", "scratch", "selftrain")),
    "moving at about a third of the head's rate":
        lambda m: round(h.arm_config("finetune").encoder_lr / h.arm_config("finetune").lr, 1) == 0.3,
    "Self-training beats the frozen head up to 100 labels and loses at 1,000 by a quarter of a point":
        lambda m: transfer_winners(m, "selftrain_minus_frozen", ("selftrain", "frozen")) == ["selftrain"] * 4 + ["frozen"]
        and round(m["transfer.paired.selftrain_minus_frozen.n1000.mean"] * 400) == -1,
    "it fits only 96% of its labelled images (frozen: 98%)":
        lambda m: (round(m["transfer.selftrain.n1000.train_acc"], 2), round(m["transfer.frozen.n1000.train_acc"], 2)) == (0.96, 0.98),
    "Cluster-then-label beats self-training at every number of labels and scores 97.3% from 20 labels on, with a standard deviation of 0.02 points over the draws":
        lambda m: transfer_winners(m, "cluster_minus_selftrain", ("cluster", "selftrain")) == ["cluster"] * 5
        and all(round(m[f"transfer.cluster.n{n}.mean"], 3) == 0.973 and round(m[f"transfer.cluster.n{n}.std"], 4) == 0.0002
                for n in LABELS if n >= 20) and h.FULL.cluster_fits == 3,
    # Section 4: samplers (each seed's FD the mean of its draws), compared by the one rule over seeds.
    "The 200-component mixture has a lower FD than the Gaussian-noise GAN, and the GAN a lower FD than the 10-component mixture":
        lambda m: h.FULL.gmm_components == 200
        and sampler_winners(m) == {"gmm_best_minus_k8": "gmm_best", "k8_minus_gmm10": "k8"},
    "A single Gaussian has the worst FD and precision but the highest recall":
        lambda m: m["gan.fid_gaussian"] == max(m[f"gan.fid_{k}.mean"] for k in SAMPLERS)
        and m["gan.precision.gaussian"] == min(m[f"gan.precision.{k}"] for k in SAMPLERS)
        and m["gan.recall.gaussian"] == max(m[f"gan.recall.{k}"] for k in SAMPLERS),
    "The FD falls from $k = 2$ to 8, and $k = 16$ is no better than $k = 8$; recall collapses at $k = 2$ and is lower at 4":
        lambda m: m["gan.fid_k2"] > m["gan.fid_k4"] > max(per_seed(m, "gan.fid_k8"))
        and m["gan.fid_k16"] > min(per_seed(m, "gan.fid_k8"))
        and m["gan.recall.k2"] < 0.2 and m["gan.recall.k4"] < m["gan.recall.k8"] - 0.05,
    "the codes' intrinsic dimension at $d = 10$ is about 8 (section 2)": lambda m: round(m["id.twonn.codes.d10"]) == 8,
    "They are not floors for the samplers: both come from the last 5,000 training images, while the samplers fit the codes of the first 55,000, and the 200-component mixture scores below both":
        lambda m: m["gan.fid_gmm_best.mean"] < min(m["fid.real_floor"], m["fid.recon"]) and h.FULL.ae_train_size == 55_000,
    # Section 4: interpolation (one GAN, 200 pairs; per-pair statistics paired by the one rule).
    "The GAN's paths are more realistic: a lower FD and a higher confidence than the AE line":
        lambda m: all(m[f"interp.{k}.fid"] < m["interp.ae_line.fid"] for k in ("gan_line", "gan_slerp"))
        and all(interp_winner(m, f"ae_line_minus_{k}", "confidence") == k for k in ("gan_line", "gan_slerp")),
    "The AE line is smoother: a smaller largest step, more paths with one label change, fewer through a third digit":
        lambda m: all(interp_winner(m, f"ae_line_minus_{k}", s) == "ae_line"
                      for k in ("gan_line", "gan_slerp") for s in ("max_jump", "one_change", "third_digit")),
    "The GAN's line and slerp are level on every paired statistic, but the slerp's FD is lower":
        lambda m: all(interp_winner(m, "gan_line_minus_gan_slerp", s) == "level"
                      for s in ("confidence", "max_jump", "one_change", "third_digit"))
        and m["interp.gan_slerp.fid"] < m["interp.gan_line.fid"],
    "The mixture lies below the held-out real images' FD, a scale rather than a floor":
        lambda m: m["gan.fid_gmm_best.mean"] < m["fid.real_floor"],
    "Along the AE line the distance to the nearest training code peaks about a fifth above its value at the ends; along the GAN's line about 1% above":
        lambda m: round(m["interp.ae_line.nn_dist.ratio"] * 5) == 6 and round(100 * (m["interp.gan_line.nn_dist.ratio"] - 1)) == 1,
    "The slerp strays almost as far as the AE line yet stays realistic":
        lambda m: m["interp.gan_slerp.nn_dist.ratio"] > 1 + 0.75 * (m["interp.ae_line.nn_dist.ratio"] - 1)
        and m["interp.gan_slerp.fid"] < m["interp.ae_line.fid"] / 2,
    # Section 5: the auxiliary term's ablation over three seeds.
    "With weight 0.1 the requested digit is recognised more often, on average and for the worst digit, and precision is higher":
        lambda m: h.FULL.cgan_aux_weight == 0.1 and all(ablation_winner(m, k) == "term" for k in ("accuracy", "worst", "precision")),
    "the spread ratio falls by about 0.03 and recall by about 0.04. All five differences keep their sign in every seed and pass the paired rule; the mean per-digit FD is lower in every seed but level under the rule":
        lambda m: all(len({v > 0 for v in per_seed(m, f"cgan.ablation.diff.{k}")}) == 1
                      for k in ("accuracy", "worst", "precision", "spread", "recall"))
        and all(ablation_winner(m, k) == "term" for k in ("accuracy", "worst", "precision"))
        and all(ablation_winner(m, k) == "none" for k in ("spread", "recall")) and ablation_winner(m, "fid") == "level"
        and all(v < 0 for v in per_seed(m, "cgan.ablation.diff.fid"))
        and round(m["cgan.ablation.diff.spread.mean"], 2) == -0.03 and round(m["cgan.ablation.diff.recall.mean"], 2) == -0.04,
    "The generated digits are even recognised more often than reconstructions of real test digits":
        lambda m: m["cgan.accuracy"] > m["cgan.recon_ceiling"],
    # Conclusion.
    "A 200-component mixture beats the GAN, which beats a 10-component mixture":
        lambda m: sampler_winners(m) == {"gmm_best_minus_k8": "gmm_best", "k8_minus_gmm10": "k8"},
    "The frozen encoder helps only at 10 labels; from 20 on, a slowly learning encoder does better":
        lambda m: transfer_winners(m, "frozen_minus_whole", ("frozen", "whole"))[0] == "frozen"
        and transfer_winners(m, "frozen_minus_finetune", ("frozen", "finetune"))[1:] == ["finetune"] * 4,
    "Cluster-then-label reaches 97% from 20 labels":
        lambda m: all(round(m[f"transfer.cluster.n{n}.mean"], 2) == 0.97 for n in LABELS if n >= 20),
    "The requested digit in more than 99% of samples":
        lambda m: all(m[f"cgan.accuracy.seed{s}"] > 0.99 for s in SEEDS) and h.FULL.cgan_aux_weight > 0,
    "At $d = 10$ the autoencoder's test error is less than a third of PCA's":
        lambda m: m["ae.test_mse_seeds.d10.mean"] < m["pca.test_mse.d10"] / 3,
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
    assert not CLAIMS["The autoencoder beats PCA at every $d$, at $d = 10$ by a factor of more than three"](flipped)
