"""The validation search's studies of section 3 (the few-label arms, self-training, cluster-then-label) and of
section 4's mixture baseline, on the report's autoencoder under the autoencoder study's choice (ex3lib.search).
Every score is on the validation images (the 5,000 training images after the first 55,000); never a test image."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from . import runtime
from .settings import RECIPE, Recipe
from .autoencoder import ae_config, autoencoder
from .cache import cache_key, code_hash
from .data import load_mnist
from .studies import complete, finished_trials, open_study, open_study_to_train, set_chosen, stored_choice, trial_key


# Section 3's few-label arms -------------------------------------------------------------------------------

TRANSFER_LABELS, TRANSFER_DRAWS = (10, 100, 1000), 3  # labelled images per draw, draws per label count
# The code a few-label trial runs (training, the batched frozen heads, scoring, the draws), in its key.
TRANSFER_CODE = (("ex3lib.transfer", ("train_few_label", "frozen_heads", "accuracy")),
                 ("ex3lib.search_fewlabel", ("arm_curves", "draw_indices", "plateau_steps", "arm_steps")))
CLUSTER_CODE = (("ex3lib.transfer", ("CodeClusters",)), ("ex3lib.search_fewlabel", ("draw_indices",)))  # its key's
MIXTURE_CODE = (("ex3lib.gan", ("gaussian_mixture",)),)  # in a mixture trial's key
CURVE_STEPS = {"frozen": (50, 100, 200, 400, 800, 1600), "encoder": (50, 100, 200, 400, 800, 1600)}
PLATEAU = 0.005  # a label count's plateau: the fewest steps within half a point of its curve's best
CURVE_DOUBLINGS = 2  # a choice still rising at its curve's last point: the rising settings' curves doubled, this often
# Each arm's grid (TransferConfig fields). Learning rates span the earlier choices with room on both sides;
# a choice on a learning-rate edge extends that grid by a factor of three (twice at most).
TRANSFER_GRIDS = {
    "frozen": dict(lr=(1e-3, 3e-3, 1e-2), hidden=(128, 512), weight_decay=(0.0, 1e-4)),
    "finetune": dict(encoder_lr=(3e-6, 1e-5, 1e-4), batchnorm=("frozen", "train")),
    "whole": dict(lr=(3e-4, 1e-3, 3e-3), batchnorm=("train",), max_shift=(0, 2)),  # as scratch: they differ in the start
    "scratch": dict(lr=(1e-3, 3e-3, 1e-2), max_shift=(0, 2)),
}


class TransferData:
    """The report's autoencoder (trained on the fit images), the codes of the fit and validation images, and labels."""

    def __init__(self, recipe: Recipe | None = None):
        from .autoencoder import encode
        from .data import validation_data

        recipe = recipe or RECIPE
        self.fit_x, self.fit_y = validation_data("fit")
        self.val_x, self.val_y = validation_data("validation")
        self.ae_config = ae_config(recipe=recipe)
        model = autoencoder(self.ae_config, load_mnist(train=True)[0])[0]
        self.state = model.encoder.state_dict()
        self.fit_codes, self.val_codes = encode(model.encoder, self.fit_x), encode(model.encoder, self.val_x)


def draw_indices(labels, n: int, draw: int):
    """Class-balanced labelled draw `draw` of n fit images (seeded apart from the report's 1000 * n + draw)."""
    from .transfer import balanced_subset

    return balanced_subset(labels, n, seed=500_000 + 1000 * n + draw)


def arm_curves(data: TransferData, arm: str, config, labels=TRANSFER_LABELS, draws: int = TRANSFER_DRAWS,
               curve_steps: tuple = CURVE_STEPS["frozen"]) -> dict:
    """{n: {"curve": {steps: mean validation accuracy over draws}, "train": mean training accuracy at the end}} of
    one arm of train_few_label under `config`, trained for max(curve_steps) steps."""
    from .classifier import accuracy
    from .transfer import frozen_heads, train_few_label

    config = replace(config, steps=max(curve_steps))
    out = {}
    for n in labels:
        idx = [draw_indices(data.fit_y, n, s) for s in range(draws)]
        curves = {step: [] for step in curve_steps}
        if arm == "frozen":
            def record(step, models):
                if step in curves:
                    curves[step] += [accuracy(m.from_codes, data.val_codes, data.val_y) for m in models]
            models = frozen_heads(data.state, data.ae_config, data.fit_codes, idx, [data.fit_y[i] for i in idx],
                                  list(range(draws)), config, monitor=(min(curve_steps), record))
            train = [accuracy(m.from_codes, data.fit_codes[i], data.fit_y[i]) for m, i in zip(models, idx)]
        else:
            train = []
            for s, i in enumerate(idx):
                def record(step, model):
                    if step in curves:
                        curves[step].append(accuracy(model, data.val_x, data.val_y))
                model = train_few_label(arm, data.state, data.ae_config, data.fit_x[i], data.fit_y[i], data.fit_x,
                                        config, seed=s, unlabeled_codes=data.fit_codes, monitor=(min(curve_steps), record))
                train.append(accuracy(model, data.fit_x[i], data.fit_y[i]))
        out[n] = {"curve": {step: float(np.mean(v)) for step, v in curves.items()}, "train": float(np.mean(train))}
    return out


