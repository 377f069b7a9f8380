"""Evaluation metrics with scikit-learn's definitions, in vectorised numpy.

Every function takes numpy or JAX arrays (converted with `np.asarray`, so device arrays are copied to the host
once) and returns a Python float. The definitions are those of scikit-learn 1.9.1, which the tests use as the
oracle; scikit-learn itself is not imported here so that evaluation does not depend on it.

Conventions, and where they come from:
- `top1_accuracy`: argmax per row; ties go to the lowest class index (as `np.argmax`).
- `video_top1_accuracy`: softmax probabilities averaged over the clips of each video, then argmax.
- `average_precision`: `sklearn.metrics.average_precision_score` — the step-wise sum
  `sum_n (R_n - R_{n-1}) P_n` over *distinct* score thresholds (tied scores enter together), no interpolation.
  With no positive label scikit-learn 1.9.1 returns 0.0 and warns; so does this function.
- `cmap`: 100 x the mean of per-attribute AP, i.e. `100 * average_precision_score(Y, S, average="macro")`.
  scikit-learn keeps constant attributes in the mean: an all-negative attribute contributes AP 0, an
  all-positive one AP 1. We match that (and warn about the all-negative ones, which drag the mean down).
- `macro_f1`: predictions are `prob >= threshold`; per-attribute F1 = 2TP / (2TP + FP + FN), and an attribute
  with no positive label and no positive prediction gets F1 0.0 (scikit-learn's default `zero_division="warn"`
  also yields 0.0); then the unweighted mean over attributes (`f1_score(average="macro")`).
- `roc_auc`: `sklearn.metrics.roc_auc_score` — the trapezoidal area under the ROC curve, computed here as the
  equal Mann-Whitney statistic with average ranks for ties. **Deviation:** scikit-learn 1.9.1 returns NaN with a
  warning when only one class is present; we raise `ValueError` instead, because a NaN AUC silently poisons
  averages over videos or seeds.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = [
    "top1_accuracy",
    "video_mean_probs",
    "video_top1_accuracy",
    "average_precision",
    "cmap",
    "macro_f1",
    "roc_auc",
    "frame_auc_and_ap",
]


# ----------------------------------------------------------------------------------------------------------
# Input validation.


def _scores(x: Any, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """Returns `x` as a finite float64 array of the allowed rank(s), or raises ValueError."""
    arr = np.asarray(x)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimension(s), got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); metrics need at least one sample")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} holds {bad} NaN/inf value(s); check the model outputs before scoring")
    return arr


def _binary_labels(y: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Returns `y` as a bool array of `shape` holding only {0, 1}, or raises ValueError."""
    arr = np.asarray(y)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} to match the scores, got {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be 0/1 (int, float or bool), got dtype {arr.dtype}")
    is_one = arr == 1
    if not np.all(is_one | (arr == 0)):
        bad = np.unique(arr[~(is_one | (arr == 0))])[:5]
        raise ValueError(f"{name} must contain only 0 and 1, found e.g. {bad.tolist()}")
    return is_one


def _class_labels(y: Any, name: str, n: int, num_classes: int) -> np.ndarray:
    """Returns integer class ids of shape (n,) in [0, num_classes), or raises ValueError."""
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) — one class id per row of scores — got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for {num_classes} score columns, "
            f"got range [{arr.min()}, {arr.max()}]")
    return arr


