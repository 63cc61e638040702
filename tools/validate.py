"""The validation search: the settings the report chooses, scored on held-out training images only.

Usage: python tools/validate.py [--part transfer|mixture|classifier|gan|recipe|length|schedule|all] [--out PATH]

Every model here trains on the "fit" part of MNIST's training set (its first 55,000 images, those the
autoencoders train on) and every setting is scored on the "validation" part (the next 5,000). No model
sees a test image and no setting is scored on one: helpers.validation_data has no test part, and the
only read of the test images is the byte-for-byte check that none of the validation images is one. It prints every candidate it tried with its validation
score, and writes them, with the chosen settings, to figures/validation.json.

- transfer (section 3): for each arm, a small declared grid of settings; for each setting, the
  validation accuracy against training steps, over SEARCH_DRAWS class-balanced draws at each of
  SEARCH_LABELS. The arm's setting is the one with the highest mean validation accuracy (over label
  counts and draws) at any number of steps; its number of steps is the plateau rule: the fewest steps
  whose mean is within half a point (search.PLATEAU) of that setting's best. Self-training is kept only if it beats the
  chosen frozen head on validation. The cluster-then-label arm's projection and mixture sizes are
  chosen the same way. A control checks that fine-tuning at encoder learning rate 0 is the frozen arm.
- mixture (section 4): the number of components of the Gaussian mixture of the codes, by mean
  log-likelihood of the validation codes under a mixture fitted to the fit codes.
- gan (sections 4 and 5): the latent GANs train on the fit images' codes, each scored by the Frechet
  distance (FD) between the classifier features of 5,000 decoded samples and those of the validation
  images, with a classifier trained on the fit images only. The number of steps of the Gaussian-noise
  GAN, the mixture-prior GAN and the conditional GAN (runs of several lengths, each with its own
  learning-rate schedule, one seed): the fewest steps within GAN_PLATEAU of the lowest FD. Then the
  matched-recipe comparison of the two priors and the mixture of the chosen size, over 3 seeds, and
  the FD's own noise.
- recipe (sections 4 and 5): at those lengths, a coordinate search from the report's recipe, one seed
  per candidate, over declared grids (RECIPE_GRIDS): the Gaussian-noise GAN's learning rate, R1
  weight and width (k, the noise size, is what section 4 varies); then the mixture-prior GAN's
  learning rate, weight average and warm-up (with that R1 weight and width). A change is kept only if
  it lowers the FD by more than GAN_PLATEAU (relative), no less than the FD's own sample noise. Then
  the conditional GAN's auxiliary weight at its length (with the Gaussian-noise GAN's recipe), by its
  mean FD per digit against the validation images of that digit.
- length (sections 4 and 5): the lengths rechecked at the chosen recipe: each family trained for twice
  its length, and doubled again while the plateau rule picks the longest run.
- schedule (section 1): whether the autoencoders' recipe reaches its plateau: at d = 10 and d = 64
  (seed 0), the validation MSE after the recipe's AE_EPOCHS against that after a schedule twice as
  long. A relative change above 3% means the recipe stops short of its plateau.
- classifier (sections 4 and 5): the evaluation classifier's number of epochs, by validation accuracy
  of runs of several lengths trained on the fit images (the fewest epochs within 0.1 point of the best).

Run the parts in this order. Each starts from the report's recipe in helpers; recipe takes its lengths
from the file's gan part and length takes its recipe from the recipe part. Set helpers' constants to the
choices afterwards (tests/test_validation.py checks them against this file).
With EX3_SMOKE=1 (the one switch of the smoke mode: the smoke recipe of settings.SMOKE_RECIPE), it runs the
small grids of QUICK, one small candidate per arm, for the regression test.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

import helpers as h  # noqa: E402
from ex3lib import search  # noqa: E402

SEARCH_LABELS = (10, 100, 1000)  # labelled images per draw
SEARCH_DRAWS = 3  # draws per label count, seeded apart from the report's draws
# Where each run's validation accuracy is read: heads on fixed codes are cheap, encoders are not.
CURVE_STEPS = {"frozen": (50, 100, 200, 400, 800, 1600), "encoder": (50, 100, 200, 400, 800)}
BASE = h.transfer_config()  # the report's recipe (its self-training rounds among them), before a candidate's changes
# Each arm's declared grid, in stages of TransferConfig fields that differ from BASE: every candidate of
# a stage starts from the best setting of the stages before it (a coordinate search).
GRIDS = {
    "frozen": [[dict(lr=lr) for lr in (3e-4, 1e-3, 3e-3)]],
    "finetune": [[dict(encoder_lr=elr, batchnorm=bn) for elr in (1e-5, 1e-4, 1e-3) for bn in h.BATCHNORM_MODES],
                 [dict(max_shift=2)]],
    "whole": [[dict(encoder_lr=1e-3, lr=1e-3, batchnorm="train")]],  # the plain reading: one learning rate
    "scratch": [[dict(lr=lr) for lr in (1e-3, 3e-3)], [dict(max_shift=2)]],
}
CLUSTER_GRID = [dict(dims=dims, neighbors=nb, components=k) for dims in (2, 10) for nb in (15, 50)
                for k in (10, 20, 40)]
MIXTURE_COMPONENTS = (10, 20, 50, 100)
GAN_LENGTHS = {"k8": (750, 1500, 3000, 6000), "gmm_prior": (500, 1000, 2000, 4000), "cgan": (750, 1500, 3000, 6000)}
CGAN_AUX_WEIGHTS = (0.0, 0.1, 0.3, 1.0)
GAN_SAMPLES = 5000
GAN_PLATEAU = 0.10  # relative: the length rule's tolerance, and the margin a recipe change must win by
MAX_DOUBLINGS = 2  # the length check doubles a GAN's steps at most this often (at most 4x the curve's choice)
# The latent GANs' recipe search: stages of changes from the report's recipe (a coordinate search).
RECIPE_FIELDS = ("lr", "r1", "hidden", "ema", "d_warmup")
RECIPE_GRIDS = {
    "k8": [[dict(lr=lr) for lr in (3e-4, 1e-3, 3e-3)], [dict(r1=r1) for r1 in (1.0, 10.0, 100.0)],
           [dict(hidden=w) for w in (256, 512)]],  # k is section 4's variable (k = 2 and 8), not searched
    "gmm_prior": [[dict(lr=lr) for lr in (1e-4, 3e-4, 1e-3)], [dict(ema=e) for e in (0.0, 0.99, 0.999)],
                  [dict(d_warmup=w) for w in (0, 300)]],
}
QUICK = dict(labels=(10,), draws=1, curve={"frozen": (10, 20), "encoder": (10, 20)},
             grids={arm: [stages[0][:1]] for arm, stages in GRIDS.items()},
             cluster=[dict(dims=2, neighbors=15, components=10)], mixture=(2, 4),
             gan_lengths={"k8": (20, 40), "gmm_prior": (20,), "cgan": (20,)}, aux_weights=(0.0, 0.1), gan_samples=500,
             recipe_grids={"k8": [[dict(lr=3e-3)]], "gmm_prior": [[dict(ema=0.0)]]})


draw_indices, plateau_steps = search.draw_indices, search.plateau_steps  # the studies' own rules


class Data(search.TransferData):
    """The report's autoencoder (trained on the fit part), codes of both parts, and the labels; the validation
    images checked against the test set."""

    def __init__(self):
        super().__init__()
        h.refuse_test_images(self.val_x)


def run_arm(data: Data, arm: str, setting: dict, labels: tuple, draws: int, curve_steps: dict) -> dict:
    """{n: {"curve": {steps: mean validation accuracy}, "train": mean training accuracy at the end}}."""
    config = h.TransferConfig(**{**h.asdict(BASE), **setting})
    return search.arm_curves(data, arm, config, labels, draws, curve_steps["frozen" if arm == "frozen" else "encoder"])


def search_transfer(data: Data, labels=SEARCH_LABELS, draws=SEARCH_DRAWS, curve_steps=CURVE_STEPS,
                    grids=GRIDS, cluster_grid=CLUSTER_GRID) -> dict:
    """Every candidate of every arm with its validation curve, and each arm's chosen setting."""
    result = {"labels": list(labels), "draws": draws, "arms": {}, "selection": {}}
    for arm, stages in grids.items():
        candidates = []
        for stage in stages:
            start_from = max(candidates, key=lambda c: c["best"])["setting"] if candidates else {}
            for change in stage:
                setting = {**start_from, **change}
                start = time.perf_counter()
                runs = run_arm(data, arm, setting, labels, draws, curve_steps)
                steps = list(runs[labels[0]]["curve"])
                mean_curve = {step: float(np.mean([runs[n]["curve"][step] for n in labels])) for step in steps}
                candidates.append({"setting": setting, "runs": runs, "mean_curve": mean_curve,
                                   "best": max(mean_curve.values()), "steps": plateau_steps(mean_curve),
                                   "seconds": time.perf_counter() - start})
                print_candidate(arm, candidates[-1], labels)
        chosen = max(candidates, key=lambda c: c["best"])
        result["arms"][arm] = candidates
        result["selection"][arm] = {**chosen["setting"], "steps": chosen["steps"]}
        if max(chosen["mean_curve"], key=chosen["mean_curve"].get) == max(chosen["mean_curve"]):
            print(f"{arm}: the chosen setting is best at its longest run; a longer curve may pay")
    result["selection"]["selftrain"] = selftrain_check(data, result["selection"]["frozen"], labels, draws)
    result["cluster"] = search_clusters(data, labels, draws, cluster_grid)
    result["selection"]["cluster"] = max(result["cluster"], key=lambda c: c["mean"])["setting"]
    result["control"] = encoder_lr0_control(data, result["selection"]["frozen"], labels[0])
    return result


