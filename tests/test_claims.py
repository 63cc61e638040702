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
DS, SEED_DS, SEEDS = h.SWEEP_DS, h.SEED_DS, h.SEEDS
DESIGNS = tuple(h.BOTTLENECK_DESIGNS)
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


def share(m, d, seed=None, untrained=False):
    key = "corr.untrained.effective_rank" if untrained else "corr.effective_rank"
    return m[f"{key}.d{d}" + ("" if seed is None else f".seed{seed}")] / d


CLAIMS = {
    # Section 1: the layers between the trunk and the code.
    "the single linear map from the flattened map to the code is the worst design":
        lambda m: m["ae.bottleneck.linear.test_mse"] == max(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS),
    "at matched parameter count the convolutional bottleneck conv_wide has a lower test error than fc128":
        lambda m: m["ae.bottleneck.conv_wide.test_mse"] < m["ae.bottleneck.fc128.test_mse"]
        and abs(m["ae.bottleneck.conv_wide.parameters"] / m["ae.bottleneck.fc128.parameters"] - 1) < 0.02,
    "fc2x512 and fc512 have the lowest test error of the six designs, in both of their seeds": best_two_hold,
    "the difference between their means is within the spread of fc512's three seeds at $d = 10$":
        lambda m: abs(m["ae.test_mse_seeds.d10.mean"] - m["ae.bottleneck.fc2x512.test_mse_seeds.mean"])
        < 2 * m["ae.test_mse_seeds.d10.std"],
    "their differences from the best two are larger than the seed standard deviation of fc512":
        lambda m: min(m[f"ae.bottleneck.{d}.test_mse"] for d in DESIGNS if d not in ("fc2x512", "fc512"))
        - max(m["ae.test_mse_seeds.d10.mean"], m["ae.bottleneck.fc2x512.test_mse_seeds.mean"]) > m["ae.test_mse_seeds.d10.std"],
    # Section 1: the latent-size sweep.
    "The test error falls at every step of $d$, and the autoencoder beats PCA at every $d$":
        lambda m: all(m[f"ae.test_mse.d{a}"] > m[f"ae.test_mse.d{b}"] for a, b in zip(DS, DS[1:]))
        and all(m[f"ae.test_mse.d{d}"] < m[f"pca.test_mse.d{d}"] for d in DS),
    "the spread between seeds is a few percent of the error, far less than the gap between neighbouring sizes":
        lambda m: all(m[f"ae.test_mse_seeds.d{d}.std"] / m[f"ae.test_mse_seeds.d{d}.mean"] < 0.05 for d in SEED_DS)
        and all(m[f"ae.test_mse.d{a}"] / m[f"ae.test_mse.d{b}"] > 1.2 for a, b in zip(DS, DS[1:])),
    "in the last epoch no model of the sweep improves its held-out error by more than 2%":
        lambda m: all(m[f"ae.last_epoch_gain_pct.d{d}"] < 2 for d in DS),
    "The largest last-epoch gain is at $d = 64$":
        lambda m: m["ae.last_epoch_gain_pct.d64"] == max(m[f"ae.last_epoch_gain_pct.d{d}"] for d in DS),
    # Section 2: correlation of the latent coordinates.
    "At $d = 2$ the two coordinates are nearly uncorrelated": lambda m: m["corr.d2"] < 0.1,
    "the mean absolute correlation of the trained codes stays between 0.1 and 0.25 in every seed, with no trend in $d$":
        lambda m: len(in_range := [0.1 < v < 0.25 for k, v in m.items() if re.fullmatch(r"corr\.d(4|8|10|16|32|64)(\.seed\d)?", k)]) >= 12
        and all(in_range),
    "the differences between sizes are of the size of the differences between seeds at the same size":
        lambda m: max(m[f"corr.d{d}"] for d in DS[1:]) - min(m[f"corr.d{d}"] for d in DS[1:])
        <= 1.5 * max(max(m[f"corr.d{d}.seed{s}"] for s in SEEDS) - min(m[f"corr.d{d}.seed{s}"] for s in SEEDS) for d in SEED_DS),
    "The untrained encoder sits at a similar level at every $d$, and PCA codes stay near zero":
        lambda m: all(abs(m[f"corr.untrained.d{d}"] - m[f"corr.d{d}"]) < 0.06 for d in DS)
        and all(m[f"corr.pca.d{d}"] < 0.03 for d in DS),
    "the effective rank is lower at $d = 64$ than at $d = 4$ in all three seeds":
        lambda m: all(share(m, 64, s) < share(m, 4, s) for s in SEEDS),
    "the trained encoder's share stays close to it at every $d$":
        lambda m: share(m, 64, untrained=True) < share(m, 4, untrained=True)
        and all(abs(share(m, d) - share(m, d, untrained=True)) < 0.1 for d in DS),
    "In seed 0, the Gaussian total correlation per coordinate grows with $d$":
        lambda m: all(m[f"corr.tc.d{a}"] < m[f"corr.tc.d{b}"] for a, b in zip(DS[1:], DS[2:])),
    # Section 3: transfer learning.
    "The frozen encoder is more accurate than fine-tuning at 20, 50 and 100 labels: the paired intervals lie above zero":
        lambda m: all(paired(m, "frozen_minus_finetune", n)[0] > 0 for n in (20, 50, 100)),
    "At 10 labels the two are not separated by the interval, and at 1,000 labels fine-tuning is the more accurate":
        lambda m: paired(m, "frozen_minus_finetune", 10)[0] < 0 < paired(m, "frozen_minus_finetune", 10)[1]
        and paired(m, "frozen_minus_finetune", 1000)[1] < 0,
    "Up to 100 labels every arm classifies its labelled images perfectly or nearly so, while its test accuracy is far lower":
        lambda m: all(m[f"transfer.{a}.n{n}.train_acc"] >= 0.95 and m[f"transfer.{a}.n{n}.train_acc"] - m[f"transfer.{a}.n{n}.mean"] > 0.04
                      for a in ARMS for n in (10, 20, 50, 100)),
    "the training and test accuracies come closer, and fine-tuning is the better arm":
        lambda m: m["transfer.finetune.n1000.train_acc"] - m["transfer.finetune.n1000.mean"]
        < m["transfer.finetune.n100.train_acc"] - m["transfer.finetune.n100.mean"]
        and m["transfer.finetune.n1000.mean"] == max(m[f"transfer.{a}.n1000.mean"] for a in ARMS),
    "Self-training** is more accurate than the frozen head at 10 to 100 labels, by a margin that shrinks as the labels grow, and slightly less accurate at 1,000":
        lambda m: all(paired(m, "selftrain_minus_frozen", n)[0] > 0 for n in (10, 20, 50, 100))
        and all(m[f"transfer.paired.selftrain_minus_frozen.n{a}.mean"] > m[f"transfer.paired.selftrain_minus_frozen.n{b}.mean"]
                for a, b in ((10, 20), (20, 50), (50, 100)))
        and paired(m, "selftrain_minus_frozen", 1000)[1] < 0,
    "For the three arms built on the pretrained encoder, the spread over draws at 10 labels is several times that at 100":
        lambda m: all(m[f"transfer.{a}.n10.std"] > 3 * m[f"transfer.{a}.n100.std"] for a in ("frozen", "selftrain", "finetune")),
    "From scratch** is the least accurate arm at every number of labels":
        lambda m: all(m[f"transfer.scratch.n{n}.mean"] == min(m[f"transfer.{a}.n{n}.mean"] for a in ARMS)
                      for n in (10, 20, 50, 100, 1000)),
    # Section 4: latent GANs against the mixture.
    "has a lower FD than the 10-component mixture it starts from in each of the three seeds":
        lambda m: all(m[f"gan.fid_gmm_prior.seed{s}"] < m[f"gan.fid_gmm10.seed{s}"] for s in SEEDS),
    "the latent GAN is worse than the mixture in every seed, and its FD varies more between seeds":
        lambda m: all(m[f"gan.fid_k8.seed{s}"] > m[f"gan.fid_gmm10.seed{s}"] for s in SEEDS)
        and m["gan.fid_k8.std"] > max(m["gan.fid_gmm10.std"], m["gan.fid_gmm_prior.std"]),
    "With $k = 2$ it is much worse": lambda m: m["gan.fid_k2"] > 2 * m["gan.fid_k8.mean"],
    "A single Gaussian is the worst sampler":
        lambda m: m["gan.fid_gaussian"] == max(m[f"gan.fid_{k}.mean"] for k in ("gaussian", "k2", "k8", "gmm10", "gmm_prior")),
    # Section 4: interpolation.
    "Their inner images have a lower FD and a higher classifier confidence than those of the straight line in the autoencoder's space, and slerp has a lower FD than the straight line between the same noise vectors":
        lambda m: all(m[f"interp.{k}.fid"] < m["interp.ae_line.fid"] and m[f"interp.{k}.confidence"] > m["interp.ae_line.confidence"]
                      for k in ("gan_line", "gan_slerp")) and m["interp.gan_slerp.fid"] < m["interp.gan_line.fid"],
    "Its largest single step is a smaller share of the path, more of its paths change label exactly once, and fewer pass through a third digit":
        lambda m: all(m["interp.ae_line.max_jump"] < m[f"interp.{k}.max_jump"] and m["interp.ae_line.one_change"] > m[f"interp.{k}.one_change"]
                      and m["interp.ae_line.third_digit"] < m[f"interp.{k}.third_digit"] for k in ("gan_line", "gan_slerp")),
    "the inversion leaves a small error": lambda m: m["interp.inversion.code_mse"] < 0.1,
    # Section 5: the digit-conditional generator.
    "With weight 0.1 the requested digit is recognised more often, for the average and for the worst digit, and the mean per-digit FD is lower than without it":
        lambda m: m["cgan.accuracy"] > m["cgan.ablation.aux0.accuracy"]
        and m["cgan.accuracy_min_digit"] > m["cgan.ablation.aux0.accuracy_min_digit"]
        and m["cgan.fid_mean"] < m["cgan.ablation.aux0.fid_mean"],
    "the spread ratio falls below that of the generator without the term, which is as varied as real digits":
        lambda m: m["cgan.diversity"] < m["cgan.ablation.aux0.diversity"] and abs(m["cgan.ablation.aux0.diversity"] - 1) < 0.05,
    "The generator's samples are recognised more often than the decoder's reconstructions of real test digits":
        lambda m: m["cgan.accuracy"] > m["cgan.recon_ceiling"],
    "which the spread ratio below 1 measures": lambda m: m["cgan.diversity"] < 1,
    "Digit 8 has the highest FD with and without the auxiliary term, and digit 1 the lowest":
        lambda m: all(max(range(10), key=lambda d: m[f"{p}.fid.digit{d}"]) == 8 and min(range(10), key=lambda d: m[f"{p}.fid.digit{d}"]) == 1
                      for p in ("cgan", "cgan.ablation.aux0")),
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
