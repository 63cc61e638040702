"""The validation search: the settings the report chooses, scored on held-out training images only.

Usage: python tools/validate.py [--part transfer|mixture|all] [--quick] [--out PATH]

Every model here trains on the "fit" part of MNIST's training set (its first 55,000 images, those the
autoencoders train on) and every setting is scored on the "validation" part (the next 5,000); the test
set is never loaded (helpers.validation_data has no test part, and the script checks its validation
images against the test set before it starts). It prints every candidate it tried with its validation
score, and writes them, with the chosen settings, to figures/validation.json.

- transfer (section 3): for each arm, a small declared grid of settings; for each setting, the
  validation accuracy against training steps, over SEARCH_DRAWS class-balanced draws at each of
  SEARCH_LABELS. The arm's setting is the one with the highest mean validation accuracy (over label
  counts and draws) at any number of steps; its number of steps is the plateau rule: the fewest steps
  whose mean is within PLATEAU of that setting's best. Self-training is kept only if it beats the
  chosen frozen head on validation. The cluster-then-label arm's projection and mixture sizes are
  chosen the same way. A control checks that fine-tuning at encoder learning rate 0 is the frozen arm.
- mixture (section 4): the number of components of the Gaussian mixture of the codes, by mean
  log-likelihood of the validation codes under a mixture fitted to the fit codes.

--quick runs one small candidate per arm, for the regression test.
"""

import argparse
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

SEARCH_LABELS = (10, 100, 1000)  # labelled images per draw
SEARCH_DRAWS = 3  # draws per label count, seeded apart from the report's draws
# Where each run's validation accuracy is read: heads on fixed codes are cheap, encoders are not.
CURVE_STEPS = {"frozen": (50, 100, 200, 400, 800, 1600), "encoder": (50, 100, 200, 400, 800)}
PLATEAU = 0.005  # the fewest steps within half a point of the best
BASE = h.TransferConfig()
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
QUICK = dict(labels=(10,), draws=1, curve={"frozen": (10, 20), "encoder": (10, 20)},
             grids={arm: [stages[0][:1]] for arm, stages in GRIDS.items()},
             cluster=[dict(dims=2, neighbors=15, components=10)], mixture=(2, 4))


def draw_indices(labels: torch.Tensor, n: int, draw: int) -> torch.Tensor:
    """Class-balanced labelled draw `draw` of n fit images (seeds apart from the report's 1000 * n + draw)."""
    return h.balanced_subset(labels, n, seed=500_000 + 1000 * n + draw)


def plateau_steps(curve: dict) -> int:
    """The fewest steps whose mean validation accuracy is within PLATEAU of the curve's best."""
    best = max(curve.values())
    return min(step for step, acc in curve.items() if acc >= best - PLATEAU)


class Data:
    """The report's autoencoder (trained on the fit part), codes of both parts, and the labels."""

    def __init__(self):
        self.fit_x, self.fit_y = h.validation_data("fit")
        self.val_x, self.val_y = h.validation_data("validation")
        h.refuse_test_images(self.val_x)
        # The autoencoder trains on the fit part and follows its held-out MSE on the validation part.
        ae, _ = h.autoencoder(h.report_config(), torch.cat([self.fit_x, self.val_x]))
        self.ae_config, self.state = ae.config, ae.encoder.state_dict()
        self.fit_codes, self.val_codes = h.encode(ae.encoder, self.fit_x), h.encode(ae.encoder, self.val_x)


