"""The validation search as Optuna studies: one study per model family, each a plain-text journal under studies/.

Every trial trains its model through the checkpoint cache (so the report loads the very model a trial trained
when config, seed, precision and code match), is scored on the validation images (the 5,000 training images
after the first 55,000; never a test image), and is recorded with its curve, precision, cache key and seconds.
A search that is killed resumes where it stopped: finished trials are read back from the journal, a trial left
running by the kill is marked failed and trained again.

The autoencoder family (`search_autoencoder`):
1. recipe: learning rate x batch size at the recipe's epochs (d = 10, the report's design, seed 0); a choice on
   an edge of the learning-rate grid extends the grid by one factor of two, at most twice;
2. noise: the chosen recipe at two more seeds, at d = 10 and d = 64: the spread of the validation MSE over seeds;
3. length: the chosen recipe at twice and four times the epochs (d = 10 and 64, seed 0), more while a doubling
   still gains more than the seed spread; the length is the shortest run whose doubling gains less than that.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import runtime, settings
from .settings import RECIPE, Recipe
from .autoencoder import AEConfig, ae_config, autoencoders
from .cache import cache_key
from .data import load_mnist

STUDY_DIR = settings.ROOT / "studies"
TRIAL_FIELDS = ("stage", "config", "cache_key", "precision", "curve", "train_seconds", "value")


def open_study(family: str, folder: Path | None = None):
    """The family's study, created or read back from its journal file (studies/{family}.jsonl)."""
    import optuna

    folder = Path(folder or STUDY_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / f"{family}.jsonl")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=family, storage=storage, direction="minimize", load_if_exists=True)


def finished_trials(study) -> dict:
    """{trial key: trial} of the study's complete trials; trials a kill left running are marked failed."""
    from optuna.trial import TrialState

    done = {}
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)  # its process is gone: the model trains again
        elif trial.state == TrialState.COMPLETE:
            done[trial.user_attrs["key"]] = trial
    return done


def trial_key(stage: str, config) -> str:
    return f"{stage}:{json.dumps(config, sort_keys=True)}"


