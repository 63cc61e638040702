"""Export the executed ex3.ipynb to a PDF that reads as a report: code hidden, no progress bars.

Usage: python tools/export_pdf.py [NOTEBOOK] [PDF] [ID1 ID2]

The PDF's title is the notebook's first heading; its author line the two students' IDs, or placeholders
to fill in where none are given.
"""

import sys
from pathlib import Path

import nbformat
from nbconvert import PDFExporter

WIDGET = "application/vnd.jupyter.widget-view+json"
PLACEHOLDER_AUTHORS = ("Student ID 1", "Student ID 2")


def strip_debris(nb):
    """Drop stderr streams (tqdm bars, warnings) and widget outputs, which mean nothing on paper."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.name == "stderr")
                            and WIDGET not in o.get("data", {})]
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
    nb = paper_headings(title_page(strip_debris(nbformat.read(notebook, as_version=4)), authors))
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
