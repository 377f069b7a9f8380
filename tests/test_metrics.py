"""anonvid.metrics against scikit-learn (the oracle) and hand-worked cases."""
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from anonvid import metrics

SEEDS = [0, 1, 2, 3]


def _binary(rng, n, rounded=False):
    scores = rng.normal(size=n)
    labels = (rng.random(n) < 0.4).astype(int)
    labels[:2] = [0, 1]  # both classes present
    if rounded:
        scores = np.round(rng.random(n), 1)  # heavy ties: only 11 distinct values
    return scores, labels


# ---------------------------------------------------------------------------------------------- top-1

@pytest.mark.parametrize("seed", SEEDS)
def test_top1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(50, 7))
    labels = rng.integers(0, 7, size=50)
    expected = skm.accuracy_score(labels, logits.argmax(1))
    assert metrics.top1_accuracy(logits, labels) == pytest.approx(expected)


def test_top1_all_correct_all_wrong_and_ties():
    logits = np.eye(4)
    assert metrics.top1_accuracy(logits, [0, 1, 2, 3]) == 1.0
    assert metrics.top1_accuracy(logits, [1, 2, 3, 0]) == 0.0
    # A tied row goes to the lowest index.
    assert metrics.top1_accuracy([[1.0, 1.0, 0.0]], [0]) == 1.0
    assert metrics.top1_accuracy([[1.0, 1.0, 0.0]], [1]) == 0.0


def test_top1_accepts_jax_arrays():
    import jax.numpy as jnp
    assert metrics.top1_accuracy(jnp.eye(3), jnp.arange(3)) == 1.0


def test_video_top1_hand_worked():
    # Video "a" (label 0): clip 1 strongly class 1, clips 2-3 mildly class 0.
    #   softmax([0, 4]) = [0.018, 0.982]; softmax([1, 0]) = [0.731, 0.269] twice
    #   mean = [0.493, 0.507] → class 1: wrong, although 2 of its 3 clips are right.
    # Video "b" (label 1): one clip [0, 1] → class 1: right.
    # Video "c" (label 2), clips not contiguous: [3,0,0] and [0,0,3] → mean tied between 0 and 2 → 0: wrong.
    logits = np.array([[0., 4., -50.], [1., 0., -50.], [0., 1., -50.], [3., 0., 0.], [1., 0., -50.],
                       [0., 0., 3.]])
    vids = np.array(["a", "a", "b", "c", "a", "c"])
    labels = np.array([0, 0, 1, 2, 0, 2])
    assert metrics.video_top1_accuracy(logits, vids, labels) == pytest.approx(1 / 3)
    # Clip level: rows 2, 3, 5, 6 are right.
    assert metrics.top1_accuracy(logits, labels) == pytest.approx(4 / 6)
    ids, probs = metrics.video_mean_probs(logits, vids)
    assert ids.tolist() == ["a", "b", "c"]
    e = np.exp([0., 4.]) / np.exp([0., 4.]).sum()
    f = np.exp([1., 0.]) / np.exp([1., 0.]).sum()
    np.testing.assert_allclose(probs[0, :2], (e + 2 * f) / 3, atol=1e-12)


def test_video_top1_from_probs_and_single_clip_videos_equal_clip_level():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=20)
    labels = rng.integers(0, 5, size=20)
    expected = skm.accuracy_score(labels, probs.argmax(1))
    got = metrics.video_top1_accuracy(probs, np.arange(20), labels, from_logits=False)
    assert got == pytest.approx(expected)


def test_video_top1_rejects_mixed_labels():
    with pytest.raises(ValueError, match="different labels"):
        metrics.video_top1_accuracy(np.zeros((2, 3)), [7, 7], [0, 1])


# ---------------------------------------------------------------------------------------------- AP / AUC

