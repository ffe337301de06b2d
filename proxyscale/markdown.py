"""Markdown pieces shared by the three reports: tables, values with intervals, figure links."""

from __future__ import annotations

import math
import os

import pandas as pd


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table (floats formatted with ``floatfmt``, NaN shown as '-')."""

    def cell(v):
        if isinstance(v, float):
            return "-" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def with_ci(value: float, lo: float, hi: float, fmt: str = ".2f") -> str:
    """``value [lo, hi]``, or '-' where the value is undefined."""
    return "-" if math.isnan(value) else f"{value:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def figure_links(report_path: str, figures: dict[str, str]) -> dict[str, str]:
    """Figure paths (by key) relative to the report's folder, as the report's image links need."""
    here = os.path.dirname(report_path)
    return {key: os.path.relpath(path, here) for key, path in figures.items()}
