"""Reading the Grafana dashboards of deploy/grafana/: their PromQL queries, the metric names
those queries reference, and the metric names a Prometheus text exposition declares."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fleetplane_testing.hubprocess import REPO

DASHBOARDS = REPO / "deploy" / "grafana"

PROMQL_WORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
    ]
)
"""PromQL keywords that are not followed by "(" (functions and aggregations always are)."""

SUFFIXES = ("_bucket", "_sum", "_count")
"""The series a histogram adds to its name; a query on one of them references the histogram."""


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out += _panels(p.get("panels") or [])  # collapsed rows hold their panels
    return out


def dashboard_queries(path: Path | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query target of the dashboards (or of one), in order."""
    found: list[tuple[str, str]] = []
    for f in [path] if path is not None else dashboard_files():
        doc = json.loads(f.read_text())
        for panel in _panels(doc.get("panels") or []):
            for target in panel.get("targets") or []:
                expr = target.get("expr")
                if expr:
                    found.append((str(panel.get("title")), str(expr)))
        for var in (doc.get("templating") or {}).get("list") or []:
            query = var.get("query")
            if var.get("type") == "query" and isinstance(query, dict) and query.get("query"):
                found.append((f"variable {var.get('name')}", str(query["query"])))
            elif var.get("type") == "query" and isinstance(query, str):
                found.append((f"variable {var.get('name')}", query))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (histogram series reduced to the histogram)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range and subquery selectors
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # Grafana variables
    # Grafana template functions label_values(metric, label) name a metric as their argument.
    e = re.sub(r"\blabel_values\s*\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)", r" \1 ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or unit of a number (1e3, 5m)
        if e[m.end() :].lstrip().startswith("(") or word.lower() in PROMQL_WORDS:
            continue  # a function, an aggregation, a keyword
        for suffix in SUFFIXES:
            if word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        names.add(word)
    return names


def exposed_names(text: str) -> set[str]:
    """Every metric name a text exposition declares (# TYPE lines), a counter also with _total."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[:2] == ["#", "TYPE"]:
            names.add(parts[2])
            if parts[3] == "counter" and not parts[2].endswith("_total"):
                names.add(parts[2] + "_total")
    return names
