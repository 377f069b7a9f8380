"""Tests of the synthetic benchmark generator (anonvid.data.synthetic)."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from anonvid.data import synthetic as syn
from anonvid.data.synthetic_person import SKIN_DARK

SMALL = dict(num_frames=8, height=32, width=32)


@pytest.fixture(scope="module")
def clips():
    return syn.generate_actions(48, seed=7, **SMALL)


def test_shapes_and_dtypes(clips):
    n, t, h, w = 48, 8, 32, 32
    expected = {"video": ((n, t, h, w, 3), np.uint8), "action": ((n,), np.int32), "privacy": ((n, 5), np.int32),
                "privacy_mask": ((n, t, h, w), np.uint8), "action_mask": ((n, t, h, w), np.uint8)}
    assert {k: (v.shape, v.dtype) for k, v in clips.items()} == expected
    assert set(np.unique(clips["privacy"])) <= {0, 1}
    assert set(np.unique(clips["action_mask"])) <= {0, 1}
    assert clips["action"].min() >= 0 and clips["action"].max() < len(syn.ACTIONS) == 7
    assert syn.PRIVACY_ATTRIBUTES == ("skin_color", "face", "gender", "nudity", "relationship")


@pytest.mark.parametrize("t,h,w", [(2, 24, 24), (5, 40, 56), (16, 64, 64)])
def test_other_sizes(t, h, w):
    d = syn.generate_actions(3, seed=1, num_frames=t, height=h, width=w)
    assert d["video"].shape == (3, t, h, w, 3)
    assert d["privacy_mask"].shape == d["action_mask"].shape == (3, t, h, w)
    assert (d["action_mask"].reshape(3, t, -1).sum(-1) > 0).all()  # the actor is in every frame


def test_deterministic_by_seed_and_prefix_stable():
    a = syn.generate_actions(130, seed=3, **SMALL)  # crosses a chunk boundary (CHUNK = 128)
    b = syn.generate_actions(130, seed=3, **SMALL)
    c = syn.generate_actions(129, seed=3, **SMALL)
    d = syn.generate_actions(4, seed=4, **SMALL)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k][:129], c[k])
    assert not np.array_equal(a["video"][:4], d["video"])
    chunks = list(syn.iter_action_chunks(130, seed=3, **SMALL))
    np.testing.assert_array_equal(np.concatenate([ch["video"] for ch in chunks]), a["video"])


def test_empty():
    d = syn.generate_actions(0, seed=0, **SMALL)
    assert d["video"].shape == (0, 8, 32, 32, 3) and d["privacy"].shape == (0, 5)


def test_splits_are_disjoint_and_reproducible():
    tr = syn.actions_split("train", 4, seed=0, **SMALL)
    va = syn.actions_split("val", 4, seed=0, **SMALL)
    te = syn.actions_split("test", 4, seed=0, **SMALL)
    assert not np.array_equal(tr["video"], va["video"]) and not np.array_equal(va["video"], te["video"])
    np.testing.assert_array_equal(syn.actions_split("test", 4, seed=0, **SMALL)["video"], te["video"])
    assert not np.array_equal(syn.actions_split("test", 4, seed=1, **SMALL)["video"], te["video"])


@pytest.mark.parametrize("kwargs,match", [
    (dict(height=16), "too small"), (dict(width=20), "too small"), (dict(num_frames=1), "at least 2"),
])
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        syn.generate_actions(2, seed=0, **{**SMALL, **kwargs})
    with pytest.raises(ValueError, match=match):
        syn.generate_surveillance(1, seed=0, **{**dict(num_frames=8, height=32, width=32), **kwargs})


def test_bad_split_and_count():
    with pytest.raises(ValueError, match="unknown split"):
        syn.actions_split("training", 2)
    with pytest.raises(ValueError, match="unknown split"):
        syn.surveillance_split("dev", 1)
    with pytest.raises(ValueError, match=">= 0"):
        syn.generate_actions(-1, seed=0)


def test_privacy_bits_present_iff_attribute(clips):
    bits = clips["privacy_mask"]
    for i in range(5):
        per_frame = ((bits >> i) & 1).reshape(48, 8, -1).any(-1)  # (N, T)
        on = clips["privacy"][:, i] == 1
        # Cue i is visible in every frame of a clip with attribute i, and nowhere in the others.
        assert per_frame[on].all(), syn.PRIVACY_ATTRIBUTES[i]
        assert not per_frame[~on].any(), syn.PRIVACY_ATTRIBUTES[i]
    assert bits.max() < 32


def test_masks_match_pixels(clips):
    video, bits, act = clips["video"].astype(int), clips["privacy_mask"], clips["action_mask"] == 1
    # The companion (bit 4) is not the actor; every other cue lies on the actor.
    assert not (((bits >> 4) & 1).astype(bool) & act).any()
    actor_cues = (bits & 0b1111) > 0
    assert not (actor_cues & ~act).any()
    # skin_color pixels are in the dark skin group (an independent colour oracle), apart from the face marks.
    skin = (((bits & 1) == 1) & ((bits & 2) == 0))
    assert np.abs(video[skin] - SKIN_DARK).max() <= 11
    # Pixels outside the actor and the companion are the background: no skin-dark or face-dark colours there.
    background = (bits == 0) & ~act
    assert (np.abs(video[background] - SKIN_DARK).max(-1) > 11).all()


def test_gender_cue_is_a_flared_shape(clips):
    # Oracle: the gender mask is wider in its lowest rows than in its top rows (a dress), in every frame.
    g = (clips["privacy_mask"] >> 2) & 1
    checked = 0
    for n in np.nonzero(clips["privacy"][:, 2] == 1)[0]:
        for f in range(8):
            m = g[n, f]
            rows = np.nonzero(m.any(1))[0]
            if len(rows) < 6 or rows[-1] - rows[0] != len(rows) - 1:  # skip wrapped or occluded frames
                continue
            widths = m[rows].sum(1)
            checked += 1
            assert widths[-2:].mean() > widths[:2].mean() + 1
    assert checked > 20


def test_tubelet_fraction_hand_case():
    m = np.zeros((1, 4, 16, 16), np.uint8)
    m[0, 0, 0, 0] = 1  # tubelet (0, 0, 0): 1 of 2*8*8 = 128 pixels
    m[0, 1, 0, 1] = 16  # same tubelet, another frame
    m[0, 3, 8:16, 8:16] = 3  # tubelet (1, 1, 1): one of its two frames fully covered
    frac = syn.tubelet_privacy_fraction(m, (2, 8, 8))
    expected = np.zeros((1, 2, 2, 2), np.float32)
    expected[0, 0, 0, 0] = 2 / 128
    expected[0, 1, 1, 1] = 0.5
    assert frac.dtype == np.float32
    np.testing.assert_allclose(frac, expected)
    with pytest.raises(ValueError, match="divide"):
        syn.tubelet_privacy_fraction(m, (3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, T, H, W\)"):
        syn.tubelet_privacy_fraction(m[0])


def test_no_pan_means_static_background():
    d = syn.generate_actions(6, seed=2, camera_pan=False, **SMALL)
    panned = syn.generate_actions(6, seed=2, camera_pan=True, **SMALL)
    for data, static in ((d, True), (panned, False)):
        free = (data["privacy_mask"] == 0) & (data["action_mask"] == 0)  # (N, T, H, W)
        both = free[:, 0] & free[:, -1]
        same = (data["video"][:, 0] == data["video"][:, -1]).all(-1)
        assert same[both].all() == static


def _circular_centroid(mask, size, axis):
    coords = np.arange(size) * 2 * np.pi / size
    z = (mask * np.exp(1j * coords).reshape((-1, 1) if axis == 0 else (1, -1))).sum((-2, -1))
    return np.unwrap(np.angle(z)) * size / (2 * np.pi)


def test_walk_directions_from_the_action_mask():
    d = syn.generate_actions(64, seed=5, camera_pan=False, num_frames=8, height=48, width=48)
    expected = {"walk_left": (0, -1), "walk_right": (0, 1), "walk_up": (-1, 0), "walk_down": (1, 0)}
    seen = 0
    for n in range(64):
        name = syn.ACTIONS[d["action"][n]]
        m = d["action_mask"][n].astype(float)
        vy = np.diff(_circular_centroid(m, 48, 0)).mean()
        vx = np.diff(_circular_centroid(m, 48, 1)).mean()
        if name in expected:
            seen += 1
            ey, ex = expected[name]
            assert (ey == 0 or np.sign(vy) == ey) and (ex == 0 or np.sign(vx) == ex), (name, vy, vx)
            assert abs(vy if ey else vx) > 0.8 and abs(vx if ey else vy) < 0.3
        elif name == "wave":
            assert abs(vy) < 0.3 and abs(vx) < 0.3, (name, vy, vx)
    assert seen > 10


def _gray_half(video):
    g = video.astype(np.float32).mean(-1) / 255.0
    n, t, h, w = g.shape
    return g.reshape(n, t, h // 2, 2, w // 2, 2).mean((3, 5))


def _spectrum(x, axes):
    # |FFT| is invariant to (circular) translation, so the classifier need not learn where the actor is.
    x = x - x.mean(axes, keepdims=True)
    return np.log1p(np.abs(np.fft.rfftn(x, axes=axes))).reshape(len(x), -1)


def test_action_is_in_the_motion_not_in_a_frame():
    tr = syn.actions_split("train", 480, seed=0, **SMALL)
    te = syn.actions_split("test", 240, seed=0, **SMALL)

    def frame_features(d, seed):
        g = _gray_half(d["video"])
        pick = np.random.default_rng(seed).integers(0, g.shape[1], len(g))
        return _spectrum(g[np.arange(len(g)), pick], (1, 2))

    def clip_features(d):
        return _spectrum(_gray_half(d["video"]), (1, 2, 3))

    def accuracy(x_tr, x_te):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=200))
        return clf.fit(x_tr, tr["action"]).score(x_te, te["action"])

    chance = 1 / len(syn.ACTIONS)
    single = accuracy(frame_features(tr, 0), frame_features(te, 1))
    whole = accuracy(clip_features(tr), clip_features(te))
    assert single < chance + 0.10, single
    assert whole > 0.8, whole  # the same model sees the action once it sees the motion


def test_surveillance_shapes_and_labels():
    d = syn.generate_surveillance(5, seed=0, num_frames=40, height=32, width=32)
    assert d["video"].shape == (5, 40, 32, 32, 3) and d["video"].dtype == np.uint8
    assert d["anomaly"].shape == d["anomaly_type"].shape == (5, 40) and d["anomaly"].dtype == np.uint8
    assert d["anomaly_mask"].shape == d["privacy_mask"].shape == (5, 40, 32, 32)
    # Frame labels agree with the pixel masks and the event types.
    np.testing.assert_array_equal(d["anomaly"], d["anomaly_mask"].reshape(5, 40, -1).any(-1))
    np.testing.assert_array_equal(d["anomaly"] == 1, d["anomaly_type"] > 0)
    assert d["anomaly_type"].max() < len(syn.ANOMALY_TYPES)
    assert d["anomaly"].any(axis=1).all()  # every video has an event
    again = syn.generate_surveillance(5, seed=0, num_frames=40, height=32, width=32)
    np.testing.assert_array_equal(again["video"], d["video"])


def test_surveillance_splits():
    train = syn.surveillance_split("train", 3, seed=0, num_frames=40, height=32, width=32)
    test = syn.surveillance_split("test", 3, seed=0, num_frames=40, height=32, width=32)
    assert train["anomaly"].sum() == 0 and train["anomaly_mask"].sum() == 0
    assert test["anomaly"].sum() > 0
    assert not np.array_equal(train["video"], test["video"])
    with pytest.raises(ValueError, match="normal-only"):
        syn.surveillance_split("train", 1, anomalies=True)