def print_candidate(arm: str, candidate: dict, labels: tuple) -> None:
    per_n = "  ".join(f"n={n}: {candidate['runs'][n]['curve'][candidate['steps']]:.3f}"
                      f" (train {candidate['runs'][n]['train']:.2f} at the longest run)" for n in labels)
    curve = " ".join(f"{acc:.3f}" for acc in candidate["mean_curve"].values())
    mean_curve = candidate["mean_curve"]
    rising = max(mean_curve, key=mean_curve.get) == max(mean_curve)  # the best point is the longest run
    print(f"{arm:<9} {candidate['setting']}  curve {curve}  -> {candidate['steps']} steps"
          f"{' (still rising at the longest run)' if rising else ''}, best {candidate['best']:.4f}  [{per_n}]  "
          f"{candidate['seconds']:.0f} s", flush=True)


def selftrain_check(data: Data, frozen: dict, labels: tuple, draws: int) -> dict:
    """Self-training on top of the chosen frozen head, against that head alone, on the same draws."""
    config = h.TransferConfig(**{**h.asdict(BASE), **frozen})
    scores = {"frozen": [], "selftrain": []}
    for n in labels:
        for s in range(draws):
            i = draw_indices(data.fit_y, n, s)
            for arm in scores:
                model = h.train_few_label(arm, data.state, data.ae_config, data.fit_x[i], data.fit_y[i], data.fit_x,
                                          config, seed=s, unlabeled_codes=data.fit_codes)
                scores[arm].append(h.accuracy(model.from_codes, data.val_codes, data.val_y))
    means = {arm: float(np.mean(v)) for arm, v in scores.items()}
    print(f"selftrain on the chosen frozen head: validation {means['selftrain']:.4f} against frozen "
          f"{means['frozen']:.4f} -> {'kept' if means['selftrain'] > means['frozen'] else 'dropped'}", flush=True)
    return {**means, "kept": means["selftrain"] > means["frozen"]}


