"""The validation search as Optuna studies: one study per model family, each a plain-text journal under studies/.

Every trial trains its model through the checkpoint cache (so the report loads the very model a trial trained
when config, seed, precision and code match), is scored on the validation images (the 5,000 training images
after the first 55,000; never a test image), and is recorded with its curve, precision, cache key and seconds.
A search that is killed resumes where it stopped: finished trials are read back from the journal, a trial left
running by the kill is marked failed and trained again.

The autoencoder family (`search_autoencoder`):
1. recipe: learning rate x batch size at `epochs` (10; d = 10, the report's design, seed 0); a choice on
   an edge of the learning-rate grid extends the grid by one factor of two, at most `max_extensions` times;
2. noise: the chosen recipe at two more seeds, at d = 10 and d = 64: the spread of the validation MSE over seeds;
3. length: the chosen recipe at twice and four times the epochs (d = 10 and 64, seed 0), more while a doubling
   still gains more than the seed spread; the length is the shortest run whose doubling gains less than that;
4. refine: the learning rate again at that length (the longest run, where no d reached a plateau), at d = 10
   and 64 (lr/8 to lr, by the mean relative validation MSE), then the refined rate's seed spread at the length,
   and the length again at that rate (half of it, one doubling, more doublings for the report's d while it still
   falls): each d's length.
The evaluation classifier's study (`search_classifier`: its epochs by the same doubling rule), the latent-GAN studies
(here; judged through that classifier) and the few-label and mixture studies (search_fewlabel) run on the report's
autoencoder under this choice (`studied_recipe`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import runtime
from .settings import RECIPE, Recipe
from .autoencoder import AEConfig, ae_config, autoencoder, train_missing
from .cache import cache_key, checkpoint_path, code_hash
from .data import load_mnist
from .studies import (PrecisionMismatch, check_machine, complete, finished_trials, open_study, open_study_to_train,  # noqa: F401
                      set_chosen, stored_choice, study_precision, tell, trial_key, STUDY_DIR)

TRIAL_FIELDS = ("stage", "config", "cache_key", "precision", "curve", "train_seconds", "value")


def ae_trial_key(stage: str, config: AEConfig) -> str:
    """An autoencoder trial's key: its settings and its checkpoint's name (every config field, the precision and
    the training code), so a trial is read back only for the very model it trained."""
    return trial_key(stage, {**_params(config), "cache_key": cache_key(config)})


def run_trials(study, stage: str, configs: list, images, log=print, workers: int = 2) -> dict:
    """Train the autoencoders of `configs` (`workers` at a time, in worker processes on a CPU), record each as a
    complete trial of `stage` with its validation curve, and return {config: trial} for all of them."""
    done = finished_trials(study)
    out, todo = {}, []
    for config in configs:
        key = ae_trial_key(stage, config)
        if key in done:
            out[config] = done[key]
        else:
            todo.append(config)
    workers = workers if runtime.DEVICE.type == "cpu" else 1
    # a model already in the checkpoint cache (another stage's trial) is recorded on its own, so that the models
    # still to train go in full chunks, one per worker
    cached = [c for c in todo if checkpoint_path(c).exists()]
    missing = [c for c in todo if c not in cached]
    for chunk in [[c] for c in cached] + [missing[i:i + workers] for i in range(0, len(missing), workers)]:
        # A trial opens before its model trains, so a kill leaves it running (then failed on resume).
        trials = [study.ask() for _ in chunk]
        begun = time.perf_counter()
        train_missing(chunk, images)
        trained = {c: autoencoder(c, images, progress=False) for c in chunk}
        for trial, config in zip(trials, chunk):
            info = trained[config][1]
            curve = [float(v) for v in info["val_mse_history"]]
            attrs = {"stage": stage, "key": ae_trial_key(stage, config), "config": _params(config),
                     "cache_key": cache_key(config), "precision": runtime.PRECISION, "curve": curve,
                     "train_seconds": float(info["train_seconds"]), "value": curve[-1],
                     "wall_seconds": time.perf_counter() - begun}
            out[config] = complete(study, trial, attrs, dict(enumerate(curve, 1)))
            log(f"{stage:<7} d={config.d:<3} lr {config.lr:g} batch {config.batch_size} epochs {config.epochs} "
                f"seed {config.seed}: validation MSE {curve[-1]:.6f} ({info['train_seconds']:.0f} s)")
    return out


def _params(config: AEConfig) -> dict:
    return {"d": config.d, "lr": config.lr, "batch_size": config.batch_size, "epochs": config.epochs,
            "seed": config.seed, "design": f"{config.bottleneck}{config.hidden if config.bottleneck == 'fc' else ''}"}


def best_of(trials: list):
    """The trial with the lowest validation MSE (ties: the first)."""
    return min(trials, key=lambda t: t.value)


def choose_length(values: dict, noise: float) -> int:
    """The shortest length whose doubling gains less than `noise` ({epochs: validation MSE}); None if every
    doubling measured still gains more (the curve has not reached its plateau)."""
    lengths = sorted(values)
    for short, long in zip(lengths, lengths[1:]):
        if long == 2 * short and values[short] - values[long] < noise:
            return short
    return None


def search_autoencoder(images=None, recipe: Recipe | None = None, lrs=(1e-3, 2e-3, 4e-3, 8e-3), batches=(128, 256),
                       ds=(10, 64), epochs: int = 10, max_doublings: int = 3, max_extensions: int = 4,
                       folder: Path | None = None, log=print, workers: int = 2, architecture: dict | None = None) -> dict:
    """The autoencoder family's study (module docstring); returns the chosen recipe and what chose it. The
    recipe stage runs at `epochs` whatever the recipe's own length; `architecture` changes every config's layers
    (the tests' small networks); the report's by default."""
    recipe = recipe or RECIPE
    config_of = lambda d: replace(ae_config(d, epochs=epochs, recipe=recipe), **(architecture or {}))
    images = load_mnist(train=True)[0] if images is None else images
    study = open_study_to_train("autoencoder", folder)
    base = config_of(recipe.report_d)
    start = time.perf_counter()
    # 1. recipe: learning rate x batch size, extended past an edge the choice lands on.
    lrs = sorted(lrs)
    for extension in range(max_extensions + 1):
        grid = [replace(base, lr=lr, batch_size=b) for lr in lrs for b in batches]
        trials = run_trials(study, "recipe", grid, images, log, workers)
        chosen = best_of(list(trials.values())).user_attrs["config"]
        if extension == max_extensions or lrs[0] < chosen["lr"] < lrs[-1]:
            break
        lrs = lrs + [lrs[-1] * 2] if chosen["lr"] == lrs[-1] else [lrs[0] / 2] + lrs
    lr, batch = chosen["lr"], chosen["batch_size"]
    on_edge = not lrs[0] < lr < lrs[-1]  # still on an edge after every extension: the report says so
    # 2. noise: the chosen recipe at three seeds, at each d.
    seeds = {d: [replace(config_of(d), lr=lr, batch_size=batch, seed=s) for s in (0, 1, 2)] for d in ds}
    noise_trials = run_trials(study, "noise", [c for cs in seeds.values() for c in cs], images, log, workers)
    noise = {d: float(np.std([noise_trials[c].value for c in cs], ddof=1)) for d, cs in seeds.items()}
    # 3. length: doublings while they still gain more than the seed spread (each d's next doubling trained beside
    # the other d's, so that both workers are busy).
    values = {d: {seeds[d][0].epochs: noise_trials[seeds[d][0]].value} for d in ds}
    growing = list(ds)
    for k in range(1, max_doublings + 1):
        longer = {d: replace(seeds[d][0], epochs=seeds[d][0].epochs * 2 ** k) for d in growing}
        trials = run_trials(study, "length", list(longer.values()), images, log, workers)
        for d, config in longer.items():
            values[d][config.epochs] = trials[config].value
        growing = [d for d in growing if choose_length(values[d], noise[d]) is None]
        if not growing:
            break
    lengths = {d: {"values": values[d], "noise": noise[d], "epochs": choose_length(values[d], noise[d])} for d in ds}
    # every d refined at the longest plateau found, or at the longest length run where none was (refine_rate)
    refined = refine_rate(study, config_of, lr, batch, lengths, images, log, workers, extend=(recipe.report_d,))
    lr, lengths = refined["lr"], refined["lengths"]
    result = {"lr": lr, "recipe_lr": chosen["lr"], "batch_size": batch, "lr_grid": lrs, "lr_on_edge": on_edge,
              "batch_grid": list(batches),
              "batch_on_edge": batch in (min(batches), max(batches)) and len(batches) > 1, "lengths": lengths,
              "refine": refined,
              "precision": runtime.PRECISION, "seconds": time.perf_counter() - start}
    set_chosen(study, result)
    log(f"autoencoder: lr {lr:g}, batch {batch}; lengths " +
        ", ".join(f"d={d}: {v['epochs']} epochs (seed spread {v['noise']:.2e})" for d, v in lengths.items()))
    return result


def _trained(study, configs: list, stage: str, images, log, workers) -> dict:
    """{config: trial} for `configs`, read back from a finished trial of any stage with the same settings, the
    others trained as trials of `stage`."""
    known = {t.user_attrs["cache_key"]: t for t in finished_trials(study).values()}
    out = {c: known[cache_key(c)] for c in configs if cache_key(c) in known}
    return {**out, **run_trials(study, stage, [c for c in configs if c not in out], images, log, workers)}


def refine_rate(study, config_of, lr: float, batch: int, lengths: dict, images, log=print, workers: int = 2,
                max_extensions: int = 2, extend: tuple = (), max_epochs: int = 160) -> dict:
    """Stage 4 of the autoencoder study: the learning rate again, at the chosen length and at every d of `lengths`
    (a rate chosen on a short run at d = 10 need not suit a four times longer run, nor d = 64), at the longest
    plateau found (a d whose length stage found none within its cap is refined there too; where no d found one,
    at the longest length the length stage ran, marked at_cap): lr / 8, lr / 4,
    lr / 2 and lr, scored by the mean over d of each rate's validation MSE divided by the best rate's at that d
    (a choice on the grid's lower edge halves it again, at most `max_extensions` times).
    Then, at the refined rate and every d, the seed spread at that length (seeds 1, 2 beside seed 0; the spread
    measured at 10 epochs, where the runs are far from converged, is not the noise of a 40-epoch run), and the
    length again by the doubling rule, since a slower rate may need a longer run or a faster one a shorter: half
    the length and one doubling at every d, then, for the d of `extend` (the report's), further doublings while
    one still gains more than the spread, up to `max_epochs`. A d with no plateau there has length None."""
    found = [v["epochs"] for v in lengths.values() if v["epochs"]]  # a d still falling at the cap: this length too
    # no d reached a plateau within the length stage's cap: the longest length it ran (the rate may be what kept
    # the runs falling; the refined rate's own doublings below decide the length)
    epochs = max(found) if found else max(int(e) for v in lengths.values() for e in v["values"])
    ds, rates = sorted(lengths, key=int), [lr / 8, lr / 4, lr / 2, lr]
    for extension in range(max_extensions + 1):
        grid = {(d, r): replace(config_of(int(d)), lr=r, batch_size=batch, epochs=epochs) for d in ds for r in rates}
        trials = _trained(study, list(grid.values()), "refine", images, log, workers)
        value = {k: trials[c].value for k, c in grid.items()}
        score = {r: float(np.mean([value[d, r] / min(value[d, q] for q in rates) for d in ds])) for r in rates}
        chosen = min(rates, key=lambda r: (score[r], -r))  # ties: the faster rate
        log("refine: mean relative validation MSE " + ", ".join(f"lr {r:g}: {score[r]:.4f}" for r in rates))
        if chosen != rates[0] or extension == max_extensions:  # the top, lr, was beaten by 2 lr at 10 epochs already
            break
        rates = [rates[0] / 2] + rates  # the choice on the grid's lower edge: one more halving
    seeds = [replace(grid[d, chosen], seed=s) for d in ds for s in (1, 2)]
    around = [replace(grid[d, chosen], epochs=e) for d in ds for e in ((epochs // 2,) if epochs % 2 == 0 else ()) + (2 * epochs,)]
    more = _trained(study, seeds + around, "refine", images, log, workers)
    spread = {d: float(np.std([value[d, chosen]] + [more[c].value for c in seeds if c.d == int(d)], ddof=1)) for d in ds}
    values = {d: {epochs: value[d, chosen], **{c.epochs: more[c].value for c in around if c.d == int(d)}} for d in ds}
    longest = 2 * epochs
    while 2 * longest <= max_epochs:  # each further doubling of the d's still falling, trained side by side
        growing = [d for d in ds if int(d) in extend and choose_length(values[d], spread[d]) is None]
        if not growing:
            break
        longest *= 2
        longer = {d: replace(grid[d, chosen], epochs=longest) for d in growing}
        trained = _trained(study, list(longer.values()), "refine", images, log, workers)
        for d, c in longer.items():
            values[d][longest] = trained[c].value
    new = {d: {"values": values[d], "noise": spread[d], "epochs": choose_length(values[d], spread[d])} for d in ds}
    return {"rates": rates, "epochs": epochs, "values": {str(d): {str(r): value[d, r] for r in rates} for d in ds},
            "relative": {str(r): score[r] for r in rates}, "lr": chosen, "on_edge": chosen in (rates[0], rates[-1]),
            "at_cap": not found, "lengths": new}


def studied_recipe(folder: Path | None = None, base: Recipe | None = None) -> Recipe:
    """`base` (this process's recipe by default) with the autoencoder recipe the stored autoencoder study chose:
    its refined learning rate, batch size and its length at the report's d, and section 1's length and rate (the
    grid's length and the rate the grid chose). The studies of the models built on
    the report's autoencoder (latent GANs, few-label arms) run on this recipe."""
    study = open_study("autoencoder", folder)
    base = base or RECIPE
    chosen = study.user_attrs.get("chosen")
    if chosen is None or not chosen.get("refine"):
        raise RuntimeError("the autoencoder study has not chosen yet: run `python tools/search.py --family autoencoder`")
    epochs = chosen["lengths"][str(base.report_d)]["epochs"]
    if epochs is None:
        raise RuntimeError(f"the autoencoder study found no plateau at d = {base.report_d}: {chosen['lengths']}")
    # section 1's comparisons: the grid's length, at the rate the grid chose for it (where the study records both)
    grid_epochs = [t.user_attrs["config"]["epochs"] for t in study.get_trials(deepcopy=False)
                   if t.user_attrs.get("stage") == "recipe"]
    sweep = dict(sweep_lr=chosen["recipe_lr"], sweep_epochs=grid_epochs[0]) if grid_epochs and "recipe_lr" in chosen else {}
    recipe = replace(base, ae_lr=chosen["lr"], ae_batch_size=chosen["batch_size"], ae_epochs=epochs, **sweep)
    # the report's autoencoder under this choice must be a model the study trained and scored: the same checkpoint
    # name (config, precision, training code); otherwise this machine or this code would train another one
    from optuna.trial import TrialState

    key = cache_key(ae_config(recipe=recipe))
    if key not in {t.user_attrs.get("cache_key") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}:
        raise RuntimeError(f"the report's autoencoder under the study's choice (checkpoint {key}, {runtime.PRECISION}) "
                           "is no trial of the stored autoencoder study: another precision or training code than the "
                           "study's would train another model")
    return recipe


def shared_gan_recipe(recipe: Recipe, folder: Path | None = None) -> Recipe:
    """`recipe` with the width and R1 weight the k8 study chose (COORDINATES), which every latent GAN shares: the
    recipe of the cgan and gmm_prior studies, which run after it."""
    k8 = stored_choice("gan_k8", folder)
    if k8 is None:
        raise RuntimeError("the gan_k8 study has not chosen the GANs' shared width and R1 weight yet: run it first "
                           "(`python tools/search.py --family gan_k8`)")
    return replace(recipe, gan_recipe={**recipe.gan_recipe, **k8["shared"]})


def picked_recipe(folder: Path | None = None, base: Recipe | None = None) -> Recipe:
    """`base` with every setting the stored studies chose: the autoencoder recipe (studied_recipe), the evaluation
    classifier's epochs (classifier_recipe), each latent-GAN family of the report's (REPORT_GANS) learning rate and
    length (and the conditional one's auxiliary weight), each few-label arm's settings and steps, self-training's schedule, cluster-then-label's settings and
    the mixture baseline's size. The report's FULL must equal it (a test)."""
    recipe = classifier_recipe(studied_recipe(folder, base), folder)
    gans = {family: stored_choice(f"gan_{family}", folder) for family in REPORT_GANS}
    missing = [f for f, c in gans.items() if c is None or c["length"]["steps"] is None]
    transfer = stored_choice("transfer", folder)
    unlabelled = stored_choice("unlabelled", folder)
    mixture = stored_choice("mixture", folder)
    missing += [name for name, c in (("transfer", transfer), ("unlabelled", unlabelled), ("mixture", mixture)) if c is None]
    if missing:
        raise RuntimeError(f"studies without a choice or a length: {missing}")
    k8, cgan = gans["k8"], gans["cgan"]
    if cgan.get("shared") != k8["shared"]:  # it ran on the k8 study's width and R1 weight
        raise RuntimeError(f"the cgan study ran on another width or R1 weight than the k8 study chose "
                           f"({k8['shared']}): {cgan.get('shared')}")
    if k8["batch_size"] != GAN_BATCH:
        raise RuntimeError(f"the k8 study chose batch {k8['batch_size']}; the report's GANs train at {GAN_BATCH}")
    head = {k: transfer["frozen"][k] for k in ("lr", "hidden", "weight_decay")}  # every arm's head
    # each arm: the frozen head with the arm's own searched settings (its grid's) and length, as the search trained it;
    # a rate an extended grid reached by a factor of three is written as the number it stands for (3e-4, not
    # 0.00030000000000000003)
    tidy = lambda v: float(f"{v:.12g}") if isinstance(v, float) else v
    arm = lambda name: {**{k: tidy(v) for k, v in head.items()},
                        **{k: tidy(transfer[name][k]) for k in transfer[name]["grid"]}, "steps": transfer[name]["steps"]}
    settings_ = {"frozen": arm("frozen"), "selftrain": arm("frozen"), "finetune": arm("finetune"), "whole": arm("whole"),
                 "scratch": arm("scratch")}
    return replace(recipe, gan_recipe={**recipe.gan_recipe, **k8["shared"], "lr": k8["lr"]}, gan_steps=k8["length"]["steps"],
                   cgan_lr=cgan["lr"], cgan_aux_weight=cgan["aux_weight"], cgan_steps=cgan["length"]["steps"],
                   transfer_settings=settings_, selftrain_steps=unlabelled["selftrain"]["pseudo_steps"],
                   selftrain_fractions=tuple(unlabelled["selftrain"]["pseudo_fractions"]),
                   cluster_setting={k: unlabelled["cluster"][k] for k in ("dims", "neighbors", "components")},
                   gmm_components=mixture["components"])


# The latent GANs ------------------------------------------------------------------------------------


# The code that scores a latent GAN (sampling, decoding, the classifier's features, the distance), in every GAN
# trial's key beside the GAN's checkpoint name: a changed scorer does not read old scores back.
JUDGE_CODE = (("ex3lib.search", ("Judge",)), ("ex3lib.autoencoder", ("decode", "encode")),
              ("ex3lib.classifier", ("classify",)), ("ex3lib.metrics", ("frechet_distance",)),
              ("ex3lib.gan", ("sample_codes",)))


# The evaluation classifier -------------------------------------------------------------------------------


def classifier_trials(study, stage: str, configs: list, fit, val, log=print) -> dict:
    """Train the evaluation classifier of each of `configs` on the fit images (through the checkpoint cache), record
    it as a complete trial of `stage` scored by its validation error (the share of the validation images it gets
    wrong), and return {config: trial}."""
    from .classifier import classify, evaluation_classifier

    done, out = finished_trials(study), {}
    for config in configs:
        name = cache_key(config)
        params = {"epochs": config.epochs, "seed": config.seed, "cache_key": name}
        key = trial_key(stage, params)
        if key not in done:
            trial, begun = study.ask(), time.perf_counter()
            model, info = evaluation_classifier(*fit, config=config)
            error = float((classify(model, val[0])[1].argmax(1) != val[1].numpy()).mean())
            attrs = {"stage": stage, "key": key, "config": params, "cache_key": name, "precision": runtime.PRECISION,
                     "curve": [error], "train_seconds": float(info["train_seconds"]), "value": error,
                     "wall_seconds": time.perf_counter() - begun}
            done[key] = complete(study, trial, attrs)
            log(f"{stage:<7} epochs {config.epochs} seed {config.seed}: validation error {error:.4f} "
                f"({info['train_seconds']:.0f} s)")
        out[config] = done[key]
    return out


def search_classifier(folder: Path | None = None, log=print, recipe: Recipe | None = None, max_epochs: int = 16) -> dict:
    """The evaluation classifier's length (it judges every latent GAN, so the GAN studies run after it): its
    validation error at 1 epoch for seeds 0-2 (the spread over seeds), then the epochs doubled (seed 0) until a
    doubling gains less than that spread (the autoencoder study's rule), up to `max_epochs`; the spread measured
    again at that length (seeds 1 and 2) and the rule applied again with it. Its other settings are the
    report's (ClassifierConfig)."""
    from .classifier import eval_classifier_config
    from .data import validation_data

    study = open_study_to_train("classifier", folder)
    fit, val = validation_data("fit"), validation_data("validation")
    base, start = eval_classifier_config(recipe or RECIPE), time.perf_counter()
    run = lambda stage, configs: classifier_trials(study, stage, configs, fit, val, log)
    first = [replace(base, epochs=1, seed=s) for s in (0, 1, 2)]
    trials = run("noise", first)
    noise = float(np.std([trials[c].value for c in first], ddof=1))
    values = {1: trials[first[0]].value}

    def longer(epochs):
        config = replace(base, epochs=epochs, seed=0)
        return run("length", [config])[config].value

    epochs, spread = choose_length(doubled(values, noise, max_epochs, longer), noise), noise
    at = epochs
    if epochs is not None:  # the spread where the runs have converged, and the rule again with it
        seeds = [replace(base, epochs=epochs, seed=s) for s in (1, 2)]
        more = run("spread", seeds)
        spread = float(np.std([values[epochs]] + [more[c].value for c in seeds], ddof=1))
        epochs = choose_length(doubled(values, spread, max_epochs, longer), spread)
    result = {"epochs": epochs, "values": {str(e): v for e, v in sorted(values.items())}, "noise": noise,
              "spread": spread, "spread_at": at, "max_epochs": max_epochs, "precision": runtime.PRECISION,
              "seconds": time.perf_counter() - start}
    set_chosen(study, result)
    log(f"classifier: {epochs} epochs (validation error {json.dumps(result['values'])}; seed spread {spread:.4f})")
    return result


def classifier_recipe(recipe: Recipe, folder: Path | None = None) -> Recipe:
    """`recipe` with the evaluation classifier's epochs that the classifier study chose (the latent GANs' judge)."""
    chosen = stored_choice("classifier", folder)
    if chosen is None or chosen["epochs"] is None:
        raise RuntimeError(f"the classifier study has not chosen a length: {chosen} (`python tools/search.py --family "
                           "classifier`)")
    return replace(recipe, classifier_epochs=chosen["epochs"])


class Judge:
    """Scores latent GANs trained on the fit codes against the validation images: the Frechet distance in the
    features of the evaluation classifier (trained on the fit images only), averaged over sample draws."""

    def __init__(self, recipe: Recipe | None = None, samples: int = 5000, draws: int = 10):
        from .autoencoder import encode
        from .classifier import classify, eval_classifier_config, evaluation_classifier
        from .data import validation_data

        self.recipe, self.samples, self.draws = recipe or RECIPE, samples, draws
        fit_x, self.fit_y = validation_data("fit")
        self.val_x, self.val_y = validation_data("validation")
        self.ae_config = ae_config(recipe=self.recipe)
        model = autoencoder(self.ae_config, load_mnist(train=True)[0])[0]
        self.decoder, self.fit_codes = model.decoder, encode(model.encoder, fit_x)
        self.classifier, _ = evaluation_classifier(fit_x, self.fit_y, config=eval_classifier_config(self.recipe))
        self.val_feats, probs = classify(self.classifier, self.val_x)
        self.val_accuracy = float((probs.argmax(1) == self.val_y.numpy()).mean())
        # what a score depends on besides the generator: trials scored by another judge are not read back
        self.signature = {"samples": samples, "draws": draws, "ae": cache_key(self.ae_config),
                          "classifier": cache_key(eval_classifier_config(self.recipe)), "code": code_hash(*JUDGE_CODE)}

    def fd(self, sample, digit: int | None = None) -> tuple:
        """(mean, std) over self.draws draws of the FD of decoded codes sample(n, seed) against the validation
        images: self.samples codes against all of them, or a tenth as many against those of `digit`."""
        from .autoencoder import decode
        from .classifier import classify
        from .metrics import frechet_distance

        reference = self.val_feats if digit is None else self.val_feats[self.val_y.numpy() == digit]
        n = self.samples if digit is None else self.samples // 10
        fds = [frechet_distance(classify(self.classifier, decode(self.decoder, sample(n, 100 + i)))[0], reference)
               for i in range(self.draws)]
        return float(np.mean(fds)), float(np.std(fds, ddof=1)) if len(fds) > 1 else 0.0

    def score(self, generator) -> tuple:
        """(FD, its spread over draws) of a generator: an unconditional one against all validation images, a
        conditional one as the mean over digits of its samples of that digit against the validation images of it."""
        import torch

        from .gan import sample_codes

        if not generator.config.n_classes:
            return self.fd(lambda n, seed: sample_codes(generator, n, seed=seed))
        per_digit = [self.fd(lambda n, seed: sample_codes(generator, n, torch.full((n,), d), seed=seed + 1000 * d), d)
                     for d in range(10)]
        return float(np.mean([m for m, _ in per_digit])), float(np.sqrt(np.mean([v ** 2 for _, v in per_digit]) / 10))


def run_gan_trials(study, stage: str, configs: list, judge: Judge, log=print) -> dict:
    """Train each latent GAN of `configs` on the fit codes (through the checkpoint cache), record it as a
    complete trial of `stage` scored by its validation FD, and return {config: trial}."""
    import torch

    from .gan import latent_gan, sample_codes

    done, out = finished_trials(study), {}
    for config in configs:
        params = _gan_params(config)
        # the key: the checkpoint's name (every config field, the autoencoder, precision, code) and the judge
        key = trial_key(stage, {**params, "cache_key": cache_key(config), "judge": judge.signature})
        if key in done:
            out[config] = done[key]
            continue
        trial = study.ask()
        begun = time.perf_counter()
        gan, info = latent_gan(config, judge.fit_codes, judge.fit_y if config.n_classes else None)
        digits = torch.arange(100) % 10 if config.n_classes else None
        if torch.isfinite(sample_codes(gan.generator, 100, digits)).all():
            fd, fd_std = judge.score(gan.generator)
        else:  # a diverged generator: no image to score (tell records it as the worst value)
            fd, fd_std = math.nan, math.nan
        attrs = {"stage": stage, "key": key, "config": params, "cache_key": cache_key(config),
                 "precision": config.precision, "curve": [fd], "train_seconds": float(info["train_seconds"]), "value": fd,
                 "fd_draw_std": fd_std, "wall_seconds": time.perf_counter() - begun}
        out[config] = complete(study, trial, attrs)
        log(f"{stage:<7} {json.dumps(params)}: validation FD {out[config].value:.3f} +- {fd_std:.3f} "
            f"({info['train_seconds']:.0f} s)")
    return out


# ae_key names the autoencoder whose codes a GAN models: a study resumed on another autoencoder trains again.
GAN_FIELDS = ("noise_dim", "n_classes", "prior", "lr", "batch_size", "steps", "hidden", "r1", "ema", "d_warmup",
              "aux_weight", "seed", "train_codes", "precision", "ae_key")
# Each family's grid (GANConfig fields) and the steps its grid runs at (at batch 256; a larger batch runs
# proportionally fewer steps, so every candidate sees as many codes).
GAN_GRIDS = {
    "k8": (dict(lr=(1e-4, 3e-4, 1e-3), batch_size=(256, 1024)), 6000),
    "gmm_prior": (dict(lr=(1e-4, 3e-4, 1e-3), ema=(0.99, 0.999)), 2000),
    "cgan": (dict(aux_weight=(0.0, 0.1, 0.3), lr=(1e-4, 3e-4, 1e-3)), 3000),
}


# The latent-GAN families whose choices the report uses. gmm_prior (the mixture-prior GAN) stays searchable, but its
# validation FD still fell by more than its seed spread at 128,000 steps, 4x its grid's length: too dear to finish,
# and not needed to answer the exercise, so the report leaves it out.
REPORT_GANS = ("k8", "cgan")
GAN_BATCH = 256  # GANConfig's batch: the batch the k8 study's grid compares it with must not win silently
# The width and the R1 weight that every latent GAN shares (Recipe.gan_recipe): the k8 study tries each other
# value one at a time around its grid's choice, at the same multiply-adds (equal_compute: a width's steps
# scale inversely with its weights, as the grid's batches see the same codes; the R1 weight costs nothing), a
# change kept only where it beats that by more than the seed spread (a move onto an edge of the values tries the
# next value past it, COORDINATE_STEP away, twice at most); the cgan and gmm_prior studies then run on its
# choice (shared_gan_recipe).
COORDINATES = {"hidden": (128, 256, 512), "r1": (1.0, 10.0, 100.0)}
COORDINATE_STEP = {"hidden": 2, "r1": 10.0}  # a move onto an edge tries the next value past it, this factor away
# The width and R1 weight the k8 study's grid runs at (the report's before any study), whatever the recipe
# holds: a recipe that already holds the study's choice must not move the grid, or a rerun would train others.
GAN_START = {"hidden": 256, "r1": 10.0}


def _gan_params(config) -> dict:
    return {k: getattr(config, k) for k in GAN_FIELDS}


def gan_base(family: str, ae_cfg, train_codes: int, recipe: Recipe):
    """The report's config of a latent-GAN family, trained on `train_codes` codes in the run's precision (the one
    precision policy of a search: every model of it trains in runtime.PRECISION)."""
    from .gan import gan_config, mixture_gan_config

    if family not in GAN_GRIDS:
        raise ValueError(f"family must be one of {sorted(GAN_GRIDS)}, got {family!r}")
    config = {"k8": lambda: gan_config(recipe.report_noise_dim, ae_cfg, recipe=recipe),
              "gmm_prior": lambda: mixture_gan_config(ae_cfg, recipe=recipe),
              "cgan": lambda: gan_config(recipe.report_noise_dim, ae_cfg, conditional=True, recipe=recipe)}[family]()
    return replace(config, train_codes=train_codes, precision=runtime.PRECISION)


def doubled(values: dict, noise: float, cap: int, score) -> dict:
    """`values` ({length: validation score}) with the longest run doubled, scored by score(length), until a
    doubling gains less than `noise` (choose_length) or another doubling would pass `cap`."""
    while choose_length(values, noise) is None and 2 * max(values) <= cap:
        values[2 * max(values)] = score(2 * max(values))
    return values


def step_weights(config) -> int:
    """The weights one training step of a latent GAN multiplies each code by (generator, discriminator and
    auxiliary classifier): its multiply-adds per code, up to the R1 penalty's share."""
    from .gan import LatentGAN

    return sum(p.numel() for p in LatentGAN(config).parameters())


def equal_compute(config, other):
    """`other` for as many multiply-adds as `config`: its steps scaled by the ratio of their step_weights, to the
    nearest power of two (a wider network trains for fewer steps, as the grid's larger batch does)."""
    ratio = step_weights(config) / step_weights(other)
    return replace(other, steps=max(1, round(config.steps * 2.0 ** round(math.log2(ratio)))))


def grid_steps(base, steps: int) -> int:
    """The steps a family's grid runs `base` for: GAN_GRIDS' steps, set for the width the k8 study started from
    (GAN_START), at the same multiply-adds at `base`'s width (equal_compute), so that the cgan and gmm_prior
    studies on the k8 study's width start as far from their plateau as the k8 grid did."""
    return equal_compute(replace(base, **GAN_START, steps=steps), base).steps


def gan_steps(study, stage: str, config, judge: Judge, log=print):
    """score(steps) for doubled: the validation FD of `config` trained for that many steps, as a trial of `stage`."""
    def score(steps):
        longer = replace(config, steps=steps)
        return run_gan_trials(study, stage, [longer], judge, log)[longer].value
    return score


def search_gan(judge: Judge | None = None, family: str = "k8", recipe: Recipe | None = None, grid: dict | None = None,
               steps: int | None = None, max_doublings: int = 3, folder: Path | None = None, log=print) -> dict:
    """One latent-GAN family's study (k8: Gaussian noise with k = the report's; gmm_prior; cgan):
    - every setting of its grid at the same number of codes seen (grid_steps at batch 256), the learning-rate grid
      extended past an edge its choice lands on (twice at most);
    - the chosen setting at seeds 1 and 2 for its noise (the spread of the validation FD over seeds, each the mean
      of the judge's sample draws);
    - in the k8 study, the GANs' shared width and R1 weight one at a time (COORDINATES, widths at equal
      multiply-adds);
    - its length doubled until a doubling gains less than that spread (the autoencoder study's rule); the spread
      measured again at that length, and the rule applied again with it (doubling further while a doubling still
      gains more, up to the same cap);
    - the learning rate refined at that length (lr / 3, lr, 3 lr; it moves where another beats it by more than
      that spread, a move onto an edge trying one more factor of three past it, twice at most), a moved rate
      doubled again by the same rule;
    - where the run trains in bfloat16, the final setting once more in float32 (seed 0), to check the precision
      against the seed spread."""
    import itertools

    recipe = recipe or RECIPE
    judge = judge or Judge(recipe)
    default_grid, default_steps = GAN_GRIDS[family]
    grid = {k: sorted(v) for k, v in (grid or default_grid).items()}
    study = open_study_to_train(f"gan_{family}", folder)
    base = gan_base(family, judge.ae_config, len(judge.fit_codes), recipe)
    if family == "k8":
        base = replace(base, **GAN_START)
    steps = steps or grid_steps(base, default_steps)
    start = time.perf_counter()
    for extension in range(3):
        configs = [replace(base, **setting, steps=max(1, steps * 256 // setting.get("batch_size", base.batch_size)))
                   for setting in (dict(zip(grid, values)) for values in itertools.product(*grid.values()))]
        trials = run_gan_trials(study, "recipe", configs, judge, log)
        best = best_of(list(trials.values()))
        chosen = {k: best.user_attrs["config"][k] for k in (*grid, "steps")}
        lrs = grid.get("lr", [])
        if extension == 2 or len(lrs) < 2 or lrs[0] < chosen["lr"] < lrs[-1]:
            break
        grid["lr"] = lrs + [lrs[-1] * 3] if chosen["lr"] == lrs[-1] else [lrs[0] / 3] + lrs
    config = replace(base, **chosen)
    # noise: the chosen setting at seeds 0-2; its spread holds the seed's and the sample draws' noise
    seeded = [replace(config, seed=s) for s in (0, 1, 2)]
    noise_trials = {c: t for c, t in zip(seeded, [best] + [run_gan_trials(study, "noise", [c], judge, log)[c]
                                                          for c in seeded[1:]])}
    noise = float(np.std([t.value for t in noise_trials.values()], ddof=1))
    current, coordinate = best.value, {}
    for name, options in (COORDINATES if family == "k8" else {}).items():
        tried, scored, options = {getattr(config, name): config}, {getattr(config, name): current}, sorted(options)
        for extension in range(3):
            for option in options:
                if option not in scored:
                    other = tried[option] = equal_compute(config, replace(config, **{name: option}))
                    scored[option] = run_gan_trials(study, "coordinate", [other], judge, log)[other].value
            pick = min(scored, key=scored.get)
            moves = scored[pick] < current - noise  # only a lead beyond the seed spread moves it
            if extension == 2 or not moves or options[0] < pick < options[-1]:
                break
            # a move onto an edge of the values: one more step past it (twice at most)
            step = COORDINATE_STEP[name]
            options = [type(pick)(pick / step)] + options if pick == options[0] else options + [type(pick)(pick * step)]
        if moves:
            config, current = tried[pick], scored[pick]
        coordinate[name] = {"values": {str(k): v for k, v in scored.items()},
                            "steps": {str(k): c.steps for k, c in tried.items()}, "chosen": getattr(config, name)}
    chosen = {**chosen, **{name: getattr(config, name) for name in coordinate}}
    cap = config.steps * 2 ** max_doublings
    values = doubled({config.steps: current}, noise, cap, gan_steps(study, "length", config, judge, log))
    # the spread again at that length (seeds 1, 2 beside seed 0; at the longest run where none was found): the
    # spread of short runs is not the noise of a run several times longer. The length rule runs again on it, with
    # further doublings (up to the same cap) while the last one still gains more than it.
    at = choose_length(values, noise) or max(values)
    seeded_at = [replace(config, steps=at, seed=s) for s in (1, 2)]  # the noise stage's own, where nothing moved
    spread_values = [values[at]] + [noise_trials[c].value if c in noise_trials else
                                    run_gan_trials(study, "spread", [c], judge, log)[c].value for c in seeded_at]
    noise = float(np.std(spread_values, ddof=1))
    values = doubled(values, noise, cap, gan_steps(study, "length", config, judge, log))
    lrs, length = grid.get("lr", []), {"values": values, "noise": noise, "steps": choose_length(values, noise),
                                       "spread_at": at, "spread_values": spread_values}
    refined = None
    if length["steps"] is not None and len(lrs) > 1:
        # refine: the learning rate again at the chosen length (chosen at the grid's length, it need not suit a
        # run several times longer); a rate that moves gets its own length
        at_length = replace(config, steps=length["steps"])
        score = lambda r: run_gan_trials(study, "refine", [replace(at_length, lr=r)], judge, log)[replace(at_length, lr=r)].value
        scored = {r: score(r) for r in (chosen["lr"] / 3, chosen["lr"], chosen["lr"] * 3)}
        for extension in range(3):
            # the rate moves only where another beats it by more than the seed spread (one seed each: a smaller
            # lead is noise, and a moved rate costs a length search of its own); a move onto an edge of the rates
            # tries one more factor of three past it (twice at most)
            best_rate = min(scored, key=scored.get)
            moves = scored[best_rate] < scored[chosen["lr"]] - noise
            if extension == 2 or not moves or min(scored) < best_rate < max(scored):
                break
            further = best_rate / 3 if best_rate == min(scored) else best_rate * 3
            scored[further] = score(further)
        rates = sorted(scored)
        refined = {"rates": rates, "values": {str(r): scored[r] for r in rates}, "steps": length["steps"],
                   "lr": best_rate if moves else chosen["lr"], "on_edge": moves and best_rate in (rates[0], rates[-1])}
        if refined["lr"] != chosen["lr"]:
            new = replace(at_length, lr=refined["lr"])  # the moved rate's own length, by the same doubling rule
            values = doubled({new.steps: scored[refined["lr"]]}, noise, new.steps * 2 ** max_doublings,
                             gan_steps(study, "refine", new, judge, log))
            length = {**length, "values": values, "steps": choose_length(values, noise)}  # the same spread
            chosen = {**chosen, "lr": refined["lr"]}
    # the one check of the precision policy: the chosen setting at its length (seed 0) trained in float32 too,
    # against the seed spread
    precision_check = None
    if config.precision != "float32" and length["steps"] is not None:
        fp32 = replace(config, lr=chosen.get("lr", config.lr), steps=length["steps"], precision="float32")
        precision_check = {"float32": run_gan_trials(study, "precision", [fp32], judge, log)[fp32].value,
                           config.precision: length["values"][length["steps"]], "noise": noise}
        gap = precision_check["float32"] - precision_check[config.precision]
        precision_check["within_noise"] = abs(gap) <= noise
        log(f"precision check: validation FD {precision_check['float32']:.3f} in float32 against "
            f"{precision_check[config.precision]:.3f} in {config.precision} (seed spread {noise:.3f}): "
            + ("within" if precision_check["within_noise"] else "OUTSIDE") + " the seed spread")
    result = {"family": family, **chosen, "grid": grid, "precision": config.precision, "precision_check": precision_check,
              "coordinate": coordinate, "shared": {k: getattr(config, k) for k in COORDINATES},
              "lr_on_edge": refined["on_edge"] if refined else len(lrs) > 1 and not lrs[0] < chosen["lr"] < lrs[-1],
              "refine": refined,
              "noise_values": [t.value for t in noise_trials.values()], "length": length,
              "classifier_val_accuracy": judge.val_accuracy, "seconds": time.perf_counter() - start}
    set_chosen(study, result)
    log(f"gan {family}: {json.dumps(chosen)}; length {result['length']['steps']} steps "
        f"(seed spread of the validation FD {noise:.3f})")
    return result


# Section 3's few-label arms, self-training, cluster-then-label and the mixture baseline: their own module
from .search_fewlabel import (CLUSTER_GRID, CURVE_DOUBLINGS, CURVE_STEPS, MIXTURE_COMPONENTS, PLATEAU,  # noqa: E402,F401
                              SELFTRAIN_GRID, TRANSFER_CODE, TRANSFER_DRAWS, TRANSFER_GRIDS, TRANSFER_LABELS,
                              TransferData, arm_curves, arm_steps, chosen_trials, cluster_trials, draw_indices,
                              plateau_steps, run_transfer_trial, search_mixture, search_transfer, search_unlabelled,
                              selftrain_trial)