def plateau_steps(curve: dict) -> int:
    """The fewest steps whose mean validation accuracy is within PLATEAU of the curve's best."""
    best = max(curve.values())
    return min(step for step, acc in curve.items() if acc >= best - PLATEAU)


def arm_steps(runs: dict) -> int:
    """An arm's length (one for all its label counts): the longest of the label counts' plateaus, so that every
    count trains to its own (a mean curve over counts would stop the largest count, which learns longest,
    short of its plateau)."""
    return max(plateau_steps(run["curve"]) for run in runs.values())


def run_transfer_trial(study, data: TransferData, arm: str, setting: dict, base, labels, draws, curve_steps, log=print):
    """One candidate setting of one arm as a trial: its mean validation curve over label counts and draws as
    intermediate values, its value that curve at the arm's length (arm_steps: the report's length of it); read
    back from the journal when already finished."""
    # the key holds the autoencoder and the whole config the setting changes (the other arms' base follows the
    # frozen arm's choice), so a trial trained under another base or autoencoder is not read back
    params = {"arm": arm, **setting, "labels": list(labels), "draws": draws, "curve_steps": list(curve_steps),
              "ae_key": cache_key(data.ae_config), "base": asdict(replace(base, **setting)),
              "code": code_hash(*TRANSFER_CODE)}
    key = trial_key("transfer", params)
    done = finished_trials(study)
    if key in done:
        return done[key]
    trial, begun = study.ask(), time.perf_counter()
    runs = arm_curves(data, arm, replace(base, **setting), labels, draws, curve_steps)
    mean_curve = {step: float(np.mean([runs[n]["curve"][step] for n in labels])) for step in curve_steps}
    attrs = {"stage": arm, "key": key, "config": params, "cache_key": "", "precision": runtime.PRECISION,
             "curve": [mean_curve[s] for s in curve_steps], "per_labels": {str(n): runs[n] for n in labels},
             "steps": arm_steps(runs), "train_seconds": time.perf_counter() - begun,
             "best": max(mean_curve.values())}
    # scored where the report will stop it (its length), not at its best point: a noisier curve's best point is
    # higher by chance, and it is not the length the report trains
    attrs["value"] = mean_curve[attrs["steps"]]
    stored = complete(study, trial, attrs, mean_curve)
    log(f"{arm:<9} {json.dumps(setting)}: validation {attrs['value']:.4f} at {attrs['steps']} steps "
        f"({attrs['train_seconds']:.0f} s)")
    return stored


