"""The validation search, as Optuna studies stored under studies/ (one plain-text journal per model family).

Usage: python tools/search.py [--family all|autoencoder|classifier|gan_k8|gan_gmm_prior|gan_cgan|transfer|unlabelled|mixture]
       [--folder DIR] [--picks] [--keep]

Every trial trains on the first 55,000 training images and is scored on the next 5,000; the test set is never
loaded. A killed search resumes where it stopped: run the same command again. Prints every trial as it ends
and the family's choice at the end; the choice is also stored in the study (user attribute "chosen"). The
other families run on the autoencoder the autoencoder study chose, so that study runs first; unlabelled (self-training
and cluster-then-label) builds on the transfer study's frozen head, so it runs after transfer; the latent GANs are judged
through the evaluation classifier whose length the classifier study chose, so it runs before them (a GAN study runs it
first where it has not chosen); gan_cgan and gan_gmm_prior run on the width and R1 weight the gan_k8 study chose, so
they run after it.

`--family all` runs every study in that order: the autoencoder study (two one-thread workers), the report's
autoencoder under its choice (once, since every other study needs it), then the other families in two lanes side
by side, each family its own one-thread process (LANES), with each line of its output prefixed by its name.

Every study trains in float32 (SEARCH_PRECISION), whatever the machine's fast precision.
"""

import argparse
import functools
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TQDM_DISABLE", "1")  # one line per trial, not progress bars
# The studies train in float32 on every machine (SEARCH_PRECISION): every CPU computes it, so any machine can resume
# a stored study, where a bfloat16 study could only go on where the CPU has AVX512-BF16 or AMX; and two CPUs that
# both have bfloat16 units round it differently. Set before the library reads it; EX3_PRECISION=bfloat16 is still
# honoured for a new study folder, and a stored study of another precision stops the search before it trains.
SEARCH_PRECISION = "float32"
if not os.environ.get("EX3_PRECISION"):  # unset or empty (which would mean the machine's precision)
    os.environ["EX3_PRECISION"] = SEARCH_PRECISION

import helpers as h  # noqa: E402
from ex3lib import search, studies  # noqa: E402

FAMILIES = {"autoencoder": search.search_autoencoder, "classifier": search.search_classifier,
            "transfer": search.search_transfer,
            "unlabelled": search.search_unlabelled, "mixture": search.search_mixture,
            **{f"gan_{f}": functools.partial(search.search_gan, family=f) for f in search.GAN_GRIDS}}

# Two lanes of studies that depend on each other only through the autoencoder study: the evaluation classifier and
# the latent GANs it judges in one (the cgan and gmm_prior studies run on the width and R1 weight the k8 study
# chose), the few-label arms and the
# mixture in the other (unlabelled builds on transfer's frozen head).
# gan_gmm_prior is not in a lane: the report does not use it (search.REPORT_GANS); `--family gan_gmm_prior` runs it.
LANES = (("classifier", "gan_k8", "gan_cgan"), ("transfer", "unlabelled", "mixture"))


