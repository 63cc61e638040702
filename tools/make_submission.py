"""Build the submission zip: the code, the README and ex3.pdf, nothing else.

Usage: python tools/make_submission.py ID1 ID2
"""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"(\.py|\.ipynb|^Makefile|^requirements\.txt|^pytest\.ini|^README\.md|^tests/.*\.json)$")


def submission_files(root: Path = ROOT) -> list[str]:
    """The tracked code files of the project, as git knows them."""
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    return sorted(f for f in tracked if CODE.search(f))


def build_submission(id1: str, id2: str, pdf: Path, out_dir: Path = ROOT, root: Path = ROOT) -> Path:
    for name, value in (("ID1", id1), ("ID2", id2)):
        if not re.fullmatch(r"[A-Za-z0-9]+", value or ""):
            raise ValueError(f"{name} must be letters and digits, got {value!r}")
    if not pdf.exists():
        raise FileNotFoundError(f"{pdf} is missing; `make pdf` creates it")
    out = out_dir / f"ex3_{id1}_{id2}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in submission_files(root):
            z.write(root / f, f)
        z.write(pdf, "ex3.pdf")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: make submission ID1=... ID2=...")
    print(f"wrote {build_submission(sys.argv[1], sys.argv[2], ROOT / 'ex3.pdf')}")