def search_transfer(data: TransferData | None = None, grids: dict | None = None, labels=TRANSFER_LABELS,
                    draws: int = TRANSFER_DRAWS, curve_steps: dict | None = None, folder: Path | None = None,
                    log=print, recipe: Recipe | None = None) -> dict:
    """Section 3's arms: every setting of each arm's grid scored by its mean validation accuracy over label
    counts at its length (arm_steps: the longest of the counts' plateaus), the learning-rate grid extended past
    an edge its choice lands on. While the choice still rises at its curve's last point, every setting still
    rising there is trained again with the curve doubled (CURVE_DOUBLINGS at most) and the choice made again.
    The fine-tuned arm starts from the frozen arm's chosen head."""
    import itertools

    from .transfer import TransferConfig

    data = data or TransferData(recipe)
    grids, curve_steps = grids or TRANSFER_GRIDS, curve_steps or CURVE_STEPS
    study = open_study_to_train("transfer", folder, direction="maximize")
    base, result = TransferConfig(), {}  # the base recipe, not the report's (whose schedule the unlabelled study picks)
    for arm, grid in grids.items():
        grid = {k: list(v) for k, v in grid.items()}
        steps = curve_steps["frozen" if arm == "frozen" else "encoder"]
        for extension in range(3):
            trials = [run_transfer_trial(study, data, arm, dict(zip(grid, values)), base, labels, draws, steps, log)
                      for values in itertools.product(*grid.values())]
            best = max(trials, key=lambda t: t.value)
            chosen = {k: best.user_attrs["config"][k] for k in grid}
            lr_key = "encoder_lr" if arm == "finetune" else "lr"
            lrs = grid[lr_key]
            if extension == 2 or len(lrs) < 2 or lrs[0] < chosen[lr_key] < lrs[-1]:
                break
            grid[lr_key] = lrs + [lrs[-1] * 3] if chosen[lr_key] == lrs[-1] else [lrs[0] / 3] + lrs
        for _ in range(CURVE_DOUBLINGS):  # past the curve's last point while the choice still rises there
            if best.user_attrs["steps"] < max(steps):
                break
            # every setting still rising is trained longer, not only the leader: a slower rate that is behind at
            # the last point may pass it with a longer curve
            rising = [t for t in trials if t.user_attrs["steps"] == max(steps)]
            steps = (*steps, 2 * max(steps))
            trials = [t for t in trials if t not in rising] + [
                run_transfer_trial(study, data, arm, {k: t.user_attrs["config"][k] for k in grid}, base, labels,
                                   draws, steps, log) for t in rising]
            best = max(trials, key=lambda t: t.value)
            chosen = {k: best.user_attrs["config"][k] for k in grid}
        result[arm] = {**chosen, "steps": best.user_attrs["steps"], "validation": best.value, "grid": grid,
                       "key": best.user_attrs["key"], "curve_steps": list(steps),
                       "on_edge": not (len(grid[lr_key]) < 2 or grid[lr_key][0] < chosen[lr_key] < grid[lr_key][-1]),
                       "still_rising": best.user_attrs["steps"] == max(steps)}
        if arm == "frozen":  # the other arms' heads: the frozen head's chosen rate, width and weight decay
            base = replace(base, **{k: v for k, v in chosen.items() if k in ("lr", "hidden", "weight_decay")})
    set_chosen(study, result)
    log("transfer: " + "; ".join(f"{arm} {json.dumps(v)}" for arm, v in result.items()))
    return result


# Self-training, cluster-then-label and the mixture baseline -------------------------------------------------

# Self-training's schedule: steps per round and the share of the pool pseudo-labelled in each round.
SELFTRAIN_GRID = dict(pseudo_steps=(100, 300, 900),
                      pseudo_fractions=((0.5,), (0.1, 0.3, 0.5, 0.7, 0.9), (0.2, 0.4, 0.6, 0.8, 1.0)))
# Cluster-then-label: UMAP's output size and neighbours, the mixture's components. Components start at the 10
# digits (fewer clusters than digits cannot name every digit: a hard lower limit).
CLUSTER_GRID = dict(dims=(2, 10), neighbors=(15, 50), components=(10, 20, 40))
# The least value a setting can take, which a grid does not extend past: fewer clusters than digits cannot name
# every digit, UMAP needs two neighbours and one output dimension, a round one step; no decay, no shift, no term.
FLOORS = dict(components=10, neighbors=2, dims=1, pseudo_steps=1, weight_decay=0.0, max_shift=0, aux_weight=0.0)
MIXTURE_COMPONENTS = (10, 20, 50, 100, 200)


def extended(grid: dict, choice: dict, floors: dict = FLOORS) -> list:
    """Extend in place each numeric axis of `grid` (several values) whose choice is on an edge, by a factor of three
    past it (down to its floor, which stops it): the axes that moved."""
    moved = []
    for k, values in grid.items():
        if len(values) < 2 or not all(isinstance(v, (int, float)) for v in values):
            continue
        below = values[0] // 3 if isinstance(values[0], int) else values[0] / 3
        if choice[k] == values[-1]:
            grid[k] = values + [values[-1] * 3]
        elif choice[k] == values[0] and floors.get(k, 0) <= below < values[0]:
            grid[k] = [below] + values
        else:
            continue
        moved.append(k)
    return moved


def _record(study, stage: str, key: str, config: dict, value: float, begun: float, log, **extra):
    """Store one finished trial of a stage whose model is not a cached checkpoint (a fit, a head's rounds)."""
    attrs = {"stage": stage, "key": key, "config": config, "cache_key": "", "precision": runtime.PRECISION,
             "curve": [], "train_seconds": time.perf_counter() - begun, "value": value, **extra}
    stored = complete(study, study.ask(), attrs)
    log(f"{stage:<9} {json.dumps(config)}: validation {stored.value:.4f} ({attrs['train_seconds']:.0f} s)")
    return stored