def search_clusters(data: Data, labels: tuple, draws: int, grid: list) -> list:
    """Validation accuracy of cluster-then-label for every setting (projection fitted on fit codes)."""
    rows, projections = [], {}
    for setting in grid:
        start = time.perf_counter()
        key = (setting["dims"], setting["neighbors"])
        clusters = h.CodeClusters(data.fit_codes, seed=0, like=projections.get(key), **setting)
        projections[key] = clusters
        resp = clusters.responsibilities(data.val_codes)
        per_n = {}
        for n in labels:
            accs = []
            for s in range(draws):
                i = draw_indices(data.fit_y, n, s).numpy()
                names = clusters.name_clusters(i, data.fit_y[i].numpy())
                accs.append(float((clusters.predict(names, resp) == data.val_y.numpy()).mean()))
            per_n[n] = float(np.mean(accs))
        rows.append({"setting": setting, "per_n": per_n, "mean": float(np.mean(list(per_n.values()))),
                     "seconds": time.perf_counter() - start})
        print(f"cluster   {setting}  validation " + "  ".join(f"n={n}: {a:.3f}" for n, a in per_n.items())
              + f"  mean {rows[-1]['mean']:.4f}  {rows[-1]['seconds']:.0f} s", flush=True)
    return rows


def encoder_lr0_control(data: Data, frozen: dict, n: int) -> dict:
    """The package's encoder-lr-0 control (transfer.encoder_lr0_control) on validation images: fine-tuning at
    encoder learning rate 0 against the chosen frozen head, on the search's first draw."""
    config = h.TransferConfig(**{**h.asdict(BASE), **frozen})
    result = h.encoder_lr0_control(data.ae_config, data.state, data.fit_x, data.fit_y, data.val_x, data.val_y, n,
                                   config=config, labelled=draw_indices(data.fit_y, n, 0),
                                   unlabeled_codes=data.fit_codes)
    print(f"control: fine-tuning at encoder lr 0 {result['finetune_lr0']:.4f} against frozen {result['frozen']:.4f} "
          f"(n={n}, draw 0); largest logit difference {result['max_logit_diff']:.2e}", flush=True)
    return result