def run_trials(study, stage: str, configs: list, images, log=print, workers: int = 2) -> dict:
    """Train the autoencoders of `configs` (`workers` at a time, in worker processes on a CPU), record each as a
    complete trial of `stage` with its validation curve, and return {config: trial} for all of them."""
    done = finished_trials(study)
    out, todo = {}, []
    for config in configs:
        key = trial_key(stage, _params(config))
        if key in done:
            out[config] = done[key]
        else:
            todo.append(config)
    workers = workers if runtime.DEVICE.type == "cpu" else 1
    for start in range(0, len(todo), workers):
        chunk = todo[start:start + workers]
        # A trial opens before its model trains, so a kill leaves it running (then failed on resume).
        trials = [study.ask() for _ in chunk]
        begun = time.perf_counter()
        trained = autoencoders(chunk, images)
        for trial, config in zip(trials, chunk):
            info = trained[config][1]
            curve = [float(v) for v in info["val_mse_history"]]
            for epoch, value in enumerate(curve, 1):
                trial.report(value, epoch)
            attrs = {"stage": stage, "key": trial_key(stage, _params(config)), "config": _params(config),
                     "cache_key": cache_key(config), "precision": runtime.PRECISION, "curve": curve,
                     "train_seconds": float(info["train_seconds"]), "value": curve[-1],
                     "wall_seconds": time.perf_counter() - begun}
            for name, value in attrs.items():
                trial.set_user_attr(name, value)
            study.tell(trial, curve[-1])
            out[config] = study.get_trials(deepcopy=False)[trial.number]
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
                       ds=(10, 64), max_doublings: int = 3, folder: Path | None = None, log=print,
                       workers: int = 2, architecture: dict | None = None) -> dict:
    """The autoencoder family's study (module docstring); returns the chosen recipe and what chose it.
    `architecture` changes every config's layers (the tests' small networks); the report's by default."""
    recipe = recipe or RECIPE
    config_of = lambda d: replace(ae_config(d, recipe=recipe), **(architecture or {}))
    images = load_mnist(train=True)[0] if images is None else images
    study = open_study("autoencoder", folder)
    base = config_of(recipe.report_d)
    start = time.perf_counter()
    # 1. recipe: learning rate x batch size, extended past an edge the choice lands on.
    lrs = sorted(lrs)
    for extension in range(3):
        grid = [replace(base, lr=lr, batch_size=b) for lr in lrs for b in batches]
        trials = run_trials(study, "recipe", grid, images, log, workers)
        chosen = best_of(list(trials.values())).user_attrs["config"]
        if extension == 2 or lrs[0] < chosen["lr"] < lrs[-1]:
            break
        lrs = lrs + [lrs[-1] * 2] if chosen["lr"] == lrs[-1] else [lrs[0] / 2] + lrs
    lr, batch = chosen["lr"], chosen["batch_size"]
    on_edge = not lrs[0] < lr < lrs[-1]  # still on an edge after two extensions: the report says so
    # 2. noise: the chosen recipe at three seeds, at each d.
    seeds = {d: [replace(config_of(d), lr=lr, batch_size=batch, seed=s) for s in (0, 1, 2)] for d in ds}
    noise_trials = run_trials(study, "noise", [c for cs in seeds.values() for c in cs], images, log, workers)
    noise = {d: float(np.std([noise_trials[c].value for c in cs], ddof=1)) for d, cs in seeds.items()}
    # 3. length: doublings while they still gain more than the seed spread.
    lengths = {}
    for d in ds:
        first = seeds[d][0]
        values = {first.epochs: noise_trials[first].value}
        for k in range(1, max_doublings + 1):
            config = replace(first, epochs=first.epochs * 2 ** k)
            values[config.epochs] = run_trials(study, "length", [config], images, log, workers)[config].value
            if choose_length(values, noise[d]) is not None:
                break
        lengths[d] = {"values": values, "noise": noise[d], "epochs": choose_length(values, noise[d])}
    result = {"lr": lr, "batch_size": batch, "lr_grid": lrs, "lr_on_edge": on_edge, "batch_grid": list(batches),
              "batch_on_edge": batch in (min(batches), max(batches)) and len(batches) > 1, "lengths": lengths,
              "precision": runtime.PRECISION, "seconds": time.perf_counter() - start}
    study.set_user_attr("chosen", json.loads(json.dumps(result, default=str)))
    log(f"autoencoder: lr {lr:g}, batch {batch}; lengths " +
        ", ".join(f"d={d}: {v['epochs']} epochs (seed spread {v['noise']:.2e})" for d, v in lengths.items()))
    return result


# The latent GANs ------------------------------------------------------------------------------------


class Judge:
    """Scores latent GANs trained on the fit codes against the validation images: the Frechet distance in the
    features of the evaluation classifier (trained on the fit images only), averaged over sample draws."""

    def __init__(self, recipe: Recipe | None = None, samples: int = 5000, draws: int = 3):
        from .autoencoder import encode
        from .classifier import classify, evaluation_classifier
        from .data import validation_data

        self.recipe, self.samples, self.draws = recipe or RECIPE, samples, draws
        fit_x, self.fit_y = validation_data("fit")
        self.val_x, self.val_y = validation_data("validation")
        ae = autoencoders([ae_config(recipe=self.recipe)], load_mnist(train=True)[0])
        self.ae_config, model = next(iter(ae)), next(iter(ae.values()))[0]
        self.decoder, self.fit_codes = model.decoder, encode(model.encoder, fit_x)
        self.classifier, _ = evaluation_classifier(fit_x, self.fit_y)
        self.val_feats, probs = classify(self.classifier, self.val_x)
        self.val_accuracy = float((probs.argmax(1) == self.val_y.numpy()).mean())

    def fd(self, sample) -> tuple:
        """(mean, std) over self.draws draws of the FD of self.samples decoded codes sample(n, seed) against the
        validation images."""
        from .autoencoder import decode
        from .classifier import classify
        from .metrics import frechet_distance

        fds = [frechet_distance(classify(self.classifier, decode(self.decoder, sample(self.samples, 100 + i)))[0],
                                self.val_feats) for i in range(self.draws)]
        return float(np.mean(fds)), float(np.std(fds, ddof=1)) if len(fds) > 1 else 0.0


