"""Fixed-width text and Markdown tables of result rows: the one printer behind test, benchmark and compare."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    """A column: the row key it shows, its header, its text width and the format of its numbers."""

    key: str
    header: str = ""
    width: int = 10
    spec: str = ".3f"


def _cell(value: Any, spec: str, markdown: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if markdown and math.isnan(value) else format(value, spec)
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], markdown: bool = False) -> str:
    """Rows as a table: the first column left-aligned and the others right-aligned, or as Markdown (NaN as '-')."""
    headers = [column.header or column.key for column in columns]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(c.key), c.spec, True) for c in columns) + " |")
        return "\n".join(lines)

    def line(cells: Sequence[str]) -> str:
        first, *rest = zip(cells, columns, strict=True)
        return f"{first[0]:<{first[1].width}}" + "".join(f"{text:>{column.width}}" for text, column in rest)

    header = line(headers)
    body = [line([_cell(row.get(c.key), c.spec, False) for c in columns]) for row in rows]
    return "\n".join([header, "-" * len(header), *body])