def search_mixture(data: Data, components=MIXTURE_COMPONENTS) -> dict:
    """Mean log-likelihood of the validation codes under mixtures fitted to the fit codes."""
    scores = {}
    for k in components:
        start = time.perf_counter()
        mixture = h.gaussian_mixture(data.fit_codes, k, seed=0)
        scores[k] = {"validation": float(mixture.score(data.val_codes.numpy())),
                     "fit": float(mixture.score(data.fit_codes.numpy()))}
        print(f"mixture   {k:>3} components: mean log-likelihood, validation {scores[k]['validation']:.3f}, "
              f"fit {scores[k]['fit']:.3f}  {time.perf_counter() - start:.0f} s", flush=True)
    best = max(scores, key=lambda k: scores[k]["validation"])
    print(f"mixture: {best} components")
    return {"scores": scores, "best_components": best}


def gan_plateau(fds: dict) -> int:
    """The fewest steps whose FD is within GAN_PLATEAU (relative) of the lowest."""
    best = min(fds.values())
    return min(steps for steps, fd in fds.items() if fd <= best * (1 + GAN_PLATEAU))


class GanJudge:
    """Scores latent GANs trained on the fit codes against the validation images: the Frechet distance
    (and precision/recall) in the features of an evaluation classifier trained on the fit images only."""

    def __init__(self, data: Data, samples: int = GAN_SAMPLES, epochs: int = h.RECIPE.classifier_epochs):
        self.data, self.samples, self.epochs = data, samples, epochs
        self.classifier, _ = h.cached_model(h.ClassifierConfig(epochs=epochs, train_size=len(data.fit_x)),
                                            h.EvalClassifier,
                                            lambda model: h.train_classifier(model, data.fit_x, data.fit_y))
        self.val_feats, val_probs = h.classify(self.classifier, data.val_x)
        self.val_accuracy = float((val_probs.argmax(1) == data.val_y.numpy()).mean())
        print(f"evaluation classifier trained on the fit images: validation accuracy {self.val_accuracy:.4f}",
              flush=True)
        self.ae_config = h.ae_config()
        self.decoder = h.autoencoder(self.ae_config, required=True)[0].decoder

    def judge(self, sample, seed: int = 1) -> dict:
        """FD, precision and recall against the validation images of `samples` codes from sample(n, seed)."""
        feats, _ = h.classify(self.classifier, h.decode(self.decoder, sample(self.samples, seed)))
        return {"fd": h.frechet_distance(feats, self.val_feats), **h.precision_recall(self.val_feats, feats)}

    def score(self, config) -> dict:
        """Train a GAN of `config` on the fit codes (not cached: the report's GANs train on all training
        codes) and judge it; a conditional one by its mean FD per digit against that digit's images."""
        start = time.perf_counter()
        h.set_seed(config.seed)
        gan = h.LatentGAN(config).to(h.DEVICE)
        h.train_latent_gan(gan, self.data.fit_codes, self.data.fit_y if config.n_classes else None)
        if not config.n_classes:
            return {**self.judge(lambda n, seed: h.sample_codes(gan.generator, n, seed=seed)),
                    "seconds": time.perf_counter() - start}
        per_digit = self.samples // 10
        fds, recognised = [], []
        for digit in range(10):
            codes = h.sample_codes(gan.generator, per_digit, torch.full((per_digit,), digit), seed=1 + digit)
            feats, probs = h.classify(self.classifier, h.decode(self.decoder, codes))
            fds.append(h.frechet_distance(feats, self.val_feats[self.data.val_y.numpy() == digit]))
            recognised.append(float((probs.argmax(1) == digit).mean()))
        return {"fd": float(np.mean(fds)), "recognised": float(np.mean(recognised)),
                "seconds": time.perf_counter() - start}


def better(candidate: dict, incumbent: dict) -> bool:
    """A candidate replaces the incumbent only if its FD is lower by more than GAN_PLATEAU (relative): at
    the FDs of these GANs (5 and above) more than the FD's own sample noise (a standard deviation of 0.37
    over draws of one mixture on the validation images), so a lucky draw alone rarely moves the recipe."""
    return candidate["fd"] < incumbent["fd"] * (1 - GAN_PLATEAU)