def run_in_process(family: str, folder: Path, threads: int = 1) -> int:
    """Run one family's study as its own process with `threads` threads; its lines printed with its name."""
    env = {**os.environ, **{f"{lib}_NUM_THREADS": str(threads) for lib in ("OMP", "MKL", "NUMBA")}}
    proc = subprocess.Popen([sys.executable, __file__, "--family", family, "--folder", str(folder)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        for line in proc.stdout:
            print(f"[{family}] {line}", end="", flush=True)
        return proc.wait()
    finally:
        if proc.poll() is None:  # this process is stopping (an error, a kill): its study stops too
            proc.kill()
            proc.wait()


def run_all(folder: Path, run_family=run_in_process, log=print) -> dict:
    """Every study, in dependency order (module docstring); returns {family: exit status of its process}."""
    status = {"autoencoder": 0}
    main(["--family", "autoencoder", "--folder", str(folder)])
    recipe = search.studied_recipe(folder)
    log(f"the report's autoencoder under the study's choice: {recipe.ae_epochs} epochs, lr {recipe.ae_lr:g}, "
        f"batch {recipe.ae_batch_size}")
    h.autoencoder(h.ae_config(recipe=recipe), h.load_mnist(train=True)[0])

    def lane(families):
        for family in families:
            try:
                status[family] = run_family(family, folder)
            except Exception as error:  # a lane's failure is reported, never lost with its thread
                log(f"{family}: {type(error).__name__}: {error}")
                status[family] = -1
            if status[family]:
                log(f"{family} stopped with exit status {status[family]}; the rest of its lane waits for it")
                return

    threads = [threading.Thread(target=lane, args=(families,)) for families in LANES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return status


def refuse_mixed_precision(folder: Path, families) -> None:
    """Stop before any training where a stored study of `families` trains in another precision or on another device
    type than this machine (search.open_study_to_train would stop that study later, after the studies before it
    had run). Reads the journals only."""
    for family in families:
        if (Path(folder) / f"{family}.jsonl").exists():
            try:
                search.check_machine(search.open_study(family, folder), family)
            except search.PrecisionMismatch as error:
                raise SystemExit(f"make search: {error}") from None


def print_picks(folder: Path) -> dict:
    """{field: (FULL's value, the studies' choice)} of every field of the report's recipe that differs from what the
    stored studies chose (search.picked_recipe), printed; empty when the two agree."""
    import dataclasses

    picked = search.picked_recipe(folder, h.FULL)
    differ = {f.name: (getattr(h.FULL, f.name), getattr(picked, f.name)) for f in dataclasses.fields(h.FULL)
              if getattr(h.FULL, f.name) != getattr(picked, f.name)}
    for name, (now, pick) in differ.items():
        print(f"{name}: {now!r} in settings.FULL, {pick!r} chosen by the studies")
    print("settings.FULL is the studies' choice" if not differ else
          f"{len(differ)} settings of settings.FULL differ from the studies' choices: copy them into ex3lib/settings.py")
    return differ


def keep_report_models(folder: Path) -> list:
    """Copy the checkpoints of the report's models (tools/cache_keys.py's report_configs) that a stored trial trained
    into studies/models/ (studies.keep_models): a clone then reads them back instead of training them again."""
    sys.path.insert(0, str(ROOT / "tools"))
    from cache_keys import report_configs

    trials = studies.stored_checkpoints(folder)
    names = sorted({h.checkpoint_path(c).name for c in report_configs().values() if h.cache_key(c) in trials})
    copied = studies.keep_models(names, studies=folder)
    present = sorted(p.name for p in studies.MODEL_DIR.glob("*.pt"))
    print(f"{len(names)} of the report's models are stored trials; copied {len(copied)}, "
          f"{len(present)} kept in {studies.MODEL_DIR}: " + ", ".join(present))
    return copied


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["all", *sorted(FAMILIES)], default="autoencoder")
    parser.add_argument("--folder", type=Path, default=search.STUDY_DIR, help="where the study journals live")
    parser.add_argument("--keep", action="store_true", help="copy the checkpoints of the report's models that are "
                                                            "stored trials into studies/models/, and stop")
    parser.add_argument("--picks", action="store_true", help="print the settings of the report's recipe (settings.FULL) "
                                                             "that differ from the stored studies' choices, and stop")
    args = parser.parse_args(argv)
    if args.picks:
        return print_picks(args.folder)
    if args.keep:
        return keep_report_models(args.folder)
    if not h.SMOKE:  # the full recipe's models: a smoke run trains none of them
        print(f"restored {studies.restore_models()} of the search's models kept in {studies.MODEL_DIR}", flush=True)
    if h.SMOKE and Path(args.folder).resolve() == Path(search.STUDY_DIR).resolve():
        raise SystemExit("EX3_SMOKE=1 trains tiny models: their trials and choice would mix into the stored studies; "
                         "give them a --folder of their own")
    # every family but the autoencoder's and the classifier's trains on the autoencoder the autoencoder study chose:
    # its journal too
    refuse_mixed_precision(args.folder, FAMILIES if args.family == "all" else {"autoencoder", args.family})
    if args.family == "all":
        status = run_all(args.folder)
        stopped = [f for lane in LANES for f in lane if status.get(f, -1)]  # failed, or never started
        if stopped:
            raise SystemExit(f"studies that stopped or never ran: {stopped}")
        return status
    print(f"{args.family} study in {args.folder}: device {h.DEVICE}, precision {h.PRECISION}, "
          f"{'smoke' if h.SMOKE else 'full'} recipe", flush=True)
    h.refuse_test_images(h.validation_data("validation")[0])
    log = lambda line: print(line, flush=True)
    if args.family in ("autoencoder", "classifier"):  # the two that do not build on the report's autoencoder
        return FAMILIES[args.family](folder=args.folder, log=log)
    # the families built on the autoencoder run on the autoencoder study's choice
    recipe = search.studied_recipe(args.folder)
    print(f"on the autoencoder study's recipe: lr {recipe.ae_lr:g}, batch {recipe.ae_batch_size}, "
          f"{recipe.ae_epochs} epochs", flush=True)
    if args.family.startswith("gan_"):  # judged through the evaluation classifier the classifier study chose
        if not search.open_study("classifier", args.folder).user_attrs.get("chosen"):
            FAMILIES["classifier"](folder=args.folder, log=log, recipe=recipe)  # it has not run yet: first, here
        recipe = search.classifier_recipe(recipe, args.folder)
        print(f"judged by the classifier study's evaluation classifier: {recipe.classifier_epochs} epochs", flush=True)
    if args.family in ("gan_cgan", "gan_gmm_prior"):  # the GANs' shared width and R1 weight: the k8 study's
        recipe = search.shared_gan_recipe(recipe, args.folder)
        print(f"on the gan_k8 study's width {recipe.gan_recipe['hidden']} and R1 weight {recipe.gan_recipe['r1']:g}",
              flush=True)
    return FAMILIES[args.family](folder=args.folder, log=log, recipe=recipe)


if __name__ == "__main__":
    main()
