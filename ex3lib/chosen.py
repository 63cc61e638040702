"""How the stored studies chose the report's settings, in the words of the appendix's recipe table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .search import REPORT_GANS, open_study, stored_choice
from .search_fewlabel import FLOORS


# Settings of each family that no study searches, and why (keyed by the recipe table's row names).
FIXED_SETTINGS = {
    "latent GAN, Gaussian noise (section 4)": "Adam betas, D's lr ratio, decay, depth and R1 interval fixed after "
                                              "earlier runs scored on test images",
    "conditional GAN (section 5)": "the auxiliary classifier's steps fixed after earlier runs scored on test images",
}


def _values(values) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _edge(value, grid, floor=None) -> str:
    """' (a grid edge)' where a numeric choice sits on an end of its grid, ' (its least possible value)' where
    that end is the setting's floor (FLOORS: the grid cannot extend past it), else ''."""
    grid = sorted(grid)
    if len(grid) < 2 or value not in (grid[0], grid[-1]):
        return ""
    return " (its least possible value)" if floor is not None and value == grid[0] <= floor else " (a grid edge)"


def _grid_text(grid: dict, chosen: dict) -> str:
    """Each setting's grid and choice; a number chosen on an end of its grid says so (whatever the setting)."""
    numeric = lambda v: all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    return "; ".join(f"{k} over {_values(v)}: {_values([chosen[k]])}"
                     f"{_edge(chosen[k], v, FLOORS.get(k)) if numeric(v) else ''}" for k, v in grid.items())


def how_chosen(folder: Path | None = None) -> dict:
    """{recipe table row: how the stored studies chose that family's settings, in words}: each grid with its choice
    (a number chosen on an end of its grid said so), each length rule with the length it gave, and the
    settings no study searches (FIXED_SETTINGS). Raises where a study has not chosen."""
    ae_study = open_study("autoencoder", folder)
    ae = ae_study.user_attrs.get("chosen")
    gans = {f: stored_choice(f"gan_{f}", folder) for f in REPORT_GANS}
    transfer_study = open_study("transfer", folder, direction="maximize")
    transfer = transfer_study.user_attrs.get("chosen")
    unlabelled = stored_choice("unlabelled", folder)
    mixture = stored_choice("mixture", folder)
    classifier = stored_choice("classifier", folder)
    missing = [name for name, c in (("autoencoder", ae), ("classifier", classifier),
                                    *((f"gan_{f}", c) for f, c in gans.items()),
                                    ("transfer", transfer), ("unlabelled", unlabelled), ("mixture", mixture)) if c is None]
    if missing:
        raise RuntimeError(f"studies without a choice: {missing}")
    out = {}
    refine, lengths = ae.get("refine"), ae["lengths"]
    if not refine:
        raise RuntimeError(f"the autoencoder study found no plateau to refine its rate at: {lengths}")
    first = [t.user_attrs["config"] for t in ae_study.get_trials(deepcopy=False)
             if t.state.name == "COMPLETE" and t.user_attrs["stage"] == "recipe"][0]  # the grid's epochs and d
    out["autoencoders (section 1)"] = (
        f"lr over {_values(ae['lr_grid'])} x batch {_values(ae['batch_grid'])} at {first['epochs']} epochs "
        f"(d = {first['d']}): {ae['recipe_lr']:g}{_edge(ae['recipe_lr'], ae['lr_grid'])}, batch {ae['batch_size']}"
        f"{_edge(ae['batch_size'], ae['batch_grid'])}; "
        f"epochs doubled while a doubling lowered the validation MSE by more than the seed spread; lr again at "
        f"{refine['epochs']} epochs over {_values(refine['rates'])}: {ae['lr']:g}{_edge(ae['lr'], refine['rates'])}; "
        "plateau at " + ", ".join(f"d = {d}: {v['epochs'] or 'none found'}" + (" epochs" if v["epochs"] else "")
                                  for d, v in lengths.items()))
    for arm, pick in transfer.items():
        out[f"section 3, {arm}"] = (f"{_grid_text(pick['grid'], pick)}; steps: the longest of the label counts' "
                                    f"plateaus (each the fewest steps within half a point of that count's best "
                                    f"validation accuracy; the curve doubled while its choice still rose at its last "
                                    f"point): {pick['steps']}"
                                    + (", still rising at the cap" if pick.get("still_rising") else ""))
    selftrain, cluster = unlabelled["selftrain"], unlabelled["cluster"]
    out["section 3, selftrain"] = (f"the frozen arm's head; rounds of {_values(selftrain['grid']['pseudo_steps'])} "
                                   f"steps x {len(selftrain['grid']['pseudo_fractions'])} schedules of pseudo-labelled "
                                   f"shares: {selftrain['pseudo_steps']} steps, "
                                   f"{_values([round(f, 2) for f in selftrain['pseudo_fractions']])}"
                                   + ("" if selftrain["kept"] else "; no schedule beat the head alone by more than "
                                                                   "twice the paired standard error"))
    out["section 3, cluster"] = _grid_text(cluster["grid"], cluster)
    for family, row in (("k8", "latent GAN, Gaussian noise (section 4)"), ("cgan", "conditional GAN (section 5)")):
        g, refine = gans[family], gans[family]["refine"]
        length = g["length"]
        steps = lambda n: f"{n:,}" if n else "still falling at the cap"
        grid_choice = {**g, "lr": refine["rates"][1] if refine else g["lr"]}
        coordinate = "".join(  # the GANs' shared width and R1 weight, one at a time (the k8 study only)
            f"{name} over {_values(sorted(float(k) for k in c['values']))}: {_values([c['chosen']])}"
            f"{_edge(float(c['chosen']), [float(k) for k in c['values']])}; "
            for name, c in (g.get("coordinate") or {}).items())
        if coordinate:
            coordinate = (f"then one at a time (kept where it beat the grid's choice by more than the seed spread, "
                          f"widths at equal multiply-adds; shared by every latent GAN) {coordinate}")
        text = (f"{_grid_text(g['grid'], grid_choice)} at {g['steps']:,} steps; {coordinate}steps doubled while a "
                f"doubling lowered the validation FD by more than its seed spread ({length['noise']:.3g}): "
                + steps(refine["steps"] if refine else length["steps"]))
        if refine:
            text += f"; lr again at that length over {_values(refine['rates'])}: {g['lr']:g}{_edge(g['lr'], refine['rates'])}"
            if g["lr"] != refine["rates"][1]:  # a moved rate: its own length by the same rule
                text += f", doubled from there by the same rule: {steps(length['steps'])}"
        check = g.get("precision_check")
        if check:  # the search's GANs train in the machine's precision: the same setting in float32 beside it
            other = next(k for k in check if k not in ("float32", "noise", "within_noise"))
            text += (f"; in float32 its validation FD is {check['float32']:.3g} against {check[other]:.3g} in {other} ("
                     + ("within" if check["within_noise"] else "outside") + " the seed spread)")
        out[row] = f"{text}; {FIXED_SETTINGS[row]}"
    out["evaluation classifier (sections 4-5)"] = (
        "epochs doubled from 1 while a doubling lowered the validation error by more than the seed spread "
        f"({classifier['spread']:.2g}): " + (f"{classifier['epochs']}" if classifier["epochs"] else
                                             f"still falling at {classifier['max_epochs']}"))
    out["Gaussian mixtures (section 4)"] = (f"the larger mixture's size: best held-out log-likelihood over "
                                            f"{_values(mixture['grid'])} components: {mixture['components']}"
                                            + _edge(mixture["components"], mixture["grid"], 1))
    return out