def coordinate_search(name: str, base, stages: list, judge: GanJudge) -> dict:
    """Stage by stage, every change of the stage from the incumbent (the report's recipe at the start),
    each trained once (seed 0) and scored by validation FD; the incumbent moves only to a candidate
    that is better() than it. Returns every candidate and the chosen changes."""
    chosen, tried = {}, []
    incumbent = {"setting": {}, **judge.score(base)}
    tried.append(incumbent)
    print(f"recipe    {name:<9} start {json.dumps(recipe_of(base))}: FD {incumbent['fd']:.3f}  "
          f"{incumbent['seconds']:.0f} s", flush=True)
    for stage in stages:
        winner = incumbent
        for change in stage:
            if all(getattr(dataclasses.replace(base, **chosen), k) == v for k, v in change.items()):
                continue  # the incumbent itself
            setting = {**chosen, **change}
            row = {"setting": setting, **judge.score(dataclasses.replace(base, **setting))}
            tried.append(row)
            print(f"recipe    {name:<9} {json.dumps(setting)}: FD {row['fd']:.3f}  {row['seconds']:.0f} s", flush=True)
            if better(row, incumbent) and row["fd"] < winner["fd"]:
                winner = row
        incumbent, chosen = winner, dict(winner["setting"])
    print(f"recipe    {name:<9} -> {json.dumps(chosen) if chosen else 'the starting recipe'} (FD {incumbent['fd']:.3f})",
          flush=True)
    return {"tried": tried, "changes": chosen, "chosen": recipe_of(dataclasses.replace(base, **chosen))}


def recipe_of(config) -> dict:
    """The searched fields of a GAN config."""
    return {k: getattr(config, k) for k in RECIPE_FIELDS}


def search_recipes(judge: GanJudge, steps: dict, grids=None, aux_weights=CGAN_AUX_WEIGHTS) -> dict:
    """The GANs' optimiser recipe on validation FD, starting from the report's recipe: the Gaussian-noise
    GAN's learning rate, R1 weight and width; then the mixture-prior GAN's learning rate, weight average
    and warm-up (with the R1 weight and width just chosen); then the conditional GAN's auxiliary weight
    (with the Gaussian-noise GAN's recipe). Each family at `steps[family]`, the length curves' choice."""
    grids = RECIPE_GRIDS if grids is None else grids
    ae = judge.ae_config
    k8 = coordinate_search("k8", dataclasses.replace(h.gan_config(h.RECIPE.report_noise_dim, ae), steps=steps["k8"]),
                           grids["k8"], judge)
    shared = {key: k8["chosen"][key] for key in ("r1", "hidden")}
    prior = coordinate_search("gmm_prior", dataclasses.replace(h.mixture_gan_config(ae), steps=steps["gmm_prior"],
                                                               **shared), grids["gmm_prior"], judge)
    cgan_base = dataclasses.replace(h.gan_config(h.RECIPE.report_noise_dim, ae, conditional=True),
                                    steps=steps["cgan"], **{key: k8["chosen"][key] for key in ("lr", "r1", "hidden")})
    weights = {}
    for w in aux_weights:
        weights[w] = judge.score(dataclasses.replace(cgan_base, aux_weight=w))
        print(f"recipe    cgan      aux weight {w}: mean FD per digit {weights[w]['fd']:.3f}, recognised "
              f"{weights[w]['recognised']:.4f} ({steps['cgan']} steps)  {weights[w]['seconds']:.0f} s", flush=True)
    best = min(weights, key=lambda w: weights[w]["fd"])
    print(f"recipe    cgan      -> aux weight {best}", flush=True)
    return {"classifier_val_accuracy": judge.val_accuracy, "steps": steps, "k8": k8, "gmm_prior": prior,
            "cgan_aux_weight": {"scores": weights, "best": best}}


