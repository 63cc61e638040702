"""The notebook as code and as a paper: its text twin, short cells, a body free of tooling, narrow tables."""

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "ex3.ipynb"
TWIN = ROOT / "ex3.py"


def cells_of(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_the_text_twin_holds_the_same_cells():
    nb, twin = nbformat.read(NOTEBOOK, as_version=4), jupytext.read(TWIN)
    assert cells_of(twin) == cells_of(nb), "ex3.py and ex3.ipynb differ: run `make sync`"
    assert [c.metadata.get("tags", []) for c in twin.cells] == [c.metadata.get("tags", []) for c in nb.cells]


def test_the_sync_check_sees_a_changed_sentence(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    edited = jupytext.reads(TWIN.read_text().replace("# ## 1. A convolutional autoencoder", "# ## 1. An autoencoder", 1),
                            fmt="py:percent")
    assert cells_of(edited) != cells_of(nb)


def test_every_code_cell_is_at_most_15_lines():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    long = [(i, len(c.source.strip().splitlines())) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and len(c.source.strip().splitlines()) > 15]
    assert not long, f"code cells longer than 15 lines (index, lines): {long}"


def body_text(nb) -> str:
    """What a reader sees of sections 1 to 5: markdown and outputs from the first section to the conclusion."""
    parts, inside = [], False
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("## "):
            inside = source.startswith(("## 1.", "## 2.", "## 3.", "## 4.", "## 5.")) or (inside and not source.startswith("## Conclusion"))
        if not inside:
            continue
        if cell["cell_type"] == "markdown":
            parts.append(source)
        for out in cell.get("outputs", []):  # stderr (progress bars, warnings) is not part of the paper
            if out.get("name") != "stderr":
                parts.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts)


# Machine information, run times and config dumps belong to the appendix, not to sections 1 to 5.
TOOLING = re.compile(r"(\b(cpu|cuda|gpu|bfloat16|float32|autocast|threads?|run time|ran in|train s|seconds)\b|"
                     r"\b\d+(\.\d+)?( s|\s?ms)\b|\w+Config\(|ae_key|torch \d)", re.IGNORECASE)


def test_sections_1_to_5_hold_no_machine_information_timings_or_config_reprs():
    text = body_text(json.loads(NOTEBOOK.read_text()))
    assert "## 1. A convolutional autoencoder" in text and "## 5. A generator" in text
    found = sorted({m.group(0) for m in TOOLING.finditer(text)})
    assert not found, f"sections 1 to 5 show tooling: {found}"


def test_the_tooling_check_catches_a_config_dump_and_a_timing():
    nb = {"cells": [{"cell_type": "markdown", "source": ["## 1. A convolutional autoencoder"]},
                    {"cell_type": "code", "source": [""], "outputs": [
                        {"output_type": "stream", "name": "stdout", "text": ["AEConfig(d=10)\nsection 1 ran in 1698 s\n"]}]}]}
    assert {m.group(0) for m in TOOLING.finditer(body_text(nb))} == {"AEConfig(", "ran in", "1698 s"}


def table_widths(text: str) -> list[int]:
    """Column counts of the Markdown tables in text (from their separator rows)."""
    return [line.strip().strip("|").count("|") + 1 for line in text.splitlines()
            if "|" in line and re.fullmatch(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*", line)]


def test_no_table_is_wider_than_8_columns():
    nb = json.loads(NOTEBOOK.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    text += "\n".join("".join(o.get("data", {}).get("text/markdown", "")) for c in nb["cells"] for o in c.get("outputs", []))
    widths = table_widths(text)
    assert widths and max(widths) <= 8, f"table widths: {widths}"
    assert table_widths("| a | b | c |\n|---|:--|--:|\n| 1 | 2 | 3 |") == [3]


def prose_words(nb) -> int:
    """Words of the markdown of the body: the introduction, the data section, sections 1 to 5 and the conclusion
    (the theory answers and the appendix not counted)."""
    words = 0
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            continue
        if source.startswith(("## Theory", "## Appendix")):
            break
        words += len(re.findall(r"[A-Za-z0-9][\w'.,-]*", source))
    return words


def test_the_body_is_at_most_2600_words():
    words = prose_words(json.loads(NOTEBOOK.read_text()))
    assert 1000 < words <= 2600, f"the introduction, data section, sections 1 to 5 and conclusion hold {words} words"


def test_the_report_ends_with_a_conclusion_before_the_theory_and_an_appendix():
    headings = [c.source.splitlines()[0] for c in nbformat.read(NOTEBOOK, as_version=4).cells
                if c.cell_type == "markdown" and c.source.startswith("## ")]
    order = [next(i for i, h in enumerate(headings) if h.startswith(p)) for p in
             ("## 5.", "## Conclusion", "## Theory 1", "## Theory 2", "## Appendix")]
    assert order == sorted(order), headings