def run_arm(data: Data, arm: str, setting: dict, labels: tuple, draws: int, curve_steps: tuple) -> dict:
    """{n: {"curve": {steps: mean validation accuracy}, "train": mean training accuracy at the end}}."""
    curve_steps = curve_steps["frozen" if arm == "frozen" else "encoder"]
    config = h.TransferConfig(**{**h.asdict(BASE), **setting, "steps": max(curve_steps)})
    out = {}
    for n in labels:
        idx = [draw_indices(data.fit_y, n, s) for s in range(draws)]
        curves = {step: [] for step in curve_steps}
        if arm == "frozen":
            def record(step, models):
                if step in curves:
                    curves[step] += [h.accuracy(m.from_codes, data.val_codes, data.val_y) for m in models]
            models = h.frozen_heads(data.state, data.ae_config, data.fit_codes, idx, [data.fit_y[i] for i in idx],
                                    list(range(draws)), config, monitor=(min(curve_steps), record))
            train = [h.accuracy(m.from_codes, data.fit_codes[i], data.fit_y[i]) for m, i in zip(models, idx)]
        else:
            train = []
            for s, i in enumerate(idx):
                def record(step, model):
                    if step in curves:
                        curves[step].append(h.accuracy(model, data.val_x, data.val_y))
                model = h.train_few_label(arm, data.state, data.ae_config, data.fit_x[i], data.fit_y[i], data.fit_x,
                                          config, seed=s, unlabeled_codes=data.fit_codes,
                                          monitor=(min(curve_steps), record))
                train.append(h.accuracy(model, data.fit_x[i], data.fit_y[i]))
        out[n] = {"curve": {step: float(np.mean(v)) for step, v in curves.items()}, "train": float(np.mean(train))}
    return out


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
    result["selection"]["selftrain"] = selftrain_check(data, result["selection"]["frozen"], labels, draws)
    result["cluster"] = search_clusters(data, labels, draws, cluster_grid)
    result["selection"]["cluster"] = max(result["cluster"], key=lambda c: c["mean"])["setting"]
    result["control"] = encoder_lr0_control(data, result["selection"]["frozen"], labels[0])
    return result


def print_candidate(arm: str, candidate: dict, labels: tuple) -> None:
    per_n = "  ".join(f"n={n}: {candidate['runs'][n]['curve'][candidate['steps']]:.3f}"
                      f" (train {candidate['runs'][n]['train']:.2f})" for n in labels)
    curve = " ".join(f"{acc:.3f}" for acc in candidate["mean_curve"].values())
    print(f"{arm:<9} {candidate['setting']}  curve {curve}  -> {candidate['steps']} steps, "
          f"best {candidate['best']:.4f}  [{per_n}]  {candidate['seconds']:.0f} s", flush=True)


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
    """Fine-tuning at encoder learning rate 0 (BatchNorm frozen, no shifts) against the frozen arm, same draw."""
    config = h.TransferConfig(**{**h.asdict(BASE), **frozen, "encoder_lr": 0.0, "batchnorm": "frozen", "max_shift": 0})
    i = draw_indices(data.fit_y, n, 0)
    models = {arm: h.train_few_label(arm, data.state, data.ae_config, data.fit_x[i], data.fit_y[i], data.fit_x,
                                     config, seed=0, unlabeled_codes=data.fit_codes) for arm in ("frozen", "finetune")}
    acc = {arm: h.accuracy(m, data.val_x, data.val_y) for arm, m in models.items()}
    with torch.no_grad():
        logit_diff = float((models["frozen"](data.val_x) - models["finetune"](data.val_x)).abs().max())
    print(f"control: fine-tuning at encoder lr 0 {acc['finetune']:.4f} against frozen {acc['frozen']:.4f} "
          f"(n={n}, draw 0); largest logit difference {logit_diff:.2e}", flush=True)
    return {"labels": n, "frozen": acc["frozen"], "finetune_lr0": acc["finetune"],
            "max_abs_diff": abs(acc["frozen"] - acc["finetune"]), "max_logit_diff": logit_diff}


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("transfer", "mixture", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="one small candidate per arm (the regression test)")
    parser.add_argument("--out", type=Path, default=h.FIGURES_DIR / "validation.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = Data()
    print(f"fit {len(data.fit_x):,} images, validation {len(data.val_x):,} images (training set "
          f"{h.AE_TRAIN_SIZE:,}-{h.AE_TRAIN_SIZE + h.AE_VAL_SIZE - 1:,}); precision {h.PRECISION}", flush=True)
    result = {"precision": h.PRECISION, "quick": args.quick}
    if args.part in ("transfer", "all"):
        kwargs = dict(labels=QUICK["labels"], draws=QUICK["draws"], curve_steps=QUICK["curve"],
                      grids=QUICK["grids"], cluster_grid=QUICK["cluster"]) if args.quick else {}
        result["transfer"] = search_transfer(data, **kwargs)
        print(tabulate([(arm, json.dumps(s)) for arm, s in result["transfer"]["selection"].items()],
                       headers=("arm", "chosen on validation")))
    if args.part in ("mixture", "all"):
        result["mixture"] = search_mixture(data, QUICK["mixture"] if args.quick else MIXTURE_COMPONENTS)
    result["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"{result['seconds']:.0f} s; written to {args.out}")
    return result


if __name__ == "__main__":
    main()