def check_lengths(judge: GanJudge, recipe: dict, earlier: dict | None = None) -> dict:
    """Whether the report's lengths still hold at the recipe the recipe search chose (the length curves
    ran at the recipe before it): each family trained for twice its length, against its FD at its length
    in the recipe search (same config and seed), and doubled again while the plateau rule picks the
    longest run (at most MAX_DOUBLINGS times). `earlier`: a previous result of this part, whose FDs of
    the same recipe are reused instead of trained again."""
    ae = judge.ae_config
    steps = {family: int(n) for family, n in recipe["steps"].items()}  # the lengths the recipe search ran at
    k8, prior = recipe["k8"]["chosen"], recipe["gmm_prior"]["chosen"]
    weights = {float(w): r for w, r in recipe["cgan_aux_weight"]["scores"].items()}
    configs = {"gmm_prior": dataclasses.replace(h.mixture_gan_config(ae), **prior),
               "k8": dataclasses.replace(h.gan_config(h.RECIPE.report_noise_dim, ae), **k8),
               "cgan": dataclasses.replace(h.gan_config(h.RECIPE.report_noise_dim, ae, conditional=True,
                                                        aux_weight=float(recipe["cgan_aux_weight"]["best"])),
                                           **{key: k8[key] for key in ("lr", "r1", "hidden")})}
    found = {family: next(r["fd"] for r in recipe[family]["tried"] if r["setting"] == recipe[family]["changes"])
             for family in ("k8", "gmm_prior")}
    found["cgan"] = weights[configs["cgan"].aux_weight]["fd"]
    out = {}
    for family, config in configs.items():
        config = dataclasses.replace(config, steps=steps[family])
        # Same config, seed, precision, training code, classifier and sample count: the same FDs.
        key = f"{h.cache_key(config)}-{judge.epochs}-{judge.samples}"
        known = {}
        if earlier and earlier.get(family, {}).get("key") == key:
            known = {int(n): fd for n, fd in earlier[family]["fd"].items()}
        fds, length = {steps[family]: found[family]}, steps[family]
        for _ in range(MAX_DOUBLINGS):
            length *= 2
            fds[length] = known.get(length) or judge.score(dataclasses.replace(config, steps=length))["fd"]
            print(f"length    {family:<9} FD {fds[length]:.3f} at {length} steps"
                  f"{' (from the earlier run)' if length in known else ''}", flush=True)
            if gan_plateau(fds) != length:
                break
        out[family] = {"key": key, "fd": fds, "steps": gan_plateau(fds)}
        still = gan_plateau(fds) == max(fds)
        print(f"length    {family:<9} FD {fds[steps[family]]:.3f} at {steps[family]} steps -> {out[family]['steps']} "
              f"steps{' (still falling at the longest run)' if still else ''}", flush=True)
    return out


def search_gans(judge: GanJudge, lengths=GAN_LENGTHS, mixture_components: int = 10, seeds=(0, 1, 2),
                prior_steps: int = h.RECIPE.mixture_steps) -> dict:
    """Validation FD of the latent GANs (at the report's recipe) against their number of steps, and the
    matched-recipe comparison of the priors."""
    data, ae_config = judge.data, judge.ae_config
    configs = {"k8": lambda steps: dataclasses.replace(h.gan_config(h.RECIPE.report_noise_dim, ae_config), steps=steps),
               "gmm_prior": lambda steps: dataclasses.replace(h.mixture_gan_config(ae_config), steps=steps),
               "cgan": lambda steps: dataclasses.replace(
                   h.gan_config(h.RECIPE.report_noise_dim, ae_config, conditional=True), steps=steps)}
    result = {"classifier_val_accuracy": judge.val_accuracy}
    for family, family_lengths in lengths.items():
        fds = {}
        for steps in family_lengths:
            fds[steps] = judge.score(configs[family](steps))
            print(f"{family:<9} {steps} steps: FD {fds[steps]['fd']:.3f}  {fds[steps]['seconds']:.0f} s", flush=True)
        chosen = gan_plateau({steps: r["fd"] for steps, r in fds.items()})
        result[family] = {"scores": fds, "steps": chosen}
        if min(fds, key=lambda steps: fds[steps]["fd"]) == max(fds):
            print(f"{family}: the lowest FD is at the longest run; a longer curve may pay", flush=True)
        print(f"{family:<9} -> {chosen} steps (lowest FD {min(r['fd'] for r in fds.values()):.3f})", flush=True)
    result["priors"] = compare_priors(data, ae_config, judge, mixture_components, seeds, prior_steps)
    return result


