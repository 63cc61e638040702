"""The checkpoint cache: a trained model is named by its config, the training precision and the source of
its training code."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import json
import os
import sys
import tempfile
import textwrap
import torch
import torch.nn as nn
from dataclasses import asdict
from pathlib import Path

from . import settings, runtime
from .runtime import DEVICE, cores, set_seed, tqdm


# What turns a config of each family into trained weights: its model class and training function (in the
# module that defines the config), and every function or class of this package that they use, directly or
# through each other, found by reading their source (training_code). That source is part of the checkpoint's
# name, so a changed model, training loop, optimiser or precision policy never loads old weights, whichever
# module of the package the change is in. Config dataclasses are not code: a config enters the name by its
# values (config_key), so their defaults can change without renaming a model trained with explicit values.
TRAINING_ROOTS = {
    "AEConfig": ("ex3lib.autoencoder", ("Autoencoder", "train_autoencoder")),
    "ClassifierConfig": ("ex3lib.classifier", ("EvalClassifier", "train_classifier")),
    "GANConfig": ("ex3lib.gan", ("LatentGAN", "train_latent_gan")),
}
PACKAGE = __name__.rpartition(".")[0]

_PARSED: dict = {}  # source reading of this process, by a module file's text or by function or class object


def _source(obj) -> tuple[str, set]:
    """(source, names it mentions) of a function or class; read once per object, so a replaced
    function (a test's monkeypatch, say) is read afresh."""
    if obj not in _PARSED:
        source = inspect.getsource(obj)
        tree = ast.parse(textwrap.dedent(source))
        _PARSED[obj] = (source, {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
    return _PARSED[obj]


def _package_definitions() -> set:
    """Names of the functions and classes that the package's modules define at their top level."""
    names = set()
    for module in [m for name, m in sys.modules.items() if name.startswith(PACKAGE + ".")]:
        text = Path(module.__file__).read_text()
        if text not in _PARSED:
            _PARSED[text] = {node.name for node in ast.parse(text).body
                             if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        names |= _PARSED[text]
    return names


def is_config(obj) -> bool:
    """Whether obj is a config dataclass (a class whose instances name models by their values), the report's
    Recipe included (its values, not its source, enter whatever they configure)."""
    return (isinstance(obj, type) and dataclasses.is_dataclass(obj)
            and (obj.__name__.endswith("Config") or obj.__name__ == "Recipe"))


def _training_objects(family: str) -> dict:
    """{name: function or class} that a family's training roots use, as bound now: each name is looked up
    in the module of the code that mentions it, so a function replaced there (a test's monkeypatch) counts."""
    if family not in TRAINING_ROOTS:
        raise ValueError(f"family must be one of {sorted(TRAINING_ROOTS)}, got {family!r}")
    return objects_used(*TRAINING_ROOTS[family])


def code_hash(*roots: tuple) -> str:
    """sha256 of the source of the functions and classes `roots` ((module name, (names...)) pairs) name and of
    everything of the package they use (as objects_used finds it): a validation trial's code, in its key."""
    objects = {}
    for module_name, names in roots:
        objects.update(objects_used(module_name, names))
    source = "".join(_source(objects[name])[0] for name in sorted(objects))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def objects_used(module_name: str, roots: tuple) -> dict:
    """{name: function or class} of the package that the `roots` of module `module_name` use, directly or through
    each other (names imported inside a function are not followed: name their home module's roots too)."""
    module = importlib.import_module(module_name)
    defined = _package_definitions()
    found, todo = {}, [(name, module) for name in roots]
    while todo:
        name, where = todo.pop()
        obj = getattr(where, name, None)
        if name in found or name not in defined or not callable(obj) or is_config(obj):
            continue
        found[name] = obj
        home = sys.modules.get(getattr(obj, "__module__", ""), where)
        todo += [(used, home) for used in _source(obj)[1]]
    return found


def training_code(family: str) -> list[str]:
    """Names of the package's functions and classes that a family's training uses, sorted."""
    return sorted(_training_objects(family))


def training_code_hash(config) -> str:
    """sha256 of the source of everything that trains a model of this config's family."""
    objects = _training_objects(type(config).__name__)
    source = "".join(_source(objects[name])[0] for name in sorted(objects))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def config_key(config) -> str:
    """A short stable hash of a dataclass config alone."""
    payload = json.dumps({"class": type(config).__name__, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_key(config) -> str:
    """The checkpoint's name: the config, the training precision and the training code's source."""
    payload = json.dumps({"config": config_key(config), "precision": runtime.PRECISION,
                          "code": training_code_hash(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# The checkpoint files


def checkpoint_path(config, folder: Path | None = None) -> Path:
    """Where the model of `config` is cached: in `folder`, settings.CHECKPOINT_DIR by default."""
    return Path(folder or settings.CHECKPOINT_DIR) / f"{type(config).__name__}-{cache_key(config)}.pt"


def save_checkpoint(path: Path, model: nn.Module, config, info: dict) -> None:
    """Write atomically: a crash mid-write never leaves a half checkpoint under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"state": model.state_dict(), "config": asdict(config), "info": info}, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is not a secret
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path, model: nn.Module) -> dict:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(blob["state"])
    return blob["info"]


def cached_model(config, build, train, required: bool = False, folder: Path | None = None):
    """Load the model named by `config` from the cache, or build, train and save it.

    `train(model)` returns an info dict (it must hold train_seconds). Returns (model, info),
    where info["cached"] says whether it came from the cache. A checkpoint that cannot be read
    is moved aside (suffix .broken) and the model trained again.
    """
    path = checkpoint_path(config, folder)
    set_seed(config.seed)
    model = build(config)
    info = None
    if path.exists():
        try:
            info = load_checkpoint(path, model)
            info["cached"] = True
        except Exception as e:  # truncated, corrupt or foreign file: any of them means "not cached"
            broken = path.with_suffix(".broken")
            os.replace(path, broken)
            print(f"unreadable checkpoint {path} ({type(e).__name__}) moved to {broken.name}; training it again")
            set_seed(config.seed)
            model = build(config)
    if info is None:
        if required:
            raise FileNotFoundError(f"no trained {type(config).__name__} for {config} in {path.parent}; "
                                    f"run `{settings.TRAIN_COMMAND}` to train it")
        model.to(DEVICE)
        info = train(model)
        save_checkpoint(path, model, config, info)
        info["cached"] = False
    return model.to(DEVICE).eval(), info


def train_side_by_side(configs: list, length, worker, desc: str, check=None) -> None:
    """Train the configs that have no checkpoint yet in worker processes side by side, so that each family's cached
    loader then reads them back: `worker(config, threads, folder)` (a module-level function, as the processes are
    spawned) trains one config into the checkpoint folder `folder`; `check()`, if given, runs first, only when workers
    will train.

    Only on a CPU with several cores (every core, or OMP_NUM_THREADS where it is set: the tests' workers set 1), one
    process per core, longest first (by `length(config)`) so that the workers finish close together: small models
    use several single-threaded processes better than one multi-threaded one. Elsewhere, or with one model
    missing, nothing happens here and the loader trains the models one by one."""
    missing = sorted((c for c in dict.fromkeys(configs) if not checkpoint_path(c).exists()), key=lambda c: -length(c))
    workers = min(len(missing), cores()) if DEVICE.type == "cpu" else 1
    if workers < 2:
        return
    if check is not None:
        check()
    import concurrent.futures as cf
    import multiprocessing

    threads = max(1, torch.get_num_threads() // workers)
    with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(worker, c, threads, settings.CHECKPOINT_DIR) for c in missing]
        for job in tqdm(cf.as_completed(jobs), total=len(jobs), desc=desc, leave=False):
            job.result()
