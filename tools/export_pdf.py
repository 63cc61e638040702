"""Export the executed ex3.ipynb to a PDF that reads as a report: code hidden, no progress bars.

Usage: python tools/export_pdf.py [NOTEBOOK] [PDF] [ID1 ID2]

The PDF's title is the notebook's first heading; its author line the two students' IDs, or placeholders
to fill in where none are given.
"""

import re
import sys
import textwrap
from pathlib import Path

import nbformat
from nbconvert import PDFExporter

WIDGET = "application/vnd.jupyter.widget-view+json"
PLACEHOLDER_AUTHORS = ("Student ID 1", "Student ID 2")
LINE_CHARS = 100  # characters of body text on one line of the PDF's page (11 pt on 6.5 inches)
STREAM_CHARS = 80  # the LaTeX template wraps printed lines at 80 characters, dropping their indentation
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
CELL_BREAK = re.compile(r"(?<!\\)\|")  # a pipe between cells; an escaped one (\|) stays in its cell


def strip_debris(nb):
    """Drop stderr streams (tqdm bars, warnings) and widget outputs, which mean nothing on paper."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.name == "stderr")
                            and WIDGET not in o.get("data", {})]
    return nb


def column_widths(rows: list, budget: int = LINE_CHARS) -> list:
    """Widths, in characters, for a table's columns on a line of `budget` characters, shared out max-min fairly:
    a column whose longest cell fits in an equal share of what is left keeps it whole, the others split the
    rest equally; never narrower than a column's longest word, so that no word runs into the next column."""
    cols = list(zip(*rows))
    budget -= 3 * len(cols)  # the space between columns
    need = [max(len(w) for cell in col for w in (cell.split() or [""])) for col in cols]
    want = [max(len(cell) for cell in col) for col in cols]
    width, open_ = list(want), set(range(len(cols)))
    while open_:
        share = (budget - sum(want[j] for j in range(len(cols)) if j not in open_)) / len(open_)
        fits = {j for j in open_ if want[j] <= share}
        if not fits:
            for j in open_:
                width[j] = max(need[j], int(share))
            break
        open_ -= fits
    return width


def pipe_table_widths(markdown: str) -> str:
    """A markdown text whose pipe tables carry separator lines sized by column_widths. Pandoc lays out a wide
    pipe table with column widths in proportion to the dashes of its separator line; pandas writes as many
    dashes as a column's longest cell, so one long cell squeezes every other column until headers overlap."""
    lines = markdown.split("\n")
    for i, line in enumerate(lines):
        if i == 0 or not SEPARATOR.match(line) or not lines[i - 1].lstrip().startswith("|"):
            continue
        end = i + 1
        while end < len(lines) and lines[end].lstrip().startswith("|"):
            end += 1
        cells = lambda row: [c.strip() for c in CELL_BREAK.split(row.strip()[1:-1] if row.strip().endswith("|") else row.strip()[1:])]
        rows = [cells(row) for row in [lines[i - 1], *lines[i + 1:end]]]
        marks = cells(line)
        if {len(r) for r in rows} != {len(marks)}:
            continue  # rows that do not split into the separator's columns: leave the table as written
        lines[i] = "|" + "|".join((":" if m.startswith(":") else "-") + "-" * max(1, w - 2)
                                  + (":" if m.endswith(":") else "-") for m, w in zip(marks, column_widths(rows))) + "|"
    return "\n".join(lines)


def wrap_printed(text: str, width: int = STREAM_CHARS) -> str:
    """Printed text with every line longer than `width` broken at a space, its continuations indented four
    spaces past the line's own indentation (printed source code stays readable on paper)."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, width, subsequent_indent=indent + "    ", break_on_hyphens=False) or [line]
    return "\n".join(out)


def paper_layout(nb):
    """Tables sized to the page (pipe_table_widths) and printed lines wrapped with their indentation kept."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = wrap_printed(output.text)
            elif "text/markdown" in output.get("data", {}):
                output.data["text/markdown"] = pipe_table_widths(output.data["text/markdown"])
    return nb


def paper_headings(nb):
    """The PDF has its own title and the headings carry their numbers: drop the first-level title
    and mark the other headings unnumbered ({-} is pandoc's attribute for that)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            lines = [l for l in lines if not (l.startswith("# ") and nb.metadata.get("title"))]
            cell.source = "\n".join(l + " {-}" if l.startswith("#") else l for l in lines)
    return nb


def title_page(nb, authors=PLACEHOLDER_AUTHORS):
    """The title from the first first-level heading, and the author line."""
    nb.metadata["title"] = next(line[2:].strip() for cell in nb.cells if cell.cell_type == "markdown"
                                for line in cell.source.splitlines() if line.startswith("# "))
    nb.metadata["authors"] = [{"name": name} for name in authors]
    return nb


def export(notebook: Path, pdf: Path, authors=PLACEHOLDER_AUTHORS) -> Path:
    nb = paper_layout(paper_headings(title_page(strip_debris(nbformat.read(notebook, as_version=4)), authors)))
    if not any(c.cell_type == "code" and c.get("execution_count") for c in nb.cells):
        raise SystemExit(f"{notebook} has not been executed; run `make report` first")
    exporter = PDFExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem,
                                                                      "path": str(notebook.parent)}})
    pdf.write_bytes(body)
    return pdf


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("ex3.ipynb")
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else src.with_suffix(".pdf")
    ids = sys.argv[3:]
    if ids and len(ids) != 2:
        raise SystemExit("usage: python tools/export_pdf.py [NOTEBOOK] [PDF] [ID1 ID2]")
    print(f"wrote {export(src, dst, ids or PLACEHOLDER_AUTHORS)}")
