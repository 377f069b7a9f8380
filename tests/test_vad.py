"""VAD trainer and scoring (METHODS.md B): grey conversion against PIL, window costs against numpy, per-video
min-max normalisation and last-frame assignment worked by hand, pooled AUC/AP against scikit-learn, input
errors, and a tiny end-to-end run on the synthetic surveillance videos that trains, lowers the loss, is killed
after its first checkpoint and resumes to exactly the uninterrupted run's parameters, and scores the test split."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from anonvid import checkpointing
from anonvid.data.synthetic_surveillance import surveillance_split
from anonvid.models.registry import build_model
from anonvid.trainers import core, vad

# ----------------------------------------------------------------------------------------------------------
# Inputs.


def test_to_grey_matches_pil():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 17, 23, 3), dtype=np.uint8)
    rgb[0, 0, :4] = [[255, 255, 255], [0, 0, 0], [255, 0, 0], [1, 2, 3]]
    ref = np.stack([np.asarray(Image.fromarray(f).convert("L")) for f in rgb])[..., None]
    np.testing.assert_array_equal(vad.to_grey(rgb), ref)
    grey = rgb[..., :1]
    assert vad.to_grey(grey) is grey


def test_prepare_videos_and_labels_errors():
    ok = np.zeros((12, 16, 16, 3), np.uint8)
    out = vad.prepare_videos([ok, ok[:10, ..., :1]], name="train", window=10)
    assert [v.shape for v in out] == [(12, 16, 16, 1), (10, 16, 16, 1)]
    with pytest.raises(ValueError, match="train video 1 has 5 frames, fewer than the 10-frame window.*cfg.window"):
        vad.prepare_videos([ok, ok[:5]], name="train", window=10)
    with pytest.raises(ValueError, match="test video 0 must be uint8.*float32"):
        vad.prepare_videos(np.zeros((1, 12, 16, 16, 3), np.float32), name="test", window=10)
    with pytest.raises(ValueError, match="C 1 \\(grey\\) or 3"):
        vad.prepare_videos([np.zeros((12, 16, 16, 2), np.uint8)], name="test", window=10)
    with pytest.raises(ValueError, match="video 1 has frames of 8×16"):
        vad.prepare_videos([ok, ok[:, :8]], name="test", window=10)
    with pytest.raises(ValueError, match=r"\(V, F, H, W, C\)"):
        vad.prepare_videos(ok, name="test", window=10)
    with pytest.raises(ValueError, match="no videos"):
        vad.prepare_videos([], name="test", window=10)
    with pytest.raises(ValueError, match="2 label rows for 1 test videos"):
        vad.prepare_labels(np.zeros((2, 12)), [ok])
    with pytest.raises(ValueError, match="shape \\(11,\\); the video has 12 frames"):
        vad.prepare_labels([np.zeros(11)], [ok])
    with pytest.raises(ValueError, match="0/1 frame labels"):
        vad.prepare_labels([np.full(12, 2)], [ok])


def test_window_source_order_and_stride():
    videos = [np.arange(12, dtype=np.uint8).reshape(12, 1, 1, 1), np.arange(100, 111, dtype=np.uint8).reshape(11, 1, 1, 1)]
    src = vad.WindowSource(videos, 4, 3)
    # starts 0, 3, 6 (video 0, 12 frames) and 0, 3, 6 (video 1, 11 frames: 7 + 4 > 11 is cut)
    assert len(src) == 6
    np.testing.assert_array_equal(src[1]["clip"].ravel(), [3, 4, 5, 6])
    np.testing.assert_array_equal(src[5]["clip"].ravel(), [106, 107, 108, 109])


# ----------------------------------------------------------------------------------------------------------
# Scoring, worked by hand and against numpy / scikit-learn.


def test_window_costs_against_numpy_reference():
    """A stand-in 'model' reconstructing x as 0.5·x: cost = ‖x − 0.5x‖₂ over each window, stride 1, videos of
    different lengths cut into padded batches of 4; compiled once."""
    rng = np.random.default_rng(1)
    videos = [rng.integers(0, 256, (f, 8, 8, 1), dtype=np.uint8) for f in (12, 10, 15)]
    traces = []

    def cost(state, batch):
        traces.append(1)
        x = batch["clip"].astype(jnp.float32) / 255.0
        return jnp.sqrt(jnp.sum((x - state * x) ** 2, axis=(1, 2, 3, 4)))

    costs = vad.window_costs(jax.jit(cost), jnp.float32(0.5), videos, window=10, batch_size=4)
    assert len(traces) == 1
    assert [len(c) for c in costs] == [3, 1, 6]  # 10 windows → 3 batches of 4, the last padded by 2
    for v, c in zip(videos, costs):
        x = v.astype(np.float64) / 255.0
        ref = [np.linalg.norm(x[s:s + 10] - 0.5 * x[s:s + 10]) for s in range(len(v) - 9)]
        np.testing.assert_allclose(c, ref, rtol=1e-5)
    with pytest.raises(FloatingPointError, match="NaN"):
        vad.window_costs(jax.jit(cost), jnp.float32(np.nan), videos[:1], window=10, batch_size=4)


def test_frame_scores_minmax_per_video_last_frame_and_constant_video():
    with np.errstate(all="raise"):  # the constant video must not divide by zero
        scores = vad.frame_scores([np.array([1.0, 3.0, 2.0]), np.array([2.0, 2.0]), np.array([5.0])], window=3)
    np.testing.assert_array_equal(scores[0], [np.nan, np.nan, 0.0, 1.0, 0.5])  # window [s, s+3) → frame s+2
    np.testing.assert_array_equal(scores[1], [np.nan, np.nan, 0.0, 0.0])
    np.testing.assert_array_equal(scores[2], [np.nan, np.nan, 0.0])
    # min-max is per video: the same costs scaled by 10 in another video give the same scores
    a, b = vad.frame_scores([np.array([1.0, 4.0, 2.0]), np.array([10.0, 40.0, 20.0])], window=1)
    np.testing.assert_allclose(a, [0.0, 1.0, 1 / 3])
    np.testing.assert_allclose(a, b)


def test_pooled_metrics_equal_sklearn_on_scored_frames():
    rng = np.random.default_rng(2)
    window = 4
    costs = [rng.random(n) for n in (20, 13, 30)]
    scores = vad.frame_scores(costs, window)
    labels = [(rng.random(len(s)) < 0.3).astype(np.uint8) for s in scores]
    labels[0][:window - 1] = 1  # anomalies in the unscored head frames do not count
    result = vad.pooled_metrics(scores, labels)
    keep = [~np.isnan(s) for s in scores]
    s_all = np.concatenate([s[k] for s, k in zip(scores, keep)])
    y_all = np.concatenate([y[k] for y, k in zip(labels, keep)])
    assert result["auc"] == pytest.approx(roc_auc_score(y_all, s_all), abs=1e-12)
    assert result["ap"] == pytest.approx(average_precision_score(y_all, s_all), abs=1e-12)
    assert result["scored_frames"] == 20 + 13 + 30 == len(s_all)  # one scored frame per window
    assert result["excluded_frames"] == 3 * (window - 1)
    assert result["anomalous_frames"] == int(y_all.sum())
    assert result["per_video"][1] == {"frames": 16, "scored": 13, "excluded": 3,
                                      "anomalous_scored": int(labels[1][3:].sum())}
    json.dumps(result)
    normal = [np.zeros(len(s), np.uint8) for s in scores]
    normal[0][:window - 1] = 1  # only unscored frames are anomalous
    with pytest.raises(ValueError, match="all normal"):
        vad.pooled_metrics(scores, normal)


def test_default_config_smoke_and_overrides():
    cfg = vad.default_config()
    assert (cfg.model.name, tuple(cfg.model.kwargs.widths), tuple(cfg.model.kwargs.lstm)) == \
        ("stae", (128, 64), (64, 32, 64))
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.batch_size, cfg.epochs, cfg.window) == \
        (1e-4, 1e-5, 4, 50, 10)
    smoke = vad.default_config(smoke=True, epochs=3, **{"model.kwargs.widths": (4, 4)})
    assert smoke.epochs == 3 and tuple(smoke.model.kwargs.widths) == (4, 4) and smoke.windows_per_epoch == 16
    with pytest.raises(ValueError, match="unknown config field 'model.kwarg.widths'.*known: dtype, kwargs, name"):
        vad.default_config(**{"model.kwarg.widths": (4, 4)})
    with pytest.raises(ValueError, match="unknown config field 'epoch'"):
        vad.default_config(epoch=3)


# ----------------------------------------------------------------------------------------------------------
# End to end on the synthetic surveillance videos (32×32, smoke widths).

FRAMES, SIZE = 20, 32


def _config():
    # lr 1e-3 so that 8 steps visibly lower the loss; 4 steps per epoch, checkpoint every epoch.
    return vad.default_config(smoke=True, epochs=2, **{"optim.lr": 1e-3})


@pytest.fixture(scope="module")
def data():
    train = surveillance_split("train", 4, seed=0, num_frames=FRAMES, height=SIZE, width=SIZE)
    test = surveillance_split("test", 3, seed=0, num_frames=FRAMES, height=SIZE, width=SIZE)
    assert not train["anomaly"].any()
    return train, test


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("straight"))
    return workdir, vad.train_vad(_config(), data[0]["video"], workdir=workdir, progress=False)


@pytest.fixture(scope="module")
def reconstruct():
    """A jitted reconstruction `(params, clips) -> recon` of the smoke STAE (eval graph), compiled once."""
    fns, _, batch_stats = core.split_model(build_model("stae", 0, kwargs=_config().model.kwargs.to_dict()))
    return jax.jit(lambda params, x: nnx.merge(fns.eval_graph, params, batch_stats)(x))


def _params(state):
    return [np.asarray(x) for x in jax.tree.leaves(state["params"])]


def test_training_lowers_the_reconstruction_error(data, straight, reconstruct):
    cfg = _config()
    init = build_model("stae", 0, kwargs=cfg.model.kwargs.to_dict(), seed=cfg.seed)
    _, init_params, _ = core.split_model(init)
    grey = vad.to_grey(data[0]["video"][:, :10]).astype(np.float32) / 255.0  # first window of each video
    mse = lambda p: float(jnp.mean((reconstruct(p, grey) - grey) ** 2))
    before, after = mse(init_params), mse(straight[1]["state"]["params"])
    assert after < 0.8 * before, (before, after)
    history = straight[1]["history"]
    assert [(r["epoch"], r["step"]) for r in history] == [(1, 4), (2, 8)]
    assert history[1]["loss"] < history[0]["loss"]


def test_killed_after_first_checkpoint_resumes_to_uninterrupted_params(data, straight, tmp_path, monkeypatch):
    workdir = str(tmp_path / "killed")
    real_save = checkpointing.Checkpointer.save

    class Killed(Exception):
        pass

    def save_then_die(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        raise Killed(step)

    monkeypatch.setattr(checkpointing.Checkpointer, "save", save_then_die)
    with pytest.raises(Killed):
        vad.train_vad(_config(), data[0]["video"], workdir=workdir, progress=False)
    monkeypatch.setattr(checkpointing.Checkpointer, "save", real_save)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]

    resumed = vad.train_vad(_config(), data[0]["video"], workdir=workdir, progress=False)
    result = straight[1]
    assert resumed["steps"] == result["steps"] == 8
    assert resumed["history"] == result["history"]
    for a, b in zip(_params(resumed["state"]), _params(result["state"])):
        np.testing.assert_array_equal(a, b)
    with open(os.path.join(workdir, "metrics.jsonl")) as f, open(os.path.join(straight[0], "metrics.jsonl")) as g:
        assert [json.loads(line) for line in f] == [json.loads(line) for line in g]
    assert os.path.exists(os.path.join(workdir, "curves.png"))


def test_scoring_end_to_end(data, straight, reconstruct):
    test = data[1]
    result = vad.evaluate_vad(straight[1], test["video"], test["anomaly"])
    v = len(test["video"])
    assert result["scored_frames"] == v * (FRAMES - 9) and result["excluded_frames"] == v * 9
    assert [len(c) for c in result["costs"]] == [FRAMES - 9] * v
    s_all = np.concatenate([s[9:] for s in result["scores"]])
    y_all = np.concatenate([y[9:] for y in test["anomaly"]])
    assert np.isnan(np.stack(result["scores"])[:, :9]).all()
    assert result["auc"] == pytest.approx(roc_auc_score(y_all, s_all), abs=1e-12)
    assert result["ap"] == pytest.approx(average_precision_score(y_all, s_all), abs=1e-12)
    # the jitted, batched costs of video 0 equal ‖x − x̂‖₂ of the model's own reconstruction, window by window
    grey = vad.to_grey(test["video"][0]).astype(np.float32) / 255.0
    clips = np.stack([grey[s:s + 10] for s in (0, 3, 7, 10)])
    recon = np.asarray(reconstruct(straight[1]["state"]["params"], clips), np.float64)
    ref = np.sqrt(((clips - recon) ** 2).sum(axis=(1, 2, 3, 4)))
    np.testing.assert_allclose(result["costs"][0][[0, 3, 7, 10]], ref, rtol=1e-4)


def test_train_rejects_short_videos(data):
    with pytest.raises(ValueError, match="train video 0 has 8 frames, fewer than the 10-frame window"):
        vad.train_vad(_config(), data[0]["video"][:, :8], progress=False)