def _as_columns(scores: Any, labels: Any, score_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validates (N, A) or (N,) scores with matching 0/1 labels; returns both as (N, A)."""
    s = _scores(scores, score_name, (1, 2))
    y = _binary_labels(labels, "labels", s.shape)
    if s.ndim == 1:
        s, y = s[:, None], y[:, None]
    return s, y


# ----------------------------------------------------------------------------------------------------------
# Classification.


def top1_accuracy(logits_or_probs: Any, labels: Any) -> float:
    """Clip-level top-1 accuracy.

    Args:
      logits_or_probs: (N, C) scores; any monotone transform (logits, probabilities) gives the same answer.
      labels: (N,) integer class ids in [0, C).

    Returns:
      The fraction of rows whose argmax (lowest index on ties) equals the label, in [0, 1].
    """
    s = _scores(logits_or_probs, "logits_or_probs", 2)
    y = _class_labels(labels, "labels", s.shape[0], s.shape[1])
    return float(np.mean(np.argmax(s, axis=1) == y))


def _softmax(logits: np.ndarray) -> np.ndarray:
    # Subtracting the row max keeps exp() from overflowing for large logits; it cancels in the ratio.
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _group_means(probs: np.ndarray, ids: np.ndarray):
    """Unique ids, first index, inverse map and per-id mean rows of `probs` (grouped by `ids`)."""
    unique, first, inverse, counts = np.unique(ids, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # A stable sort groups the clips by video so that reduceat sums each contiguous block in one pass
    # (np.add.at is unbuffered and an order of magnitude slower at 10^6 clips).
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sums = np.add.reduceat(probs[order], starts, axis=0)
    return unique, first, inverse, sums / counts[:, None]


def _video_ids(video_ids: Any, n: int) -> np.ndarray:
    ids = np.asarray(video_ids)
    if ids.shape != (n,):
        raise ValueError(f"video_ids must have shape ({n},) — one per clip — got {ids.shape}")
    return ids


def video_mean_probs(clip_scores: Any, video_ids: Any, *, from_logits: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Averages per-clip class probabilities over the clips of each video.

    Args:
      clip_scores: (N, C) per-clip logits (or probabilities if `from_logits=False`).
      video_ids: (N,) ids (ints or strings) naming each clip's video; clips of a video need not be contiguous.
      from_logits: apply a softmax to each row first; set False when `clip_scores` already are probabilities.

    Returns:
      `(ids, probs)`: the sorted unique video ids (V,) and their mean probabilities (V, C).
    """
    s = _scores(clip_scores, "clip_scores", 2)
    ids = _video_ids(video_ids, s.shape[0])
    unique, _, _, probs = _group_means(_softmax(s) if from_logits else s, ids)
    return unique, probs


def video_top1_accuracy(clip_logits: Any, video_ids: Any, labels: Any, *, from_logits: bool = True) -> float:
    """Video-level top-1 accuracy: softmax probabilities averaged over each video's clips, then argmax.

    Args:
      clip_logits: (N, C) per-clip logits (or probabilities if `from_logits=False`).
      video_ids: (N,) id of the video each clip was cut from; clips of one video need not be contiguous.
      labels: (N,) integer class id of each clip; all clips of one video must carry the same label.
      from_logits: apply a softmax to each row before averaging.

    Returns:
      The fraction of videos whose averaged-probability argmax (lowest index on ties) equals their label.

    Raises:
      ValueError: on bad shapes, non-finite scores, out-of-range labels, or a video whose clips disagree on
        the label.
    """
    s = _scores(clip_logits, "clip_logits", 2)
    y = _class_labels(labels, "labels", s.shape[0], s.shape[1])
    ids = _video_ids(video_ids, s.shape[0])
    unique, first, inverse, probs = _group_means(_softmax(s) if from_logits else s, ids)
    video_label = y[first]
    mismatch = y != video_label[inverse]
    if np.any(mismatch):
        bad = unique[inverse[np.flatnonzero(mismatch)[0]]]
        raise ValueError(f"clips of video {bad!r} carry different labels; each video needs one label "
                         "(check the clip → video mapping)")
    return float(np.mean(np.argmax(probs, axis=1) == video_label))


# ----------------------------------------------------------------------------------------------------------
# Ranking metrics for one binary target.


def _ranked_counts(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True/false positives at each distinct threshold, from the highest score down.

    Returns:
      `(tps, fps)`: cumulative counts taken at the last sample of each block of tied scores, so that tied
      samples enter the ranking together (sklearn's `_binary_clf_curve`).
    """
    order = np.argsort(scores, kind="mergesort")[::-1]
    s = scores[order]
    y = positive[order]
    # Indices where the next score differs, plus the end: one entry per distinct threshold.
    last_of_block = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y, dtype=np.int64)[last_of_block]
    fps = (last_of_block + 1) - tps
    return tps, fps


def _average_precision_1d(scores: np.ndarray, positive: np.ndarray, name: str = "labels") -> float:
    tps, fps = _ranked_counts(scores, positive)
    n_pos = tps[-1]
    if n_pos == 0:
        warnings.warn(f"average_precision: {name} has no positive sample; AP is set to 0.0 "
                      "(scikit-learn 1.9.1 does the same)", UserWarning, stacklevel=3)
        return 0.0
    precision = tps / (tps + fps)
    recall = tps / n_pos
    # Step-wise integral: each recall increment is weighted by the precision reached at that threshold.
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def average_precision(scores: Any, labels: Any) -> float:
    """Average precision of one binary target, as `sklearn.metrics.average_precision_score`.

    Args:
      scores: (N,) real scores, higher = more likely positive.
      labels: (N,) 0/1 or bool ground truth.

    Returns:
      AP in [0, 1]. With no positive label: 0.0 and a UserWarning (scikit-learn 1.9.1's behaviour).
    """
    s = _scores(scores, "scores", 1)
    y = _binary_labels(labels, "labels", s.shape)
    return _average_precision_1d(s, y)


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve of one binary target, as `sklearn.metrics.roc_auc_score`.

    Ties are handled as the trapezoidal ROC does: equal to the Mann-Whitney U statistic with average ranks,
    `(sum of positive ranks - P(P+1)/2) / (P N)`.

    Args:
      scores: (N,) real scores, higher = more likely positive.
      labels: (N,) 0/1 or bool ground truth.

    Returns:
      AUC in [0, 1].

    Raises:
      ValueError: if `labels` holds only one class (scikit-learn returns NaN there; see the module docstring).
    """
    s = _scores(scores, "scores", 1)
    y = _binary_labels(labels, "labels", s.shape)
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"roc_auc is undefined when labels hold only one class ({n_pos} positive, {n_neg} negative); "
            "score a set that contains both classes")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # 1-based average rank of each distinct value: the mean of the ranks its tied block occupies.
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0
    rank_sum = float(np.sum(avg_rank[inverse.reshape(-1)][y]))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def frame_auc_and_ap(scores: Any, labels: Any) -> dict[str, float]:
    """Frame-level ROC-AUC and AP of an anomaly score (higher = more anomalous), validated once.

    Args:
      scores: (F,) per-frame anomaly scores, all test videos concatenated.
      labels: (F,) 0/1 per-frame anomaly ground truth.

    Returns:
      `{"auc": roc_auc, "ap": average_precision}`, both in [0, 1].
    """
    s = _scores(scores, "scores", 1)
    y = _binary_labels(labels, "labels", s.shape)
    return {"auc": roc_auc(s, y), "ap": _average_precision_1d(s, y)}


# ----------------------------------------------------------------------------------------------------------
# Multi-label (privacy attributes).


def cmap(scores: Any, labels: Any) -> float:
    """Class-mean average precision in percent: `100 * average_precision_score(labels, scores, "macro")`.

    Args:
      scores: (N, A) per-attribute scores (or (N,) for one attribute).
      labels: same shape, 0/1 ground truth.

    Returns:
      cMAP in [0, 100]. A constant attribute stays in the mean as scikit-learn does: all-negative → AP 0 (with
      a warning naming the attribute), all-positive → AP 1.
    """
    s, y = _as_columns(scores, labels, "scores")
    aps = [_average_precision_1d(s[:, a], y[:, a], name=f"attribute {a}") for a in range(s.shape[1])]
    return 100.0 * float(np.mean(aps))


def macro_f1(probs: Any, labels: Any, threshold: float = 0.5) -> float:
    """Macro-averaged F1 over attributes of thresholded predictions, as `f1_score(average="macro")`.

    Args:
      probs: (N, A) per-attribute probabilities (or (N,) for one attribute).
      labels: same shape, 0/1 ground truth.
      threshold: an attribute is predicted present when `prob >= threshold`.

    Returns:
      The unweighted mean of per-attribute F1 = 2TP / (2TP + FP + FN), in [0, 1]; an attribute with no
      positive label and no positive prediction scores 0.0 (scikit-learn's default `zero_division`).
    """
    p, y = _as_columns(probs, labels, "probs")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    pred = p >= threshold
    tp = np.count_nonzero(pred & y, axis=0)
    fp = np.count_nonzero(pred & ~y, axis=0)
    fn = np.count_nonzero(~pred & y, axis=0)
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(np.mean(f1))
