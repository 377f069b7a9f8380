"""`anonvid tradeoff`: trade-off analysis of any results table (CSV) → tradeoff.csv, summary.json, figures.

Reads a CSV with one row per configuration, runs `anonvid.tradeoff.analyse` on the named objectives, and writes
- `tradeoff.csv`: the input columns plus `distance, weighted, rank_distance, rank_weighted, combined_rank, pareto`;
- `summary.json`: `pareto` (names), `sweet_spot`, `hypervolume`, `knee`, `excluded_nan`, the objectives;
- `pareto_<a>_<b>.png`: every pair of objectives, the Pareto set highlighted and the sweet spot marked.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import os
from typing import Sequence

import numpy as np

from anonvid import tradeoff


def read_table(path: str) -> tuple[list[str], list[dict[str, str]]]:
    """Reads a CSV file into its header and rows; a missing or empty file is a clear error."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results table {path!r} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    if not header or not rows:
        raise ValueError(f"results table {path!r} has no rows")
    return header, rows


def _column(rows: Sequence[dict[str, str]], name: str, header: Sequence[str], path: str) -> np.ndarray:
    if name not in header:
        raise ValueError(f"results table {path!r} has no column {name!r}; columns: {', '.join(header)}")
    out = []
    for i, row in enumerate(rows):
        text = (row[name] or "").strip()
        try:
            out.append(float(text) if text else math.nan)
        except ValueError as err:
            raise ValueError(f"{path}: row {i + 2}, column {name!r}: {text!r} is not a number") from err
    return np.asarray(out, np.float64)


def run(table: str, objective_specs: Sequence[str], out: str, *, weights: str | None = None,
        name_column: str = "name") -> dict:
    """Analyses `table` and writes the outputs to `out`; returns the summary."""
    objectives = [tradeoff.parse_objective(s) for s in objective_specs]
    if not objectives:
        raise ValueError("give at least one --objective NAME:max|min")
    if weights:
        try:
            w = [float(x) for x in weights.split(",")]
        except ValueError as err:
            raise ValueError(f"--weights {weights!r} must be comma-separated numbers") from err
        if len(w) != len(objectives):
            raise ValueError(f"--weights has {len(w)} values for {len(objectives)} objectives")
        objectives = [tradeoff.Objective(o.name, o.sense, wi) for o, wi in zip(objectives, w)]
    header, rows = read_table(table)
    if name_column not in header:
        raise ValueError(f"results table {table!r} has no name column {name_column!r}; pass --name-column "
                         f"(columns: {', '.join(header)})")
    names = [row[name_column] for row in rows]
    values = np.stack([_column(rows, o.name, header, table) for o in objectives], axis=1)
    result = tradeoff.analyse(names, values, objectives)
    os.makedirs(out, exist_ok=True)
    added = ("distance", "weighted", "rank_distance", "rank_weighted", "combined_rank", "pareto")
    with open(os.path.join(out, "tradeoff.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header + [c for c in added if c not in header])
        writer.writeheader()
        for i, row in enumerate(rows):
            extra = {c: _cell(result[c][i]) for c in added}
            writer.writerow({**row, **extra})
    summary = dict(result["summary"])
    summary["objectives"] = [{"name": o.name, "sense": o.sense, "weight": o.weight} for o in objectives]
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=float)
    summary["figures"] = _projections(names, values, objectives, result, out)
    return summary


def _cell(v):
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    v = float(v)
    return "" if math.isnan(v) else f"{v:.6g}"


def _projections(names, values, objectives, result, out) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pareto = np.asarray(result["pareto"], bool)
    sweet = result["summary"]["sweet_spot"]
    paths = []
    for a, b in itertools.combinations(range(len(objectives)), 2):
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(values[~pareto, a], values[~pareto, b], c="0.6", s=14, label="dominated")
        ax.scatter(values[pareto, a], values[pareto, b], c="tab:blue", s=22, label="Pareto set")
        if sweet is not None:
            i = names.index(sweet)
            ax.scatter([values[i, a]], [values[i, b]], marker="*", s=220, c="tab:red", label=f"sweet spot: {sweet}")
        for i in np.flatnonzero(pareto)[:40]:
            ax.annotate(names[i], (values[i, a], values[i, b]), fontsize=6, alpha=0.8)
        oa, ob = objectives[a], objectives[b]
        ax.set_xlabel(f"{oa.name} ({'higher' if oa.sense == 'max' else 'lower'} is better)")
        ax.set_ylabel(f"{ob.name} ({'higher' if ob.sense == 'max' else 'lower'} is better)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(out, f"pareto_{oa.name}_{ob.name}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(os.path.basename(path))
    return paths
