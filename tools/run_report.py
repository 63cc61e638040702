"""Execute a notebook top to bottom in place, saying on the terminal where the run is.

Usage: python tools/run_report.py [ex3.ipynb]

Prints a line when each section (a markdown cell whose heading starts with "## ") starts and ends, with the
run's elapsed time, and a line for every code cell that takes longer than a minute. The kernel runs with
EX3_PROGRESS=terminal, so the training progress bars go to this terminal instead of into the notebook's
outputs. On an error the partly executed notebook is written too, and the exit status is 1. First copies the
search's models kept in studies/models/ into the checkpoint folder where missing.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
SLOW_CELL = 60.0  # seconds: a code cell at least this long gets a line of its own


def sections(nb) -> list:
    """The heading of the section each cell belongs to ('' before the first '## ' heading)."""
    out, current = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            current = cell.source.splitlines()[0]
        out.append(current)
    return out


class Progress:
    """nbclient hooks that print the run's position: section starts and ends, slow cells."""

    def __init__(self, nb, out=sys.stdout):
        self.section_of, self.out, self.start = sections(nb), out, time.perf_counter()
        code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        self.last_code = {self.section_of[i]: i for i in code}  # the last code cell of each section
        self.current, self.section_start, self.cell_began = None, self.start, self.start

    def say(self, text: str) -> None:
        elapsed = int(time.perf_counter() - self.start)
        print(f"[{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {text}", file=self.out, flush=True)

    def cell_start(self, cell, cell_index, **_):
        section = self.section_of[cell_index]
        if section != self.current:
            self.current, self.section_start = section, time.perf_counter()
            self.say(f"{section or 'set-up'}: started")
        self.cell_began = time.perf_counter()

    def cell_executed(self, cell, cell_index, **_):
        now = time.perf_counter()
        section = self.section_of[cell_index]
        if now - self.cell_began >= SLOW_CELL:
            self.say(f"cell {cell_index} of {section or 'set-up'} took {now - self.cell_began:.0f} s")
        if self.last_code.get(section) == cell_index:
            self.say(f"{section or 'set-up'}: done in {now - self.section_start:.0f} s")


def run(path: Path, out=sys.stdout) -> int:
    nb = nbformat.read(path, as_version=4)
    progress = Progress(nb, out)
    os.environ["EX3_PROGRESS"] = "terminal"  # the kernel inherits it: its progress bars print here
    # The kernel leaves its own stderr alone (no copy into the notebook), so bars written there reach this terminal.
    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"],
                            on_cell_start=progress.cell_start, on_cell_executed=progress.cell_executed)
    progress.say(f"executing {path.name} ({len(nb.cells)} cells)")
    status = 0
    try:
        client.execute()
    except CellExecutionError as error:
        progress.say(f"stopped by an error: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        status = 1
    finally:
        nbformat.write(nb, path)
    progress.say(f"{path.name} written" + (" (with the error)" if status else ""))
    return status


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from ex3lib.studies import MODEL_DIR, restore_models

    # the search's models kept beside its studies: the report reads them back instead of training them
    print(f"restored {restore_models()} of the search's models kept in {MODEL_DIR.relative_to(ROOT)}", flush=True)
    sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "ex3.ipynb").resolve()))