def selftrain_trial(study, data: TransferData, setting: dict, base, labels, draws, log=print):
    """Self-training on top of the chosen frozen head under one schedule: the mean validation accuracy over
    label counts and draws after its last round."""
    from .classifier import accuracy
    from .transfer import train_few_label

    config = replace(base, **setting)
    params = {"arm": "selftrain", **setting, "labels": list(labels), "draws": draws,
              "ae_key": cache_key(data.ae_config), "base": asdict(config), "code": code_hash(*TRANSFER_CODE)}
    key = trial_key("selftrain", params)
    done = finished_trials(study)
    if key in done:
        return done[key]
    begun, scores = time.perf_counter(), []
    for n in labels:
        for s in range(draws):
            i = draw_indices(data.fit_y, n, s)
            model = train_few_label("selftrain", data.state, data.ae_config, data.fit_x[i], data.fit_y[i], data.fit_x,
                                    config, seed=s, unlabeled_codes=data.fit_codes)
            scores.append(accuracy(model.from_codes, data.val_codes, data.val_y))
    return _record(study, "selftrain", key, params, float(np.mean(scores)), begun, log, scores=scores)


def paired_lead(ours: list, theirs: list) -> dict:
    """The mean paired difference of two score lists over the same draws, its standard error, and whether it leads
    by more than twice that (a lead within two standard errors is level)."""
    diff = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return {"mean": float(diff.mean()), "se": se, "ahead": bool(diff.mean() > 2 * se)}


def cluster_trials(study, data: TransferData, grid: dict, labels, draws, fits: int = 3, log=print) -> list:
    """Cluster-then-label under every setting of `grid` (projection and mixture fitted on the fit codes at `fits`
    seeds, one projection per output size, neighbours and seed; draw s named on fit s mod fits, as the report
    pairs them): the mean validation accuracy over label counts and draws, so the fit's own variance is in it."""
    import itertools

    from .transfer import CodeClusters

    done, out, projections = finished_trials(study), [], {}
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values))
        params = {"arm": "cluster", **setting, "fits": fits, "labels": list(labels), "draws": draws,
                  "ae_key": cache_key(data.ae_config), "code": code_hash(*CLUSTER_CODE)}
        key = trial_key("cluster", params)
        if key in done:
            out.append(done[key])
            continue
        begun, scores, per_fit = time.perf_counter(), [], {}
        for f in range(min(fits, draws)):
            like = projections.get((setting["dims"], setting["neighbors"], f))
            clusters = CodeClusters(data.fit_codes, seed=f, like=like, **setting)
            projections[setting["dims"], setting["neighbors"], f] = clusters
            resp = clusters.responsibilities(data.val_codes)
            for n in labels:
                for s in range(f, draws, fits):
                    i = draw_indices(data.fit_y, n, s).numpy()
                    names = clusters.name_clusters(i, data.fit_y[i].numpy())
                    scores.append(float((clusters.predict(names, resp) == data.val_y.numpy()).mean()))
                    per_fit.setdefault(str(f), []).append(scores[-1])
        out.append(_record(study, "cluster", key, params, float(np.mean(scores)), begun, log,
                           per_fit={f: float(np.mean(v)) for f, v in per_fit.items()}))
    return out