@pytest.mark.parametrize("rounded", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_ap_and_auc_match_sklearn(seed, rounded):
    rng = np.random.default_rng(seed)
    scores, labels = _binary(rng, 200, rounded)
    assert metrics.average_precision(scores, labels) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12)
    assert metrics.roc_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    both = metrics.frame_auc_and_ap(scores, labels.astype(bool))
    assert both["auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert both["ap"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)


def test_ap_auc_hand_worked_with_a_tie():
    # Scores 0.9(+) 0.5(+) 0.5(-) 0.1(-): the tie at 0.5 enters as one threshold.
    # AP = 0.5 * 1 + 0.5 * (2/3) = 5/6.  AUC: pairs (+,-) = 4; wins 0.9>0.5, 0.9>0.1, 0.5>0.1, tie 0.5 = 3.5/4.
    s, y = [0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0]
    assert metrics.average_precision(s, y) == pytest.approx(5 / 6)
    assert metrics.roc_auc(s, y) == pytest.approx(3.5 / 4)
    assert metrics.roc_auc([0.1, 0.2, 0.3], [0, 1, 1]) == 1.0
    assert metrics.roc_auc([0.1, 0.2, 0.3], [1, 0, 0]) == 0.0


def test_ap_without_positives_matches_sklearn_and_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.average_precision_score([0, 0, 0], [0.1, 0.4, 0.3])
    with pytest.warns(UserWarning, match="no positive"):
        assert metrics.average_precision([0.1, 0.4, 0.3], [0, 0, 0]) == expected == 0.0
    assert metrics.average_precision([0.1, 0.4, 0.3], [1, 1, 1]) == 1.0


def test_auc_one_class_raises():
    with pytest.raises(ValueError, match="only one class"):
        metrics.roc_auc([0.1, 0.2], [1, 1])


# ---------------------------------------------------------------------------------------------- multi-label

@pytest.mark.parametrize("rounded", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_cmap_and_macro_f1_match_sklearn(seed, rounded):
    rng = np.random.default_rng(seed)
    probs = rng.random((120, 5))
    if rounded:
        probs = np.round(probs, 1)  # ties, and values exactly at the 0.5 threshold
    labels = (rng.random((120, 5)) < probs * 0.8 + 0.1).astype(int)
    assert metrics.cmap(probs, labels) == pytest.approx(
        100 * skm.average_precision_score(labels, probs, average="macro"), abs=1e-10)
    assert metrics.macro_f1(probs, labels) == pytest.approx(
        skm.f1_score(labels, (probs >= 0.5).astype(int), average="macro"), abs=1e-12)
    assert metrics.macro_f1(probs, labels, threshold=0.3) == pytest.approx(
        skm.f1_score(labels, (probs >= 0.3).astype(int), average="macro"), abs=1e-12)


def test_constant_attributes_follow_sklearn():
    rng = np.random.default_rng(5)
    probs = rng.random((30, 3))
    labels = (rng.random((30, 3)) < 0.5).astype(int)
    labels[:, 0] = 0  # never present
    labels[:, 2] = 1  # always present
    probs[:, 0] = 0.2  # never predicted either: F1 0/0 → 0.0 in sklearn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap_oracle = 100 * skm.average_precision_score(labels, probs, average="macro")
        f1_oracle = skm.f1_score(labels, (probs >= 0.5).astype(int), average="macro")
    with pytest.warns(UserWarning, match="attribute 0"):
        got = metrics.cmap(probs, labels)
    assert got == pytest.approx(ap_oracle, abs=1e-10)
    assert metrics.macro_f1(probs, labels) == pytest.approx(f1_oracle, abs=1e-12)


def test_all_correct_all_wrong_multilabel():
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert metrics.cmap(labels * 0.9, labels) == pytest.approx(100.0)
    assert metrics.macro_f1(labels * 0.9, labels) == 1.0
    assert metrics.macro_f1(1 - labels, labels) == 0.0
    assert metrics.cmap(1 - labels, labels) == pytest.approx(
        100 * skm.average_precision_score(labels, 1 - labels, average="macro"))


def test_one_dimensional_is_one_attribute():
    s, y = np.array([0.2, 0.7, 0.6]), np.array([0, 1, 0])
    assert metrics.cmap(s, y) == pytest.approx(100 * skm.average_precision_score(y, s))
    assert metrics.macro_f1(s, y) == pytest.approx(skm.f1_score(y, s >= 0.5))


# ---------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, match", [
    (lambda: metrics.top1_accuracy(np.zeros(3), [0, 1, 2]), "dimension"),
    (lambda: metrics.top1_accuracy(np.zeros((3, 2)), [0, 1]), "shape"),
    (lambda: metrics.top1_accuracy(np.zeros((2, 2)), [0, 2]), r"\[0, 2\)"),
    (lambda: metrics.top1_accuracy(np.zeros((2, 2)), [0.5, 1]), "integer"),
    (lambda: metrics.top1_accuracy([[np.nan, 0.0]], [0]), "NaN"),
    (lambda: metrics.video_top1_accuracy(np.zeros((3, 2)), [0, 1], [0, 0, 0]), "video_ids"),
    (lambda: metrics.average_precision([0.1, 0.2], [0, 2]), "only 0 and 1"),
    (lambda: metrics.average_precision([0.1, 0.2], [0, 1, 1]), "shape"),
    (lambda: metrics.average_precision([], []), "empty"),
    (lambda: metrics.roc_auc([0.1, np.inf], [0, 1]), "NaN/inf"),
    (lambda: metrics.roc_auc(np.array(["a", "b"]), [0, 1]), "numeric"),
    (lambda: metrics.cmap(np.zeros((2, 3)), np.zeros((2, 2))), "shape"),
    (lambda: metrics.macro_f1(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), "dimension"),
    (lambda: metrics.macro_f1(np.zeros((2, 2)), np.zeros((2, 2)), threshold=float("nan")), "threshold"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
