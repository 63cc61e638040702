"""The validation search, as Optuna studies stored under studies/ (one plain-text journal per model family).

Usage: python tools/search.py [--family autoencoder|gan_k8|gan_gmm_prior|gan_cgan|transfer|unlabelled|mixture]
       [--folder DIR]

Every trial trains on the first 55,000 training images and is scored on the next 5,000; the test set is never
loaded. A killed search resumes where it stopped: run the same command again. Prints every trial as it ends
and the family's choice at the end; the choice is also stored in the study (user attribute "chosen"). The
other families run on the autoencoder the autoencoder study chose, so that study runs first; unlabelled (self-training
and cluster-then-label) builds on the transfer study's frozen head, so it runs after transfer.
"""

import argparse
import functools
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TQDM_DISABLE", "1")  # one line per trial, not progress bars

import helpers as h  # noqa: E402
from ex3lib import search  # noqa: E402

FAMILIES = {"autoencoder": search.search_autoencoder, "transfer": search.search_transfer,
            "unlabelled": search.search_unlabelled, "mixture": search.search_mixture,
            **{f"gan_{f}": functools.partial(search.search_gan, family=f) for f in search.GAN_GRIDS}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="autoencoder")
    parser.add_argument("--folder", type=Path, default=search.STUDY_DIR, help="where the study journals live")
    args = parser.parse_args(argv)
    print(f"{args.family} study in {args.folder}: device {h.DEVICE}, precision {h.PRECISION}, "
          f"{'smoke' if h.SMOKE else 'full'} recipe", flush=True)
    h.refuse_test_images(h.validation_data("validation")[0])
    log = lambda line: print(line, flush=True)
    if args.family == "autoencoder":
        return FAMILIES[args.family](folder=args.folder, log=log)
    # the families built on the autoencoder run on the autoencoder study's choice
    recipe = search.studied_recipe(args.folder)
    print(f"on the autoencoder study's recipe: lr {recipe.ae_lr:g}, batch {recipe.ae_batch_size}, "
          f"{recipe.ae_epochs} epochs", flush=True)
    return FAMILIES[args.family](folder=args.folder, log=log, recipe=recipe)


if __name__ == "__main__":
    main()