def compare_priors(data: Data, ae_config, judge: GanJudge, components: int, seeds, steps: int) -> dict:
    """The recipe matched: the Gaussian-noise GAN under the mixture-prior GAN's recipe (steps, constant
    learning rate, weight average, warm-up) against the mixture-prior GAN, and the Gaussian mixture of
    the size chosen by held-out likelihood, over seeds; and the FD's own noise, over sample draws of one
    fixed mixture. The two GANs still differ in more than the prior: the mixture prior's generator adds
    its output to the mixture draw and starts at the 10-component mixture (see helpers.Generator)."""
    warmup = min(h.RECIPE.mixture_warmup, steps)
    matched = lambda seed: dataclasses.replace(h.mixture_recipe_gan_config(ae_config, seed=seed), steps=steps,
                                               d_warmup=warmup)
    prior = lambda seed: dataclasses.replace(h.mixture_gan_config(ae_config, seed=seed), steps=steps, d_warmup=warmup)
    samplers = {"k8_matched": lambda seed: judge.score(matched(seed)),
                "gmm_prior": lambda seed: judge.score(prior(seed)),
                f"gmm{components}": lambda seed: judge.judge(h.fit_gmm(data.fit_codes, components, seed))}
    rows = {}
    for name, run in samplers.items():
        rows[name] = [run(seed) for seed in seeds]
        values = {key: [r[key] for r in rows[name]] for key in ("fd", "precision", "recall")}
        print(f"prior     {name:<11} " + "  ".join(f"{key} {np.mean(v):.3f} +- {np.std(v, ddof=1) if len(v) > 1 else 0:.3f} "
                                              f"({', '.join(f'{x:.3f}' for x in v)})" for key, v in values.items()),
              flush=True)
    mixture = h.fit_gmm(data.fit_codes, components, seeds[0])
    noise = [judge.judge(mixture, seed=100 + i)["fd"] for i in range(5)]
    print(f"FD noise: one {components}-component mixture, 5 sample draws: {np.mean(noise):.3f} +- "
          f"{np.std(noise, ddof=1):.3f}", flush=True)
    return {"seeds": list(seeds), "samplers": rows, "fd_sample_noise": noise,
            "fd_sample_noise_std": float(np.std(noise, ddof=1))}


def check_schedule(data: Data, ds=(10, 64)) -> dict:
    """Validation MSE of the recipe's autoencoder and of the same model trained twice as long."""
    train_x = torch.cat([data.fit_x, data.val_x])
    rows = {}
    for d in ds:
        mse = {}
        for epochs in (h.RECIPE.ae_epochs, 2 * h.RECIPE.ae_epochs):
            model, _ = h.autoencoder(dataclasses.replace(h.ae_config(d), epochs=epochs), train_x)
            mse[epochs] = h.mse_per_pixel(h.reconstruct(model, data.val_x), data.val_x)
        change = (mse[2 * h.RECIPE.ae_epochs] - mse[h.RECIPE.ae_epochs]) / mse[h.RECIPE.ae_epochs]
        rows[d] = {"epochs": h.RECIPE.ae_epochs, "val_mse": mse[h.RECIPE.ae_epochs], "long_val_mse": mse[2 * h.RECIPE.ae_epochs],
                   "rel_change": change}
        print(f"schedule  d={d}: validation MSE {mse[h.RECIPE.ae_epochs]:.6f} after {h.RECIPE.ae_epochs} epochs, "
              f"{mse[2 * h.RECIPE.ae_epochs]:.6f} after {2 * h.RECIPE.ae_epochs}: {100 * change:+.2f}%", flush=True)
    return rows


CLASSIFIER_EPOCHS = (1, 2, 3, 6)


def classifier_epochs(data: Data, lengths=CLASSIFIER_EPOCHS) -> dict:
    """Validation accuracy of the evaluation classifier trained on the fit images for each number of epochs."""
    scores = {}
    for epochs in lengths:
        config = h.ClassifierConfig(epochs=epochs, train_size=len(data.fit_x))
        model, _ = h.cached_model(config, h.EvalClassifier, lambda m: h.train_classifier(m, data.fit_x, data.fit_y))
        scores[epochs] = h.accuracy(model, data.val_x, data.val_y)
        print(f"classifier {epochs} epochs: validation accuracy {scores[epochs]:.4f}", flush=True)
    best = max(scores.values())
    chosen = min(e for e, acc in scores.items() if acc >= best - 0.001 - 1e-6)  # 1e-6: float32 accuracies
    print(f"classifier -> {chosen} epochs", flush=True)
    return {"scores": scores, "epochs": chosen}