def search_unlabelled(data: TransferData | None = None, labels=TRANSFER_LABELS, draws: int = TRANSFER_DRAWS,
                      selftrain_grid: dict | None = None, cluster_grid: dict | None = None, folder: Path | None = None,
                      log=print, recipe: Recipe | None = None) -> dict:
    """The arms that use the unlabelled pool, on the transfer study's frozen head: self-training's schedule (kept
    only if it beats that head alone on the same draws by more than twice the paired standard error) and
    cluster-then-label's settings. A choice on an edge of a numeric grid extends it by a factor of three past
    that edge (twice at most; not below FLOORS)."""
    import itertools

    from .transfer import TransferConfig

    data = data or TransferData(recipe)
    transfer = stored_choice("transfer", folder)
    if transfer is None:
        raise RuntimeError("the transfer study has not chosen yet: run `python tools/search.py --family transfer`")
    study = open_study_to_train("unlabelled", folder, direction="maximize")
    frozen = {k: transfer["frozen"][k] for k in ("lr", "hidden", "weight_decay", "steps")}
    base = replace(TransferConfig(), **frozen)  # the base recipe with the frozen head (as search_transfer)
    grid = {k: list(v) for k, v in (selftrain_grid or SELFTRAIN_GRID).items()}
    for extension in range(3):
        trials = [selftrain_trial(study, data, dict(zip(grid, values)), base, labels, draws, log)
                  for values in itertools.product(*grid.values())]
        best = max(trials, key=lambda t: t.value)
        if extension == 2 or not extended(grid, best.user_attrs["config"]):
            break
    selftrain = {k: best.user_attrs["config"][k] for k in grid}
    # the head alone on the same draws (no rounds: the same code path as the frozen arm)
    alone = selftrain_trial(study, data, dict(pseudo_fractions=()), base, labels, draws, log)
    # kept only where it leads the head alone on the same draws by more than twice the paired standard error
    lead = paired_lead(best.user_attrs["scores"], alone.user_attrs["scores"])
    cgrid = {k: list(v) for k, v in (cluster_grid or CLUSTER_GRID).items()}
    for extension in range(3):
        ctrials = cluster_trials(study, data, cgrid, labels, draws, log=log)
        cbest = max(ctrials, key=lambda t: t.value)
        if extension == 2 or not extended(cgrid, cbest.user_attrs["config"]):
            break
    cluster = {k: cbest.user_attrs["config"][k] for k in cgrid}
    result = {"selftrain": {**{k: (list(v) if isinstance(v, list) else v) for k, v in selftrain.items()},
                            "validation": best.value, "frozen_validation": alone.value, "lead": lead,
                            "kept": lead["ahead"], "grid": grid},
              "cluster": {**cluster, "validation": cbest.value, "grid": cgrid}}
    set_chosen(study, result)
    log("unlabelled: " + "; ".join(f"{k} {json.dumps(v)}" for k, v in result.items()))
    return result


def search_mixture(data: TransferData | None = None, components=MIXTURE_COMPONENTS, folder: Path | None = None,
                   log=print, recipe: Recipe | None = None) -> dict:
    """The Gaussian mixture's size: the mean log-likelihood of the validation codes under a mixture fitted by EM to
    the fit codes, both standardised with the fit codes' statistics as fit_gmm standardises them; a choice on an
    edge extends the grid by a factor of two past it (twice at most)."""
    from .gan import gaussian_mixture

    data = data or TransferData(recipe)
    study = open_study_to_train("mixture", folder, direction="maximize")
    mean, std = data.fit_codes.mean(0), data.fit_codes.std(0)
    fit, val = (data.fit_codes - mean) / std, ((data.val_codes - mean) / std).numpy()
    grid, done = list(components), finished_trials(study)
    for extension in range(3):
        scores = {}
        for k in grid:
            params = {"components": k, "seed": 0, "ae_key": cache_key(data.ae_config), "standardised": True,
                      "code": code_hash(*MIXTURE_CODE)}
            key = trial_key("mixture", params)
            if key not in done:
                begun = time.perf_counter()
                mixture = gaussian_mixture(fit, k, seed=0)
                done[key] = _record(study, "mixture", key, params, float(mixture.score(val)), begun, log,
                                    fit_loglik=float(mixture.score(fit.numpy())))
            scores[k] = done[key].value
        best = max(scores, key=scores.get)
        if extension == 2 or best not in (grid[0], grid[-1]) or best == grid[0] == 1:
            break
        grid = grid + [grid[-1] * 2] if best == grid[-1] else [max(1, grid[0] // 2)] + grid
    result = {"components": best, "scores": {str(k): v for k, v in scores.items()}, "grid": grid,
              "on_edge": best in (grid[0], grid[-1]) and best != 1}
    set_chosen(study, result)
    log(f"mixture: {best} components ({json.dumps(result['scores'])})")
    return result


def chosen_trials(folder: Path | None = None) -> dict:
    """{arm: the transfer study's trial of the arm's chosen setting} (the setting's curve per label count, its
    steps and validation accuracy in user_attrs), and "selftrain" / "cluster": the unlabelled study's choices."""
    study = open_study("transfer", folder, direction="maximize")
    chosen, out = study.user_attrs["chosen"], {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    for arm, pick in chosen.items():  # the very trial that was chosen, by its key (settings alone could match a
        out[arm] = next(t.user_attrs for t in complete if t.user_attrs["key"] == pick["key"])  # stale trial's)
    out.update(open_study("unlabelled", folder, direction="maximize").user_attrs["chosen"])
    return out
