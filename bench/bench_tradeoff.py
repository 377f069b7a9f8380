"""Trade-off analysis speed and Pareto-set agreement against `paretoset` and pymoo, side by side.

For each table size n (rows) × k objectives of random data, runs in the same process, interleaved:
- `anonvid.tradeoff.pareto_mask` and the full `anonvid.tradeoff.analyse` (normalise, distance, weighted score,
  ranks, Pareto set, sweet spot, hypervolume, knee);
- `paretoset.paretoset(..., distinct=False)` (pandas/numba-free numpy implementation) on the same data;
- pymoo's `NonDominatedSorting().do(F, only_non_dominated_front=True)` (first front only), when pymoo is
  installed, on sizes it finishes in reasonable time (its sort is O(k n^2)).

Checks the three Pareto sets are identical (as sets of row indices) and prints a markdown table of median
seconds and the speed ratio peer/anonvid (> 1 means anonvid is faster).

    pip install -e '.[bench]' pymoo==0.6.2
    python -m bench.bench_tradeoff --sizes 10000,100000,1000000 --repeats 3 --out /tmp/tradeoff_bench.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from anonvid import tradeoff


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def _data(n: int, k: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.random((n, k))
    if kind == "front":  # many rows near a concave front: a large Pareto set, the hard case
        x = rng.random((n, k))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x *= 1.0 - 0.02 * rng.random((n, 1))
        x[:, 0] = 1.0 - x[:, 0]  # objective 0 is maximised
        return x
    raise ValueError(kind)


def run(sizes, k: int, kinds, repeats: int, pymoo_max: int) -> list[dict]:
    import paretoset

    try:
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    except ImportError:
        NonDominatedSorting = None
    senses = ["max"] + ["min"] * (k - 1)
    objectives = [tradeoff.Objective(f"o{i}", s) for i, s in enumerate(senses)]
    warm = _data(100, k, "uniform", seed=0)  # paretoset compiles with numba on its first call: not timed
    paretoset.paretoset(warm, sense=senses, distinct=False)
    rows = []
    for kind in kinds:
        for n in sizes:
            values = _data(n, k, kind, seed=n)
            names = [str(i) for i in range(n)]
            times: dict[str, list[float]] = {"anonvid_pareto": [], "anonvid_analyse": [], "paretoset": [],
                                             "pymoo": []}
            sets = {}
            for _ in range(repeats):  # interleaved: each tool sees the same machine state on average
                t, mask = _timed(tradeoff.pareto_mask, values, senses)
                times["anonvid_pareto"].append(t)
                sets["anonvid"] = set(np.flatnonzero(mask).tolist())
                t, _ = _timed(tradeoff.analyse, names, values, objectives)
                times["anonvid_analyse"].append(t)
                t, mask = _timed(paretoset.paretoset, values, sense=senses, distinct=False)
                times["paretoset"].append(t)
                sets["paretoset"] = set(np.flatnonzero(np.asarray(mask)).tolist())
                if NonDominatedSorting is not None and n <= pymoo_max:
                    y = np.where(np.array(senses) == "max", -values, values)
                    t, front = _timed(NonDominatedSorting().do, y, only_non_dominated_front=True)
                    times["pymoo"].append(t)
                    sets["pymoo"] = set(np.asarray(front).tolist())
            med = {name: statistics.median(v) for name, v in times.items() if v}
            row = {"kind": kind, "n": n, "k": k, "pareto_size": len(sets["anonvid"]),
                   "identical_to_paretoset": sets["anonvid"] == sets["paretoset"],
                   "identical_to_pymoo": sets["anonvid"] == sets["pymoo"] if "pymoo" in sets else None,
                   **{f"{name}_s": v for name, v in med.items()}}
            row["paretoset_over_anonvid"] = med["paretoset"] / med["anonvid_pareto"]
            if "pymoo" in med:
                row["pymoo_over_anonvid"] = med["pymoo"] / med["anonvid_pareto"]
            rows.append(row)
            print(_markdown([row], header=not rows[:-1]), flush=True)
    return rows


def _markdown(rows, header=True) -> str:
    lines = []
    if header:
        lines += ["| data | n × k | Pareto size | anonvid pareto_mask s | anonvid analyse s | paretoset s "
                  "| ratio paretoset/anonvid | pymoo s | ratio pymoo/anonvid | same set |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        same = r["identical_to_paretoset"] and r["identical_to_pymoo"] in (True, None)
        pymoo = f"{r['pymoo_s']:.3f}" if "pymoo_s" in r else "—"
        ratio = f"{r['pymoo_over_anonvid']:.1f}×" if "pymoo_over_anonvid" in r else "—"
        lines.append(f"| {r['kind']} | {r['n']:,} × {r['k']} | {r['pareto_size']} | {r['anonvid_pareto_s']:.3f} "
                     f"| {r['anonvid_analyse_s']:.3f} | {r['paretoset_s']:.3f} | "
                     f"{r['paretoset_over_anonvid']:.1f}× | {pymoo} | {ratio} | {'yes' if same else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--objectives", type=int, default=3)
    p.add_argument("--kinds", default="uniform,front")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pymoo-max", type=int, default=20000, help="largest n given to pymoo (O(k n^2) sort)")
    p.add_argument("--out", default="")
    a = p.parse_args()
    rows = run([int(s) for s in a.sizes.split(",")], a.objectives, a.kinds.split(","), a.repeats, a.pymoo_max)
    if not all(r["identical_to_paretoset"] and r["identical_to_pymoo"] in (True, None) for r in rows):
        raise SystemExit("Pareto sets differ between anonvid and a peer")
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
