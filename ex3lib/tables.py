"""The metrics file and tables: rows of plain numbers rendered as Markdown and recorded as flat metrics."""

from __future__ import annotations

import json
import numpy as np
import os
import torch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import settings


# Metrics file and tables


def metrics_path() -> Path:
    return settings.FIGURES_DIR / "metrics.json"


def reset_metrics() -> None:
    """Start a fresh figures/metrics.json, so no number of an earlier run survives into this one."""
    metrics_path().unlink(missing_ok=True)


def read_metrics() -> dict:
    """Everything recorded in figures/metrics.json so far."""
    path = metrics_path()
    return json.loads(path.read_text()) if path.exists() else {}


def record_metrics(values: dict) -> None:
    """Merge flat key -> number pairs into figures/metrics.json, written atomically."""
    path = metrics_path()
    settings.FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    metrics = read_metrics()
    for key, value in values.items():
        if isinstance(value, (np.floating, np.integer)) or (torch.is_tensor(value) and value.numel() == 1):
            value = value.item()
        if not isinstance(value, (int, float, str)):
            raise ValueError(f"metric {key!r} must be a number or a string, got {type(value).__name__}")
        # 10 significant digits: a number the tables print to 4 digits reads back as the same 4 digits (a
        # rounding to 6 decimals turned 0.0340650 into a tie, which the headline printed as 0.03406).
        metrics[key] = float(f"{value:.10g}") if isinstance(value, float) else value
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    os.replace(tmp, path)


def markdown_table(rows: list[dict], floatfmt: str = ".4f", numparse: bool = True):
    """A list of dicts as a Markdown table: readable in Jupyter, a real table in the PDF.

    numparse=False keeps preformatted strings exactly as given.
    """
    from IPython.display import Markdown
    from tabulate import tabulate

    escape = lambda v: v.replace("|", "\\|") if isinstance(v, str) else v  # a bare | splits a cell
    rows = [{escape(k): escape(v) for k, v in row.items()} for row in rows]
    return Markdown(tabulate(rows, headers="keys", tablefmt="pipe", floatfmt=floatfmt,
                             disable_numparse=not numparse))


# Tables: rows of plain numbers, rendered with per-column formats and recorded as metrics


def format_cell(value, spec: str = "") -> str:
    """One table cell: the value in a format spec; a list is comma-joined; None is blank."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(format_cell(v, spec) for v in value)
    return format(value, spec)


def table(rows: list[dict], columns: dict, formats: dict | None = None):
    """Rows of plain numbers as a Markdown table: `columns` maps a row key to its header (in order),
    `formats` a row key to a format spec ('.4g', '.1%') or to a function of the whole row."""
    formats = formats or {}

    def cell(row, key):
        spec = formats.get(key, "")
        return spec(row) if callable(spec) else format_cell(row.get(key), spec)

    return markdown_table([{header: cell(row, key) for key, header in columns.items()} for row in rows],
                          numparse=False)


def record_rows(rows: list[dict], keys: dict) -> None:
    """Record rows in figures/metrics.json: `keys` maps a row key to a metric name template filled
    from the row ('ae.test_mse.d{d}'); a list value is recorded per seed (name.seed0, name.seed1, ...)."""
    values = {}
    for row in rows:
        for column, template in keys.items():
            value, name = row.get(column), template.format(**row)
            if isinstance(value, (list, tuple, np.ndarray)):
                values.update({f"{name}.seed{i}": float(v) for i, v in enumerate(value)})
            elif value is not None:
                values[name] = value
    record_metrics(values)


def mean_std(key: str, spec: str = ".4g"):
    """Table cell of a row's list of per-seed values: 'mean ± std', blank for fewer than two."""
    def cell(row):
        values = row.get(key)
        if values is None or len(values) < 2:
            return ""
        return f"{format(np.mean(values), spec)} ± {format(np.std(values, ddof=1), spec)}"
    return cell


def accuracy_cell(arm: str):
    """Table cell of one arm of section 3: test mean ± std over draws, and the training accuracy in brackets."""
    return lambda row: f"{row[f'{arm}_mean']:.1%} ± {row[f'{arm}_std']:.1%} ({row[f'{arm}_train']:.0%})"


def interval_cell(key: str):
    """Table cell of a paired difference: mean [95% interval], and the better arm where the interval excludes 0."""
    return lambda row: (f"{row[f'{key}_mean']:+.1%} [{row[f'{key}_low']:+.1%}, {row[f'{key}_high']:+.1%}]"
                        + ("" if row[f"{key}_winner"] == "level" else f" {row[f'{key}_winner']}"))


@dataclass(frozen=True)
class Column:
    """One column of a table, spelled once: the row key it reads, its header (None: recorded, not shown),
    its format (a format spec such as '.4g', or a function of the whole row) and the metric name template
    it is recorded under (None: shown, not recorded; filled from the row, as in 'ae.test_mse.d{d}')."""

    key: str
    header: str | None = None
    fmt: str | Callable = ""
    metric: str | None = None


class Table:
    """A table's one spec: its columns, which render the rows as Markdown and record them as metrics."""

    def __init__(self, *columns: Column):
        recorded = [c.key for c in columns if c.metric]
        if len(recorded) != len(set(recorded)):
            raise ValueError(f"a row key is recorded twice: {recorded}")
        self.columns = columns

    def record(self, rows: list[dict]) -> None:
        record_rows(rows, {c.key: c.metric for c in self.columns if c.metric})

    def render(self, rows: list[dict]):
        shown = [c for c in self.columns if c.header is not None]
        return table(rows, {c.key: c.header for c in shown}, {c.key: c.fmt for c in shown if c.fmt})

    def show(self, rows: list[dict], unrecorded: list[dict] = ()):
        """Record the rows in figures/metrics.json and return them as a Markdown table, after the
        `unrecorded` rows (references recorded elsewhere, shown first for comparison)."""
        self.record(rows)
        return self.render([*unrecorded, *rows])
