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
    "At matched parameter count the convolutional bottleneck conv_wide has a lower test error than fc128":
        lambda m: m["ae.bottleneck.conv_wide.test_mse"] < m["ae.bottleneck.fc128.test_mse"]
        and abs(m["ae.bottleneck.conv_wide.parameters"] / m["ae.bottleneck.fc128.parameters"] - 1) < 0.02,
    "fc2x512 and fc512 have the lowest test error of the six designs, in both of their seeds": best_two_hold,
    "fc2x512 has the lower test error in both seeds, seed by seed, by more than the standard deviation of fc512's three seeds":
        lambda m: all(seed_mse(m, "fc512", s) - seed_mse(m, "fc2x512", s) > m["ae.test_mse_seeds.d10.std"] for s in (0, 1)),
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
    "The largest last-epoch gain is at $d = 64$ (seed 0)":
        lambda m: m["ae.last_epoch_gain_pct.d64"] == max(m[f"ae.last_epoch_gain_pct.d{d}"] for d in DS),
    # Section 2: correlation of the latent coordinates.
    "At $d = 2$ the trained code is more correlated than the untrained one": lambda m: m["corr.d2"] > m["corr.untrained.d2"],
    "the mean absolute correlation of the trained codes stays between 0.1 and 0.25 in every seed, with no trend in $d$":
        lambda m: len(in_range := [0.1 < v < 0.25 for k, v in m.items() if re.fullmatch(r"corr\.d(4|8|10|16|32|64)(\.seed\d)?", k)]) >= 12
        and all(in_range),
    "the differences between sizes are of the size of the differences between seeds at the same size":
        lambda m: max(m[f"corr.d{d}"] for d in DS[1:]) - min(m[f"corr.d{d}"] for d in DS[1:])
        <= 1.5 * max(max(m[f"corr.d{d}.seed{s}"] for s in SEEDS) - min(m[f"corr.d{d}.seed{s}"] for s in SEEDS) for d in SEED_DS),
    "untrained encoder sits at a similar level, and PCA codes stay near zero at every $d$":
        lambda m: all(abs(m[f"corr.untrained.d{d}"] - m[f"corr.d{d}"]) < 0.06 for d in DS[1:])
        and all(m[f"corr.pca.d{d}"] < 0.03 for d in DS),
    "the effective rank is lower at $d = 64$ than at $d = 4$ in all three seeds":
        lambda m: all(share(m, 64, s) < share(m, 4, s) for s in SEEDS),
    "and the untrained encoder's falls the same way":
        lambda m: share(m, 64, untrained=True) < share(m, 4, untrained=True),
    "In seed 0 the Gaussian total correlation per coordinate grows with $d$, and at $d = 64$ it is more than twice the untrained encoder's, while the smallest eigenvalue falls to nearly zero":
        lambda m: all(m[f"corr.tc.d{a}"] < m[f"corr.tc.d{b}"] for a, b in zip(DS[1:], DS[2:]))
        and m["corr.tc.d64"] > 2 * m["corr.untrained.tc.d64"] and m["corr.eig_min.d64"] < 0.01,
    "(its smallest eigenvalue stays many times larger)": lambda m: m["corr.untrained.eig_min.d64"] > 20 * m["corr.eig_min.d64"],
    "For $4 \\le d \\le 32$ the trained and untrained codes are of similar size by all three measures":
        lambda m: all(abs(m[f"corr.untrained.d{d}"] - m[f"corr.d{d}"]) < 0.06 and abs(share(m, d) - share(m, d, untrained=True)) < 0.1
                      and abs(m[f"corr.tc.d{d}"] - m[f"corr.untrained.tc.d{d}"]) < 0.05 for d in DS[1:-1]),
    # Section 3: transfer learning.
    "The frozen encoder is more accurate than fine-tuning at 10, 20, 50 and 100 labels: the paired intervals lie above zero":
        lambda m: all(paired(m, "frozen_minus_finetune", n)[0] > 0 for n in (10, 20, 50, 100)),
    "At 1,000 labels fine-tuning is the more accurate": lambda m: paired(m, "frozen_minus_finetune", 1000)[1] < 0,
    "Up to 50 labels every arm classifies its labelled images perfectly or nearly so, while its test accuracy is far lower":
        lambda m: all(m[f"transfer.{a}.n{n}.train_acc"] >= 0.95 and m[f"transfer.{a}.n{n}.train_acc"] - m[f"transfer.{a}.n{n}.mean"] > 0.04
                      for a in ARMS for n in (10, 20, 50)),
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
    # Conclusion.
    "with less than a third of the squared error of PCA with 10 components":
        lambda m: m["ae.test_mse_seeds.d10.mean"] < m["pca.test_mse.d10"] / 3,
    "beats fine-tuning the whole network under one shared recipe, and both beat training from scratch by far":
        lambda m: all(paired(m, "frozen_minus_finetune", n)[0] > 0 and min(m[f"transfer.frozen.n{n}.mean"], m[f"transfer.finetune.n{n}.mean"])
                      - m[f"transfer.scratch.n{n}.mean"] > 0.2 for n in (10, 20, 50, 100)),
    "self-training on the unlabelled codes adds most at 10 labels":
        lambda m: max(h.LABEL_COUNTS, key=lambda n: m[f"transfer.paired.selftrain_minus_frozen.n{n}.mean"]) == 10,
    "has the lowest FD of the samplers, lower than the mixture itself in every seed":
        lambda m: m["gan.fid_gmm_prior.mean"] == min(m[f"gan.fid_{k}.mean"] for k in ("gaussian", "k2", "k8", "gmm10", "gmm_prior"))
        and all(m[f"gan.fid_gmm_prior.seed{s}"] < m[f"gan.fid_gmm10.seed{s}"] for s in SEEDS),
    "the requested digit is recognised more often than in the decoder's own reconstructions of real digits, at some cost in spread":
        lambda m: m["cgan.accuracy"] > m["cgan.recon_ceiling"] and m["cgan.diversity"] < m["cgan.ablation.aux0.diversity"],
    # Section 4: latent GANs against the mixture.
    "has a lower FD than the 10-component mixture it starts from in each of the three seeds":
        lambda m: all(m[f"gan.fid_gmm_prior.seed{s}"] < m[f"gan.fid_gmm10.seed{s}"] for s in SEEDS),
    "the latent GAN is worse than the mixture in every seed":
        lambda m: all(m[f"gan.fid_k8.seed{s}"] > m[f"gan.fid_gmm10.seed{s}"] for s in SEEDS),
    "which its higher FD in every seed reflects":
        lambda m: all(m[f"gan.fid_k8.seed{s}"] > m[f"gan.fid_gmm_prior.seed{s}"] for s in SEEDS),
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
    "the spread ratio falls below that of the generator without the term, whose samples (counted whether recognised or not) are as spread as real digits":
        lambda m: m["cgan.diversity"] < m["cgan.ablation.aux0.diversity"] and abs(m["cgan.ablation.aux0.diversity"] - 1) < 0.05,
    "The generator's samples are recognised more often than the decoder's reconstructions of real test digits":
        lambda m: m["cgan.accuracy"] > m["cgan.recon_ceiling"],
    "The spread ratio below 1 measures the variety this costs": lambda m: m["cgan.diversity"] < 1,
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