def plot_search(result: dict) -> list:
    """Figures of the search: each section-3 arm's chosen setting, validation accuracy against steps per
    number of labels; each latent GAN family's validation FD against steps."""
    import matplotlib

    matplotlib.use("Agg")
    h.figure_style()
    paths = []
    if "transfer" in result:
        import matplotlib.pyplot as plt

        arms = result["transfer"]["arms"]
        labels = result["transfer"]["labels"]
        fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3.6), squeeze=False)
        for ax, n in zip(axes[0], labels):
            for (arm, candidates), marker in zip(arms.items(), "osD^v"):
                curve = max(candidates, key=lambda c: c["best"])["runs"][str(n)]["curve"]
                ax.plot([int(s) for s in curve], list(curve.values()), marker=marker, label=arm)
            ax.set_xscale("log", base=2)
            steps = sorted({int(s) for c in arms.values() for s in c[0]["runs"][str(n)]["curve"]})
            ax.set_xticks(steps, [str(s) for s in steps])
            ax.set_title(f"{n} labels")
            ax.set_xlabel("training steps")
        axes[0][0].set_ylabel("validation accuracy")
        axes[0][0].legend(fontsize=8)
        fig.suptitle("Section 3: each arm's chosen setting, mean over draws", y=1.03)
        paths.append(h.save_figure(fig, "validation_transfer"))
    if "gan" in result:
        series = {family: ([int(s) for s in result["gan"][family]["scores"]],
                           [r["fd"] for r in result["gan"][family]["scores"].values()])
                  for family in ("k8", "gmm_prior", "cgan") if family in result["gan"]}
        h.plot_curves(series, "training steps", "validation FD (cgan: mean per digit)",
                      "Latent GANs: runs of each length", "validation_gans", logx=True)
        paths.append(h.FIGURES_DIR / "validation_gans.png")
    return paths


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("transfer", "mixture", "classifier", "gan", "recipe", "length", "schedule",
                                           "all"),
                        default="all")
    parser.add_argument("--out", type=Path, default=h.FIGURES_DIR / "validation.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = Data()
    print(f"fit {len(data.fit_x):,} images, validation {len(data.val_x):,} images (training set "
          f"{h.RECIPE.ae_train_size:,}-{h.RECIPE.ae_train_size + h.RECIPE.ae_val_size - 1:,}); precision {h.PRECISION}", flush=True)
    quick = h.SMOKE  # the smoke mode's small grids, beside its small recipe
    result = {"quick": quick}
    if args.part in ("transfer", "all"):
        kwargs = dict(labels=QUICK["labels"], draws=QUICK["draws"], curve_steps=QUICK["curve"],
                      grids=QUICK["grids"], cluster_grid=QUICK["cluster"]) if quick else {}
        result["transfer"] = search_transfer(data, **kwargs)
        print(tabulate([(arm, json.dumps(s)) for arm, s in result["transfer"]["selection"].items()],
                       headers=("arm", "chosen on validation")))
    if args.part in ("mixture", "all"):
        result["mixture"] = search_mixture(data, QUICK["mixture"] if quick else MIXTURE_COMPONENTS)
    if args.part in ("classifier", "all"):
        result["classifier"] = classifier_epochs(data, (1, 2) if quick else CLASSIFIER_EPOCHS)
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    epochs = int(result.get("classifier", earlier.get("classifier", {})).get("epochs", h.RECIPE.classifier_epochs))
    if args.part in ("gan", "recipe", "length", "all"):  # one classifier and decoder for the GAN parts
        judge = GanJudge(data, QUICK["gan_samples"] if quick else GAN_SAMPLES, epochs)
    if args.part in ("gan", "all"):
        kwargs = dict(lengths=QUICK["gan_lengths"], seeds=(0, 1), prior_steps=20) if quick else {}
        components = result.get("mixture", earlier.get("mixture", {})).get("best_components", 10)
        result["gan"] = search_gans(judge, mixture_components=int(components), **kwargs)
    if args.part in ("recipe", "all"):
        kwargs = dict(grids=QUICK["recipe_grids"], aux_weights=QUICK["aux_weights"]) if quick else {}
        gan = result.get("gan", earlier.get("gan"))
        result["recipe"] = search_recipes(judge, {f: int(gan[f]["steps"]) for f in ("k8", "gmm_prior", "cgan")},
                                          **kwargs)
    if args.part in ("length", "all"):
        result["length"] = check_lengths(judge, result.get("recipe", earlier.get("recipe")),
                                         earlier=None if quick else earlier.get("length"))
    if args.part in ("schedule", "all") and not quick:  # smoke mode: the unit tests cover the training
        result["schedule"] = check_schedule(data)
    for part in result.values():
        if isinstance(part, dict):
            part["precision"] = h.PRECISION  # parts of the file may come from runs in other precisions
    result["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One part at a time updates the file: the other parts' last results stay.
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    merged = json.loads(json.dumps({**earlier, **result}, default=str))
    args.out.write_text(json.dumps(merged, indent=1))
    if args.out.parent == h.FIGURES_DIR:  # the report's figures folder: draw the curves beside the file
        plot_search(merged)
    print(f"{result['seconds']:.0f} s; written to {args.out}")
    return result


if __name__ == "__main__":
    main()
