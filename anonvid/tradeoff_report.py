"""`anonvid tradeoff`: trade-off analysis of any results table (CSV) → tradeoff.csv, summary.json, figures.

Reads a CSV with one row per configuration, runs `anonvid.tradeoff.analyse` on the named objectives, and writes
- `tradeoff.csv`: the input columns plus `distance, weighted, rank_distance, rank_weighted, combined_rank, pareto`;
- `summary.json`: `pareto` (names), `sweet_spot`, `hypervolume`, `knee`, `excluded_nan`, the objectives;
- `pareto_<a>_<b>.png`: every pair of objectives, the Pareto set highlighted and the sweet spot marked;
- `heatmaps.png`: when the names form an ordered-pair grid (every name is `A` or `A+B`, "A applied first, then
  B", over a set of mechanism labels), one heat map per objective plus the combined rank, as in the paper's 5×5
  figure: row = first mechanism, column = second, diagonal = the mechanism alone. A table may list extra grid
  cells a row stands for in an optional `cells` column (space-separated names), e.g. `TS+BL BL+TS` for a pair
  that commutes and was run once.
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
    cells = [(row.get("cells") or "").split() or [name] for row, name in zip(rows, names)]
    grid = grid_layout(cells)
    if grid is not None:
        summary["figures"].append(_heatmaps(grid, values, objectives, result, out))
    return summary


def grid_layout(cells: Sequence[Sequence[str]]) -> tuple[list[str], dict[tuple[int, int], int]] | None:
    """Reads an ordered-pair grid out of row names.

    Args:
      cells: for each table row, the grid-cell names it stands for (`A` = diagonal, `A+B` = A then B).

    Returns:
      `(labels, {(i, j): row})` with labels in first-seen order, or None when some name is not of that form or
      no name is a pair (plain names such as `raw`, `blur` are a list, not a grid).
    """
    labels: list[str] = []
    where: dict[tuple[int, int], int] = {}
    for r, names in enumerate(cells):
        for name in names:
            parts = name.split("+")
            if len(parts) > 2 or not all(p.strip() for p in parts):
                return None
            for p in parts:
                if p not in labels:
                    labels.append(p)
            i, j = labels.index(parts[0]), labels.index(parts[-1])
            where.setdefault((i, j), r)
    pairs = any(i != j for i, j in where)
    return (labels, where) if pairs else None


def _heatmaps(grid, values, objectives, result, out) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, where = grid
    n = len(labels)
    panels = [(o.name, values[:, c], "viridis" if o.sense == "max" else "viridis_r")
              for c, o in enumerate(objectives)]
    panels.append(("combined rank (1 = best)", np.asarray(result["combined_rank"], float), "viridis_r"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2))
    for ax, (title, column, cmap) in zip(np.atleast_1d(axes), panels):
        m = np.full((n, n), np.nan)
        for (i, j), r in where.items():
            m[i, j] = column[r]
        im = ax.imshow(m, cmap=cmap)
        for (i, j), r in where.items():
            ax.text(j, i, f"{m[i, j]:.3g}", ha="center", va="center", fontsize=7, color="w")
        ax.set_xticks(range(n), labels, fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.set_xlabel("then", fontsize=8)
        ax.set_ylabel("first", fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = os.path.join(out, "heatmaps.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return os.path.basename(path)


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
