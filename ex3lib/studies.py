"""The stored studies: one Optuna study per model family, each a plain-text journal (studies/{family}.jsonl) that
diffs as lines and that a killed search resumes from; a study keeps one training precision."""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import runtime, settings

STUDY_DIR = settings.ROOT / "studies"
# The trained models of the stored trials that the report uses, kept beside the journals (a checkpoint folder is
# not part of a clone): a fresh clone's report reads them back instead of training them again.
MODEL_DIR = STUDY_DIR / "models"


def open_study(family: str, folder: Path | None = None, direction: str = "minimize"):
    """The family's study, created or read back from its journal file (studies/{family}.jsonl)."""
    import optuna

    folder = Path(folder or STUDY_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / f"{family}.jsonl")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:  # reading a stored study writes nothing (create_study appends a line to the journal at every open)
        return optuna.load_study(study_name=family, storage=storage)
    except KeyError:
        return optuna.create_study(study_name=family, storage=storage, direction=direction)


def stored_choice(family: str, folder: Path | None = None):
    """The choice the family's stored study recorded, or None where it has none yet or no journal is stored
    (reading creates no journal)."""
    if not (Path(folder or STUDY_DIR) / f"{family}.jsonl").exists():
        return None
    return open_study(family, folder).user_attrs.get("chosen")


class PrecisionMismatch(RuntimeError):
    """A stored study trained its models in another precision than this machine's: resuming would mix them."""


def study_precision(study) -> str | None:
    """The precision a study trains in: recorded at its first training open, else its first trial's."""
    if "precision" in study.user_attrs:
        return study.user_attrs["precision"]
    return next((t.user_attrs["precision"] for t in study.get_trials(deepcopy=False) if "precision" in t.user_attrs),
                None)


def check_machine(study, family: str) -> None:
    """Raise PrecisionMismatch where the stored study trained on another device type or in another precision."""
    stored, device = study_precision(study), study.user_attrs.get("device")
    if device is not None and device != runtime.DEVICE.type:  # another device computes another model
        raise PrecisionMismatch(f"studies/{family}.jsonl trains on {device}; this machine trains on "
                                f"{runtime.DEVICE.type}. Resume it on a {device} machine, or move the journal away to "
                                f"start a study on {runtime.DEVICE.type}.")
    if stored is not None and stored != runtime.PRECISION:
        why = " (no AMX or AVX512-BF16)" if runtime.PRECISION == "float32" and runtime.DEVICE.type == "cpu" else ""
        raise PrecisionMismatch(
            f"studies/{family}.jsonl trains in {stored}; this machine trains in {runtime.PRECISION}{why}. Resume it "
            f"where {stored} is the machine's precision (EX3_PRECISION=float32 gives float32 on any machine), or move "
            f"the journal away to start a {runtime.PRECISION} study.")


def open_study_to_train(family: str, folder: Path | None = None, direction: str = "minimize"):
    """open_study for a search that trains: a study keeps the precision and the device type it first trained on
    (a study of mixed precisions would compare precisions where it claims to compare settings, and a checkpoint's
    name holds its precision, so the report could not reuse the other part). On another machine it stops."""
    study = open_study(family, folder, direction)
    check_machine(study, family)
    if "precision" not in study.user_attrs:
        study.set_user_attr("precision", runtime.PRECISION)
    if "device" not in study.user_attrs:
        study.set_user_attr("device", runtime.DEVICE.type)
    return study


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


def tell(study, trial, value: float) -> float:
    """Complete `trial` with `value`; a diverged run (a value that is not finite) is recorded as the worst value
    of the study's direction, with user attribute diverged, so that it loses every comparison and, on resume, is
    read back instead of failing and training again (Optuna records a nan as a failed trial)."""
    from optuna.study import StudyDirection

    value = float(value)
    if not math.isfinite(value):
        trial.set_user_attr("diverged", True)
        value = math.inf if study.direction == StudyDirection.MINIMIZE else -math.inf
    study.tell(trial, value)
    return value


