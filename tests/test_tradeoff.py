"""Tests for anonvid.tradeoff against brute-force oracles and hand-worked tables."""
import itertools

import numpy as np
import pytest

from anonvid import tradeoff as T

MIXED = ["max", "min", "min"]


def brute_pareto(values, senses):
    """O(n^2) oracle straight from the definition (minimise after flipping 'max' columns)."""
    v = np.asarray(values, dtype=float)
    y = np.where(np.array([s == "max" for s in senses]), -v, v)
    dominated = np.zeros(len(y), dtype=bool)
    for i in range(len(y)):
        no_worse = np.all(y <= y[i], axis=1)
        better = np.any(y < y[i], axis=1)
        dominated[i] = np.any(no_worse & better)
    return ~dominated


def dominated_by_any(cand, front):
    """cand (c,k), front (f,k), minimised: True where some front row dominates the cand row."""
    out = np.zeros(len(cand), dtype=bool)
    for i, c in enumerate(cand):
        out[i] = np.any(np.all(front <= c, axis=1) & np.any(front < c, axis=1))
    return out


@pytest.mark.parametrize("k", [2, 3, 4])
def test_pareto_matches_bruteforce_random(k):
    rng = np.random.default_rng(k)
    for trial in range(12):
        n = int(rng.integers(1, 250))
        if trial % 3 == 0:
            v = rng.random((n, k))
        else:  # few levels -> many ties and exact duplicate rows
            v = rng.integers(0, 4, size=(n, k)).astype(float)
            v = np.concatenate([v, v[: n // 3]])
        senses = list(rng.choice(["max", "min"], size=k))
        np.testing.assert_array_equal(T.pareto_mask(v, senses), brute_pareto(v, senses))


@pytest.mark.parametrize("k", [3, 4])
def test_pareto_with_pivot_prefilter_matches_bruteforce(k):
    rng = np.random.default_rng(11 + k)
    v = rng.integers(0, 12, size=(5000, k)).astype(float)  # > 4096 rows: the pivot pre-filter runs; many ties
    v[:50] = v[50:100]  # exact duplicates
    senses = ["max", "min"] + ["min"] * (k - 2)
    y = np.where(np.array(senses) == "max", -v, v)
    brute = np.array([not np.any(np.all(y <= r, axis=1) & np.any(y < r, axis=1)) for r in y])
    np.testing.assert_array_equal(T.pareto_mask(v, senses), brute)


def test_pareto_duplicates_all_kept():
    v = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(T.pareto_mask(v, ["max"] * 3), [True, True, False, True])
    np.testing.assert_array_equal(T.pareto_mask(v[:, :2], ["max"] * 2), [True, True, False, True])


@pytest.mark.parametrize("k", [2, 3])
def test_pareto_bruteforce_n2000(k):
    rng = np.random.default_rng(10 + k)
    v = rng.normal(size=(2000, k))
    v[:, 1] = -v[:, 0] + 0.3 * v[:, 1]  # anti-correlated: a larger frontier
    senses = ["max"] + ["min"] * (k - 1)
    np.testing.assert_array_equal(T.pareto_mask(v, senses), brute_pareto(v, senses))


def test_pareto_million_by_three():
    rng = np.random.default_rng(0)
    n = 10**6
    v = rng.random((n, 3))
    mask = T.pareto_mask(v, MIXED)
    y = np.where(np.array([s == "max" for s in MIXED]), -v, v)
    front = y[mask]
    assert 10 < len(front) < 1000
    # Soundness: no returned point is dominated by a random sample of rows, nor by another returned point.
    sample = y[rng.choice(n, 3000, replace=False)]
    assert not np.any(dominated_by_any(front, np.concatenate([sample, front])))
    # Completeness: every sampled rejected row is dominated by some returned point.
    rejected = np.flatnonzero(~mask)
    rej = y[rng.choice(rejected, 3000, replace=False)]
    assert np.all(dominated_by_any(rej, front))
    # Order independence.
    perm = rng.permutation(n)
    np.testing.assert_array_equal(T.pareto_mask(v[perm], MIXED), mask[perm])


def test_paretoset_agrees_if_installed():
    paretoset = pytest.importorskip("paretoset")
    rng = np.random.default_rng(3)
    for k in (2, 3, 4):
        for v in (rng.integers(0, 5, size=(300, k)).astype(float), rng.random((500, k))):
            senses = list(rng.choice(["max", "min"], size=k))
            theirs = paretoset.paretoset(v, sense=senses, distinct=False)
            np.testing.assert_array_equal(T.pareto_mask(v, senses), theirs)


# Hand-worked table (METHODS B: AUC max w=.5, cMAP min w=.25, F1 min w=.25).
NAMES = ["A", "B", "C", "D", "E"]
TABLE = np.array([
    [0.9, 60.0, 0.5],
    [0.8, 40.0, 0.3],
    [0.6, 20.0, 0.1],
    [0.8, 40.0, 0.3],  # duplicate of B
    [0.6, 60.0, 0.5],  # dominated by A
])
OBJS = [T.Objective("auc", "max", 0.5), T.Objective("cmap", "min", 0.25), T.Objective("f1", "min", 0.25)]


def test_hand_worked_table():
    u = T.normalise(TABLE, MIXED)
    np.testing.assert_allclose(u, [[1, 0, 0], [2 / 3, .5, .5], [0, 1, 1], [2 / 3, .5, .5], [0, 0, 0]], atol=1e-12)
    d = T.distance_to_ideal(u)
    np.testing.assert_allclose(d, [np.sqrt(2), np.sqrt(11 / 18), 1.0, np.sqrt(11 / 18), np.sqrt(3)])
    w = T.weighted_score(u, [0.5, 0.25, 0.25])
    np.testing.assert_allclose(w, [0.5, 7 / 12, 0.5, 7 / 12, 0.0])
    res = T.analyse(NAMES, TABLE, OBJS)
    np.testing.assert_allclose(res["rank_distance"], [4, 1.5, 3, 1.5, 5])
    np.testing.assert_allclose(res["rank_weighted"], [3.5, 1.5, 3.5, 1.5, 5])  # A and C tie at 0.5
    np.testing.assert_allclose(res["combined_rank"], [3.75, 1.5, 3.25, 1.5, 5])
    np.testing.assert_array_equal(res["pareto"], [True, True, True, True, False])
    s = res["summary"]
    assert s["pareto"] == ["A", "B", "C", "D"]
    assert s["sweet_spot"] == "B"  # ties with D at 1.5 -> first
    assert s["excluded_nan"] == []
    # Same result from the string spec form.
    res2 = T.analyse(NAMES, TABLE, ["auc:max:0.5", "cmap:min:0.25", "f1:min:0.25"])
    assert res2["summary"] == s


def test_average_ranks_match_definition():
    x = np.array([3.0, 1.0, 3.0, 2.0, 3.0])
    np.testing.assert_allclose(T.average_ranks(x, descending=False), [4, 1, 4, 2, 4])
    np.testing.assert_allclose(T.average_ranks(x, descending=True), [2, 5, 2, 4, 2])


def test_constant_objective():
    v = np.array([[0.9, 5.0], [0.7, 5.0], [0.8, 5.0]])
    u = T.normalise(v, ["max", "min"])
    np.testing.assert_allclose(u, [[1, 1], [0, 1], [0.5, 1]])
    np.testing.assert_allclose(T.distance_to_ideal(u), [0, 1, 0.5])
    np.testing.assert_array_equal(T.pareto_mask(v, ["max", "min"]), [True, False, False])


def test_nan_row_excluded_and_reported():
    names = NAMES + ["F"]
    table = np.concatenate([TABLE, [[0.99, np.nan, 0.0]]])
    res = T.analyse(names, table, OBJS)
    ref = T.analyse(NAMES, TABLE, OBJS)
    assert res["summary"]["excluded_nan"] == ["F"]
    for key in ("distance", "weighted", "combined_rank"):
        np.testing.assert_allclose(res[key][:5], ref[key])
        assert np.isnan(res[key][5])
    assert not res["pareto"][5]
    assert {k: v for k, v in res["summary"].items() if k != "excluded_nan"} == \
        {k: v for k, v in ref["summary"].items() if k != "excluded_nan"}


def test_hypervolume_hand_2d_and_3d():
    # Columns already span [0, 1]; the second is "min", so its normalised value is 1 - raw.
    v2 = np.array([[0.0, 1.0], [1.0, 0.5], [0.5, 0.0], [0.25, 0.75]])
    assert T.hypervolume(v2, ["max", "min"]) == pytest.approx(1 * .5 + .5 * 1 - .5 * .5)
    v3 = np.array([[0, 0, 0], [1, .5, .5], [.5, 1, .5], [.5, .5, 1]], dtype=float)
    # Inclusion-exclusion: 3 * 0.25 - 3 * 0.125 + 0.125.
    assert T.hypervolume(v3, ["max"] * 3) == pytest.approx(0.5)
    assert T.hypervolume(v3, ["max"] * 3, reference=[.25, .25, .25]) == pytest.approx(
        3 * .75 * .25 * .25 - 3 * .25 ** 3 + .25 ** 3)


def inclusion_exclusion_hv(p):
    total = 0.0
    for r in range(1, len(p) + 1):
        for sub in itertools.combinations(range(len(p)), r):
            total += (-1) ** (r + 1) * np.prod(p[list(sub)].min(axis=0))
    return total


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_random_vs_inclusion_exclusion(k):
    rng = np.random.default_rng(20 + k)
    for _ in range(5):
        v = rng.random((7, k))
        v[0] = 0.0
        for j in range(k):  # make every column span exactly [0, 1] so normalisation is the identity
            v[1 + j % 6, j] = 1.0
        assert T.hypervolume(v, ["max"] * k) == pytest.approx(inclusion_exclusion_hv(v[1:]))


def grid_cell_hv(p):
    """Exact union volume by coordinate compression: a grid cell is covered iff some point reaches its top."""
    axes = [np.unique(np.r_[0.0, p[:, j]]) for j in range(p.shape[1])]
    total = 0.0
    for cell in itertools.product(*[range(1, len(a)) for a in axes]):
        top = np.array([a[i] for a, i in zip(axes, cell)])
        if np.any(np.all(p >= top, axis=1)):
            total += np.prod([a[i] - a[i - 1] for a, i in zip(axes, cell)])
    return total


def test_hypervolume_3d_sweep_vs_grid_cells_with_ties():
    rng = np.random.default_rng(7)
    for m in (1, 5, 40):
        p = rng.integers(1, 7, size=(m, 3)) / 6.0  # coarse values: many ties in every coordinate
        assert T._hv_max(p) == pytest.approx(grid_cell_hv(p))


def test_knee_2d_hand():
    v = np.array([[0.0, 1.0], [1.0, 0.0], [0.3, 0.8], [0.6, 0.6], [0.2, 0.2]])
    # Chord x + y = 1; signed distances: (0.6,0.6) -> 0.2/sqrt2, (0.3,0.8) -> 0.1/sqrt2.
    assert T.knee_point(v, ["max", "max"]) == 3
    # Same geometry with the second objective minimised.
    assert T.knee_point(np.c_[v[:, 0], 1 - v[:, 1]], ["max", "min"]) == 3
    assert T.analyse(list("abcde"), v, ["x:max", "y:max"])["summary"]["knee"] == "d"


def test_knee_3d_plane():
    v = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [.5, .5, .5], [.4, .4, .4], [0, 0, 0]], dtype=float)
    assert T.knee_point(v, ["max"] * 3) == 3


def test_parse_objective():
    assert T.parse_objective("auc:max") == T.Objective("auc", "max", 1.0)
    assert T.parse_objective("cmap:min:0.25") == T.Objective("cmap", "min", 0.25)
    with pytest.raises(ValueError, match="biggest"):
        T.parse_objective("auc:biggest")
    with pytest.raises(ValueError):
        T.parse_objective("auc")


def test_validation_errors():
    with pytest.raises(ValueError, match="weights"):
        T.weighted_score(np.ones((2, 3)), [1.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        T.analyse([], np.zeros((0, 3)), OBJS)
    with pytest.raises(ValueError, match="names"):
        T.analyse(["a"], TABLE, OBJS)
    with pytest.raises(ValueError, match="objectives"):
        T.analyse(NAMES, TABLE, OBJS[:2])
    with pytest.raises(ValueError, match="inf"):
        T.analyse(NAMES, np.where(TABLE == 0.1, np.inf, TABLE), OBJS)
    with pytest.raises(ValueError, match="NaN"):
        T.analyse(["a"], [[np.nan, 1.0, 1.0]], OBJS)
    with pytest.raises(ValueError, match="senses"):
        T.pareto_mask(TABLE, ["max", "min"])
    with pytest.raises(ValueError, match="non-finite"):
        T.normalise([[np.nan, 1.0]], ["max", "min"])
    with pytest.raises(ValueError, match="sense"):
        T.Objective("x", "up")
