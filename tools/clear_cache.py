"""Empty the checkpoint cache for a cold report, keeping the models that the stored studies trained.

Usage: python tools/clear_cache.py

The report loads a model the search trained when its config, precision and training code are the same (the
checkpoint's name says all three), and trains every other model in the run. Every other file of checkpoints/ is
deleted; the search's models kept beside its studies (studies/models/) are copied in where missing.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ex3lib import settings  # noqa: E402
from ex3lib.studies import MODEL_DIR, clear_checkpoints, restore_models  # noqa: E402

if __name__ == "__main__":
    kept, deleted = clear_checkpoints()
    print(f"{settings.CHECKPOINT_DIR}: kept {kept} checkpoints that the stored studies trained, deleted {deleted} files")
    print(f"restored {restore_models()} of the search's models kept in {MODEL_DIR}")
