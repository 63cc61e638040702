"""The report's runner: the terminal shows which section runs and for how long, and the notebook is written."""

import importlib.util
import io
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent


def load_runner():
    spec = importlib.util.spec_from_file_location("run_report", ROOT / "tools" / "run_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_runner_names_each_section_as_it_starts_and_ends_and_writes_the_notebook(tmp_path):
    runner = load_runner()
    path = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[
        new_code_cell("x = 1"),
        new_markdown_cell("## 1. First section\n\nText."),
        new_code_cell("import os, sys\nprint(os.environ.get('EX3_PROGRESS'))\n_ = sys.__stderr__.write('a progress bar')"),
        new_code_cell("y = x + 1"),
        new_markdown_cell("## 2. Second section"),
        new_code_cell("print(y)"),
    ]), path)
    out = io.StringIO()
    assert runner.run(path, out) == 0
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines[1:] == ["set-up: started", "set-up: done in 0 s", "## 1. First section: started",
                         "## 1. First section: done in 0 s", "## 2. Second section: started",
                         "## 2. Second section: done in 0 s", "tiny.ipynb written"], lines
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4]
    assert code[1].outputs[0]["text"].strip() == "terminal" and code[3].outputs[0]["text"].strip() == "2"
    assert len(code[1].outputs) == 1  # what the kernel writes to its own stderr (the bars) stays out of the notebook


def test_the_runner_writes_the_notebook_and_fails_on_an_error(tmp_path):
    runner = load_runner()
    path = tmp_path / "broken.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("## 1. Only"), new_code_cell("1 / 0")]), path)
    out = io.StringIO()
    assert runner.run(path, out) == 1
    assert "stopped by an error" in out.getvalue()
    assert any(o.get("output_type") == "error" for o in nbformat.read(path, as_version=4).cells[1].outputs)


def test_progress_bars_go_to_the_processs_own_stderr_under_the_runner(monkeypatch):
    import sys

    from tqdm.auto import tqdm as auto_bar

    from ex3lib import runtime

    made = []
    monkeypatch.setattr(runtime, "_text_tqdm", lambda *args, **kwargs: made.append(kwargs) or "text bar")
    monkeypatch.setenv("EX3_PROGRESS", "terminal")
    assert runtime.tqdm(range(3), desc="x") == "text bar" and made[0]["file"] is sys.__stderr__
    monkeypatch.delenv("EX3_PROGRESS")
    assert isinstance(runtime.tqdm(range(3), disable=True), auto_bar) and len(made) == 1