def run_gan_trials(study, stage: str, configs: list, judge: Judge, log=print) -> dict:
    """Train each latent GAN of `configs` on the fit codes (through the checkpoint cache), record it as a
    complete trial of `stage` scored by its validation FD, and return {config: trial}."""
    from .gan import latent_gan, sample_codes

    done, out = finished_trials(study), {}
    for config in configs:
        params = _gan_params(config)
        key = trial_key(stage, params)
        if key in done:
            out[config] = done[key]
            continue
        trial = study.ask()
        begun = time.perf_counter()
        gan, info = latent_gan(config, judge.fit_codes, judge.fit_y if config.n_classes else None)
        fd, fd_std = judge.fd(lambda n, seed: sample_codes(gan.generator, n, seed=seed))
        attrs = {"stage": stage, "key": key, "config": params, "cache_key": cache_key(config),
                 # the latent GANs train without autocast, whatever the run's precision
                 "precision": "float32", "curve": [fd], "train_seconds": float(info["train_seconds"]), "value": fd,
                 "fd_draw_std": fd_std, "wall_seconds": time.perf_counter() - begun}
        for name, value in attrs.items():
            trial.set_user_attr(name, value)
        study.tell(trial, fd)
        out[config] = study.get_trials(deepcopy=False)[trial.number]
        log(f"{stage:<7} {json.dumps(params)}: validation FD {fd:.3f} +- {fd_std:.3f} ({info['train_seconds']:.0f} s)")
    return out


GAN_FIELDS = ("noise_dim", "lr", "batch_size", "steps", "hidden", "r1", "seed", "prior", "train_codes")


def _gan_params(config) -> dict:
    return {k: getattr(config, k) for k in GAN_FIELDS}


def search_gan(judge: Judge | None = None, recipe: Recipe | None = None, lrs=(1e-4, 3e-4, 1e-3), batches=(256, 1024),
               steps: int = 6000, max_doublings: int = 3, folder: Path | None = None, log=print) -> dict:
    """The Gaussian-noise latent GAN's study (k = the report's): learning rate x batch size, every candidate seeing
    the same number of codes (steps x 256 / batch steps), the learning-rate grid extended past an edge its choice
    lands on (twice at most); then the chosen recipe with its length doubled until a doubling gains less than
    the FD's own noise (its spread over sample draws, times sqrt 2 for a difference)."""
    from .gan import gan_config

    recipe = recipe or RECIPE
    judge = judge or Judge(recipe)
    study = open_study("gan", folder)
    base = replace(gan_config(recipe.report_noise_dim, judge.ae_config, recipe=recipe), train_codes=len(judge.fit_codes))
    start, lrs = time.perf_counter(), sorted(lrs)
    for extension in range(3):
        grid = [replace(base, lr=lr, batch_size=b, steps=max(1, steps * 256 // b)) for lr in lrs for b in batches]
        trials = run_gan_trials(study, "recipe", grid, judge, log)
        best = best_of(list(trials.values()))
        chosen = best.user_attrs["config"]
        if extension == 2 or lrs[0] < chosen["lr"] < lrs[-1]:
            break
        lrs = lrs + [lrs[-1] * 3] if chosen["lr"] == lrs[-1] else [lrs[0] / 3] + lrs
    config = replace(base, lr=chosen["lr"], batch_size=chosen["batch_size"], steps=chosen["steps"])
    noise = float(np.sqrt(2) * best.user_attrs["fd_draw_std"])
    values = {config.steps: best.value}
    for k in range(1, max_doublings + 1):
        longer = replace(config, steps=config.steps * 2 ** k)
        values[longer.steps] = run_gan_trials(study, "length", [longer], judge, log)[longer].value
        if choose_length(values, noise) is not None:
            break
    result = {"lr": chosen["lr"], "batch_size": chosen["batch_size"], "lr_grid": lrs,
              "lr_on_edge": not lrs[0] < chosen["lr"] < lrs[-1], "length": {"values": values, "noise": noise,
                                                                           "steps": choose_length(values, noise)},
              "classifier_val_accuracy": judge.val_accuracy, "seconds": time.perf_counter() - start}
    study.set_user_attr("chosen", json.loads(json.dumps(result, default=str)))
    log(f"gan: lr {chosen['lr']:g}, batch {chosen['batch_size']}; length {result['length']['steps']} steps "
        f"(FD noise of a difference {noise:.3f})")
    return result
