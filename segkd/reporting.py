"""How segkd's commands report: numbers as text, Markdown tables, CSV files, console tables, figures.

Every ``python -m segkd.X`` command that reports writes through these, so that a percentage, a
missing value, a table or a saved figure looks the same whichever command made it. A missing value
(None, NaN, an infinity) is always written "—". Scores are fractions (0-1) everywhere in segkd and
are named ``mIoU``, ``IoU`` (per class) and ``pixel_acc``, as in summary.json; they become
percentages only here, when they are written for a reader.

This module knows no model, dataset or command: it imports no other segkd module.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

#: What a missing value is written as, in every report.
MISSING = "—"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def percent(value: Optional[float], spec: str = ".2f", signed: bool = False) -> str:
    """A fraction as a percentage, ``100 * value`` in the format ``spec`` (``+`` in front with
    ``signed``: a difference); None and NaN as "—"."""
    if _missing(value):
        return MISSING
    return format(100 * value, ("+" if signed else "") + spec)


def number(value: Optional[float], spec: str) -> str:
    """``value`` in the format ``spec``; None and NaN as "—"."""
    return MISSING if _missing(value) else format(value, spec)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: Optional[str] = None) -> str:
    """A Markdown table (no trailing newline). ``align`` has one letter per column, ``l`` or ``r``
    (numbers right-aligned); all left by default. Cells are written with ``str``."""
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align={align!r} has {len(align)} letters for {len(header)} columns")
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    return "\n".join(["| " + " | ".join(map(str, header)) + " |", rule,
                      *("| " + " | ".join(map(str, row)) + " |" for row in rows)])


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]] = None) -> Path:
    """``rows`` as a CSV file with a header line: ``columns`` (by default the first row's keys), keys
    outside them left out, missing ones empty."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns if columns is not None else (rows[0] if rows else []))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def console_table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1):
    """A rich table for the console: the first ``left`` columns left-justified (names), the others
    right-justified (numbers)."""
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1,
                console=None) -> None:
    """:func:`console_table`, printed on ``console`` (a new rich Console by default)."""
    from rich.console import Console

    (console or Console()).print(console_table(title, header, rows, left))


def new_figure(**kwargs):
    """A matplotlib Figure on the Agg canvas, outside pyplot's global state (so any process or thread
    can draw one); ``kwargs`` as :class:`matplotlib.figure.Figure` takes them (``figsize``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay ``fig`` out tightly and write it to ``path`` (the format from the suffix, PNG in segkd),
    creating the folder; a pyplot figure is closed after. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    if getattr(fig.canvas, "manager", None) is not None:  # made by pyplot: let it go
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path