def complete(study, trial, attrs: dict, curve: dict | None = None):
    """Finish `trial`, asked before its model trained (so that a kill leaves it running, then failed on resume):
    its validation curve ({step: value}) as intermediate values, `attrs` as user attributes (as JSON stores them),
    told with attrs["value"] (tell: a diverged value loses every comparison). Returns the stored trial."""
    for step, value in (curve or {}).items():
        trial.report(value, step)
    for name, value in attrs.items():
        trial.set_user_attr(name, json.loads(json.dumps(value, default=str)))
    tell(study, trial, attrs["value"])
    return study.get_trials(deepcopy=False)[trial.number]


def set_chosen(study, result: dict) -> None:
    """Store a study's choice (user attribute chosen, as JSON stores it). A resumed search replays a finished
    study to the same choice in a fraction of its time: the stored choice, with the seconds its search took,
    stays, and the journal gains no line."""
    result = json.loads(json.dumps(result, default=str))
    stored = study.user_attrs.get("chosen")
    if stored is None or {**stored, "seconds": None} != {**result, "seconds": None}:
        study.set_user_attr("chosen", result)


def stored_checkpoints(folder: Path | None = None) -> set:
    """The checkpoint names (cache keys) of every complete trial of every stored study in `folder`: the models the
    search trained, which the report loads where its config, precision and code are the same (a cold report keeps
    them and trains the rest)."""
    from optuna.trial import TrialState

    names = set()
    for journal in sorted(Path(folder or STUDY_DIR).glob("*.jsonl")):
        study = open_study(journal.stem, journal.parent)
        names |= {t.user_attrs.get("cache_key") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    return names - {"", None}


def clear_checkpoints(folder: Path | None = None, studies: Path | None = None) -> tuple:
    """Delete every checkpoint in `folder` (settings.CHECKPOINT_DIR) that no stored study's trial trained:
    (kept, deleted) file counts. A checkpoint's file name ends in its cache key (cache.checkpoint_path)."""
    keep, kept, deleted = stored_checkpoints(studies), 0, 0
    for path in sorted(Path(folder or settings.CHECKPOINT_DIR).glob("*")):
        if path.is_file() and path.suffix == ".pt" and path.stem.rpartition("-")[2] in keep:
            kept += 1
        elif path.is_file():
            path.unlink()
            deleted += 1
    return kept, deleted


def keep_models(names, checkpoints: Path | None = None, models: Path | None = None,
                studies: Path | None = None) -> list:
    """Copy the checkpoints `names` (file names in `checkpoints`, settings.CHECKPOINT_DIR by default) into `models`
    (MODEL_DIR): only those a stored study's trial trained (stored_checkpoints), since a kept model stands for the
    search's. Returns the names copied."""
    import shutil

    source, target, trials = Path(checkpoints or settings.CHECKPOINT_DIR), Path(models or MODEL_DIR), stored_checkpoints(studies)
    foreign = [n for n in names if Path(n).stem.rpartition("-")[2] not in trials]
    if foreign:
        raise ValueError(f"no stored trial trained {foreign}: only the search's models are kept beside its studies")
    target.mkdir(parents=True, exist_ok=True)
    copied = [n for n in names if (source / n).exists() and not (target / n).exists()]
    for name in copied:
        shutil.copy2(source / name, target / name)
    return copied


def restore_models(checkpoints: Path | None = None, models: Path | None = None) -> int:
    """Copy every kept model (MODEL_DIR) into the checkpoint folder where it is missing, so that the report and the
    search read it back instead of training it; returns how many were copied."""
    import shutil

    source, target = Path(models or MODEL_DIR), Path(checkpoints or settings.CHECKPOINT_DIR)
    missing = [p for p in sorted(source.glob("*.pt")) if not (target / p.name).exists()]
    if missing:
        target.mkdir(parents=True, exist_ok=True)
    for path in missing:
        shutil.copy2(path, target / path.name)
    return len(missing)