def autoencoder_lengths(folder: Path | None = None) -> list[dict]:
    """How far section 1's budget lies from each studied latent size's plateau, from the stored autoencoder study:
    one row per d of its length stage, with the validation MSE of the three seeds at the recipe stage's budget
    (its epochs and learning rate), the validation MSE against epochs at the refined rate (seed 0) with its seed
    spread, the length the doubling rule chose (None: still falling at the longest run) and the share of the
    budget's error that training to that length (or to the longest run) removes."""
    from optuna.trial import TrialState

    study = open_study("autoencoder", folder)
    ae = study.user_attrs.get("chosen")
    if ae is None or not ae.get("refine"):
        raise RuntimeError("the autoencoder study has not chosen yet: run `python tools/search.py --family autoencoder`")
    noise = [(t.user_attrs["config"], t.value) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
             if t.user_attrs["stage"] == "noise"]  # the recipe at its stage's epochs, three seeds at each d
    rows = []
    for d, length in sorted(ae["lengths"].items(), key=lambda kv: int(kv[0])):
        budget = sorted((c["seed"], value) for c, value in noise if c["d"] == int(d))
        values = {int(e): float(v) for e, v in length["values"].items()}
        end = length["epochs"] or max(values)
        mean = float(np.mean([v for _, v in budget]))
        rows.append({"d": int(d), "budget_epochs": noise[0][0]["epochs"], "budget_lr": ae["recipe_lr"],
                     "budget_seeds": [v for _, v in budget], "budget_mse": mean, "lr": ae["lr"], "values": values,
                     "spread": length["noise"], "plateau": length["epochs"], "end_epochs": end,
                     "end_mse": values[end], "gain": 1 - values[end] / mean})
    return rows


def transfer_selection(folder: Path | None = None) -> dict:
    """Section 3's choices from the stored transfer and unlabelled studies: {"rows": one per arm (its chosen
    setting, steps and mean validation accuracy), "curves": {arm: {labels: {step: mean validation accuracy}}} of
    each arm trained by steps at its chosen setting, "steps": {arm: its chosen length}, "draws"}."""
    transfer_study = open_study("transfer", folder, direction="maximize")
    transfer = transfer_study.user_attrs.get("chosen")
    unlabelled = stored_choice("unlabelled", folder)
    if transfer is None or unlabelled is None:
        raise RuntimeError("the transfer and unlabelled studies have not both chosen: run `python tools/search.py`")
    by_key = {t.user_attrs.get("key"): t for t in transfer_study.get_trials(deepcopy=False)}
    setting = lambda pick, keys: ", ".join(f"{k} {pick[k]:g}" if isinstance(pick[k], float) else f"{k} {pick[k]}"
                                           for k in keys)
    rows, curves, steps = [], {}, {}
    for arm, pick in transfer.items():
        trial = by_key[pick["key"]]
        curves[arm] = {int(n): {int(s): float(a) for s, a in run["curve"].items()}
                       for n, run in trial.user_attrs["per_labels"].items()}
        steps[arm] = pick["steps"]
        rows.append({"arm": arm, "setting": setting(pick, pick["grid"]) + f", steps {pick['steps']}",
                     "validation": pick["validation"]})
    selftrain, cluster = unlabelled["selftrain"], unlabelled["cluster"]
    rows.append({"arm": "selftrain", "setting": (setting(selftrain, ("pseudo_steps",)) + ", fractions "
                                                 + " ".join(f"{f:.2f}" for f in selftrain["pseudo_fractions"])
                                                 + ("" if selftrain["kept"] else " (not kept)")),
                 "validation": selftrain["validation"]})
    rows.append({"arm": "cluster", "setting": setting(cluster, cluster["grid"]), "validation": cluster["validation"]})
    draws = by_key[transfer["frozen"]["key"]].user_attrs["config"]["draws"]
    return {"rows": rows, "curves": curves, "steps": steps, "draws": draws}
