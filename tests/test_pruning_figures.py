"""anonvid.pruning_figures: score grids from hand-worked ids, figure layout, GIF/MP4 contents, input errors.

Oracles: hand-worked id → (t, h, w) positions, `pruning.kept_ids_to_mask` for the id convention, PIL's NEAREST
resize for the upscaling, and decoding the written files back with PIL and PyAV.
"""
import os

import av
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from anonvid import pruning
from anonvid import pruning_figures as pf

TUBELET = (2, 4, 4)
GRID = (2, 2, 3)  # 12 tubelets over a 4 × 8 × 12 clip
CLIP_SHAPE = (4, 8, 12)
COLOURS = np.array([[200, 30, 60], [20, 180, 40], [40, 60, 220], [250, 250, 250]], np.uint8)


def _clip(seed=0):
    """A few-colour clip (4 colours), so the GIF palette represents every colour of every panel exactly."""
    rng = np.random.default_rng(seed)
    return COLOURS[rng.integers(0, len(COLOURS), (*CLIP_SHAPE,))]


def _scores(seed=0):
    """First-stage scores of all 12 tubelets in a shuffled order, as the model's aux gives them."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(12).astype(np.int32)
    return np.round(rng.normal(size=12), 2).astype(np.float32), ids


def _anonymize(clip, kept):
    mask = pruning.kept_ids_to_mask(jnp.asarray([kept], jnp.int32), GRID, TUBELET, CLIP_SHAPE)
    return pruning.apply_mask(jnp.asarray(clip[None]), mask)[0], np.asarray(mask[0], bool)


# ---------------------------------------------------------------------------------------------------- score grid

def test_score_grid_hand_worked_positions():
    # grid (T', H', W') = (2, 2, 3): id = (t·2 + h)·3 + w.
    #   id 11 → (1, 1, 2), id 0 → (0, 0, 0), id 5 → (0, 1, 2), id 7 → (1, 0, 1)
    grid = pf.tubelet_score_grid(np.array([0.5, -1.0, 2.0, 0.25]), np.array([11, 0, 5, 7]), GRID)
    assert grid.shape == GRID and grid.dtype == np.float32
    expected = np.full(GRID, np.nan)
    expected[1, 1, 2], expected[0, 0, 0], expected[0, 1, 2], expected[1, 0, 1] = 0.5, -1.0, 2.0, 0.25
    np.testing.assert_array_equal(grid, expected)  # NaN positions must match too


def test_score_grid_first_stage_is_complete_and_takes_jax_arrays():
    scores, ids = _scores()
    grid = pf.tubelet_score_grid(jnp.asarray(scores), jnp.asarray(ids), GRID)
    assert np.isfinite(grid).all()
    np.testing.assert_array_equal(grid.reshape(-1)[ids], scores)


def test_score_grid_matches_the_pixel_mask_id_convention():
    kept = [1, 4, 6, 11]
    grid = pf.tubelet_score_grid(np.ones(4), np.array(kept), GRID)
    mask = pruning.kept_ids_to_mask(jnp.asarray([kept]), GRID, TUBELET, CLIP_SHAPE)[0]
    upsampled = np.kron(np.isfinite(grid), np.ones(TUBELET))
    np.testing.assert_array_equal(upsampled, np.asarray(mask))


@pytest.mark.parametrize("scores, ids, match", [
    (np.zeros((2, 3)), np.zeros((2, 3), int), r"\(n,\) vectors.*aux\['scores'\]\[0\]\[b\]"),
    (np.zeros(3), np.zeros(2, int), "same length"),
    (np.zeros(2), np.array([0.0, 1.0]), "integers"),
    (np.zeros(2), np.array([0, 12]), r"outside 0\.\.11"),
    (np.zeros(2), np.array([3, 3]), "repeat"),
])
def test_score_grid_rejects_bad_input(scores, ids, match):
    with pytest.raises(ValueError, match=match):
        pf.tubelet_score_grid(scores, ids, GRID)


def test_score_grid_rejects_a_bad_grid():
    with pytest.raises(ValueError, match="three positive ints"):
        pf.tubelet_score_grid(np.zeros(2), np.array([0, 1]), (2, 6))


def test_heatmap_colours_sign_and_unscored_tubelets():
    clip = _clip()
    grid = np.full(GRID, np.nan, np.float32)  # a later stage: only some tubelets scored
    grid[0, 0, 0], grid[0, 0, 1] = 2.0, -1.0
    heat = pf.score_heatmap(clip, grid, tubelet=TUBELET).astype(int)
    assert heat.shape == clip.shape
    # unscored tubelets show the frame in grey (PIL's ITU-R 601 "L", up to rounding)
    grey = np.stack([np.asarray(Image.fromarray(f).convert("L")) for f in clip]).astype(int)
    unscored = ~np.kron(np.isfinite(grid), np.ones(TUBELET, bool))
    assert np.abs(heat[unscored] - grey[unscored][:, None]).max() <= 1
    assert (heat[unscored] == heat[unscored][:, :1]).all()  # R = G = B
    # the high score is blue, the low score red (diverging map centred at 0, symmetric: ±2)
    pos, neg = heat[:2, :4, :4].reshape(-1, 3).mean(0), heat[:2, :4, 4:8].reshape(-1, 3).mean(0)
    assert pos[2] > pos[0] + 40 and neg[0] > neg[2] + 20, (pos, neg)


# -------------------------------------------------------------------------------------------------------- figure

def test_figure_size_follows_the_documented_layout():
    # 4 square frames: width 0.35 + 4·1.6 + 3·0.06 + 1.0 = 7.93 in; height 0.3 + 3·1.6 + 2·0.06 + 0.1 = 5.32 in.
    np.testing.assert_allclose(pf.figure_size(4, (32, 32)), (7.93, 5.32))
    # frames twice as tall as wide: each row 3.2 in; a title adds 0.35 in.
    np.testing.assert_allclose(pf.figure_size(2, (64, 32), title=True), (4.61, 0.65 + 9.6 + 0.22))


def test_png_size_and_panel_contents(tmp_path):
    clip = np.broadcast_to(COLOURS[0], (*CLIP_SHAPE, 3)).copy()
    anonymized = np.zeros_like(clip)
    grid = np.full(GRID, 0.3, np.float32)  # every score high (kept): the heat panel is blue over grey
    path = pf.pruning_figure(clip, grid, anonymized, tmp_path / "fig.png", tubelet=TUBELET, frames=[0, 3], dpi=50)
    assert path == os.fspath(tmp_path / "fig.png")
    with Image.open(path) as im:
        png = np.asarray(im.convert("RGB"))
    width, height = pf.figure_size(2, CLIP_SHAPE[1:])
    np.testing.assert_allclose(png.shape[:2], (height * 50, width * 50), atol=1)  # matplotlib truncates
    # Panel centres (x from the left, y from the top, inches): column 0 at 0.35 + 0.8; rows of 1.6·8/12 in below
    # the 0.3 in header, 0.06 in apart.
    panel_h = 1.6 * 8 / 12
    x = round((0.35 + 0.8) * 50)
    centres = [round((0.3 + r * (panel_h + 0.06) + panel_h / 2) * 50) for r in range(3)]
    np.testing.assert_array_equal(png[centres[0], x], COLOURS[0])
    r, g, b = png[centres[1], x].astype(int)
    assert b > r + 30 and b > g, png[centres[1], x]
    np.testing.assert_array_equal(png[centres[2], x], [0, 0, 0])
    assert os.listdir(tmp_path) == ["fig.png"]  # no temporary file left behind


def test_figure_accepts_float_clips_and_a_title(tmp_path):
    clip = _clip().astype(np.float32) / 255
    scores, ids = _scores()
    grid = pf.tubelet_score_grid(scores, ids, GRID)
    path = pf.pruning_figure(clip, grid, clip * 0.5, tmp_path / "f.png", tubelet=TUBELET, title="t", dpi=40)
    with Image.open(path) as im:
        np.testing.assert_allclose(im.size, np.array(pf.figure_size(4, (8, 12), title=True)) * 40, atol=1)


@pytest.mark.parametrize("change, match", [
    ({"clip": np.zeros((1, *CLIP_SHAPE, 3), np.uint8)}, r"\(T, H, W, 3\).*clips\[0\]"),
    ({"clip": np.zeros((*CLIP_SHAPE, 3), np.int32)}, "uint8.*float.*divide by 255"),
    ({"clip": np.full((*CLIP_SHAPE, 3), 255.0)}, r"\[0, 1\].*divide by 255"),
    ({"clip": np.full((*CLIP_SHAPE, 3), np.nan)}, "NaN"),
    ({"anonymized": np.zeros((4, 8, 8, 3), np.uint8)}, "same shape"),
    ({"tubelet": (2, 4, 3)}, "does not cover the clip"),
    ({"score_grid": np.zeros((2, 6))}, r"\(T', H', W'\)"),
    ({"frames": [0, 4]}, r"\[4\] are outside 0\.\.3"),
    ({"frames": []}, "non-empty"),
    ({"path": "fig.jpg"}, "unknown suffix '.jpg'"),
    ({"path": "no/such/folder/fig.png"}, "does not exist"),
])
def test_figure_rejects_bad_input(tmp_path, change, match):
    args = {"clip": _clip(), "score_grid": np.zeros(GRID, np.float32), "anonymized": _clip(), "path": "fig.png",
            "tubelet": TUBELET, "frames": None}
    args.update(change)
    args["path"] = os.path.join(tmp_path, args["path"])
    with pytest.raises(ValueError, match=match):
        pf.pruning_figure(args.pop("clip"), args.pop("score_grid"), args.pop("anonymized"), args.pop("path"),
                          **args)


# ----------------------------------------------------------------------------------------------------- animation

def test_upscale_equals_pil_nearest():
    image = np.random.default_rng(1).integers(0, 256, (5, 7, 3), np.uint8)
    ours = pf.upscale(image[None], 3)[0]
    pil = np.asarray(Image.fromarray(image).resize((21, 15), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(ours, pil)


def test_compose_layout_and_automatic_scale():
    a, b = _clip(0), _clip(1)
    frames = pf.compose_frames([[a, b], [b, a]], scale=2, gap=3)
    assert frames.shape == (4, 2 * 16 + 3, 2 * 24 + 3, 3)
    np.testing.assert_array_equal(frames[:, :16, 27:51], pf.upscale(b, 2))  # row 0, panel 1
    np.testing.assert_array_equal(frames[:, 19:, :24], pf.upscale(b, 2))  # row 1, panel 0
    assert (frames[:, :, 24:27] == 255).all() and (frames[:, 16:19] == 255).all()  # white gaps
    # None: round(192 / max(H, W)) → 16 for 12 px wide frames; a flat list of clips is one row.
    assert pf.compose_frames([a, b, a], gap=0).shape == (4, 8 * 16, 3 * 12 * 16, 3)
    # float clips in [0, 1] become the same uint8 levels
    np.testing.assert_array_equal(pf.compose_frames([a.astype(np.float64) / 255], scale=1, gap=0), a)


def test_gif_frames_and_pruned_pixels_are_black(tmp_path):
    clip = _clip()
    scores, ids = _scores()
    grid = pf.tubelet_score_grid(scores, ids, GRID)
    kept = [0, 2, 3, 7, 8, 10]
    anonymized, mask = _anonymize(clip, kept)
    rows = pf.animation_rows(clip, grid, anonymized, tubelet=TUBELET)
    path = pf.write_animation(rows, tmp_path / "a.gif", fps=10, scale=3, gap=2)
    expected = pf.compose_frames(rows, scale=3, gap=2)
    with Image.open(path) as im:
        assert im.n_frames == 4 and im.size == (3 * 36 + 2 * 2, 24)
        assert im.info["loop"] == 0 and im.info["duration"] == 100
        decoded = []
        for i in range(im.n_frames):
            im.seek(i)
            decoded.append(np.asarray(im.convert("RGB")))
    decoded = np.stack(decoded)
    # Few colours: the adaptive palette holds them all, so the GIF is the composed frames exactly.
    np.testing.assert_array_equal(decoded, expected)
    anon_panel = decoded[:, :, 2 * (36 + 2):]
    # id 1 = (t 0, h 0, w 1) was pruned: frames 0–1, rows 0–3, columns 4–7 of the clip; ×3 in the GIF.
    assert not mask[0, 0, 4] and not mask[1, 3, 7]
    np.testing.assert_array_equal(anon_panel[0, 0, 12], [0, 0, 0])
    np.testing.assert_array_equal(anon_panel[1, 11, 23], [0, 0, 0])
    big_mask = pf.upscale(mask[..., None], 3)[..., 0]
    assert (anon_panel[~big_mask] == 0).all()
    np.testing.assert_array_equal(anon_panel[big_mask], pf.upscale(clip, 3)[big_mask])
    # the raw panel is the clip, upscaled
    np.testing.assert_array_equal(decoded[:, :, :36], pf.upscale(clip, 3))


def test_mp4_decodes_to_the_frames_and_even_size(tmp_path):
    clip = _clip()
    grid = np.zeros(GRID, np.float32)
    rows = pf.animation_rows(clip, grid, np.zeros_like(clip), tubelet=TUBELET)
    # 3 panels of 8 × 12 at scale 3 with 1 px gaps: 24 × (3·36 + 2) = 24 × 110, even already.
    path = pf.write_animation(rows, tmp_path / "a.mp4", fps=5, scale=3, gap=1)
    _check_mp4(path, 4, 110, 24)
    odd = pf.write_animation([clip[:, :7, :9]], tmp_path / "odd.MP4", scale=1)  # 7 × 9 → 8 × 10
    _check_mp4(odd, 4, 10, 8)


def _check_mp4(path, frames, width, height):
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4")
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == frames
    assert decoded[0].shape == (height, width, 3)


def test_mp4_falls_back_to_mpeg4(tmp_path, monkeypatch):
    monkeypatch.setattr(pf, "MP4_CODECS", ("no-such-encoder", "mpeg4"))
    assert pf.mp4_codec() == "mpeg4"
    clip = _clip()
    path = pf.write_animation([clip, np.zeros_like(clip)], tmp_path / "m.mp4", scale=2, gap=0)
    with av.open(path) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == (4, 16, 48, 3)
    assert decoded[:, :, 24:].max() < 30  # the black panel stays black through the lossy codec
    monkeypatch.setattr(pf, "MP4_CODECS", ("no-such-encoder",))
    with pytest.raises(ValueError, match="write a .gif instead"):
        pf.write_animation([clip], tmp_path / "n.mp4")
    assert sorted(os.listdir(tmp_path)) == ["m.mp4"]  # the failed write left nothing


@pytest.mark.parametrize("rows, kw, match", [
    ([_clip()], {"path": "a.avi"}, r"unknown suffix '.avi'.*\.gif, \.mp4"),
    ([_clip()], {"path": "a"}, r"unknown suffix '\(none\)'"),
    ([_clip()], {"scale": 0}, "positive int"),
    ([_clip()], {"scale": 1.5}, "positive int"),
    ([_clip()], {"fps": 0}, "fps must be a positive number"),
    ([_clip()], {"gap": -1}, "gap must be"),
    ([], {}, "empty"),
    (np.zeros((3, *CLIP_SHAPE, 3), np.uint8), {}, "got one array"),
    ([_clip(), _clip()[:, :4]], {}, "same"),
    ([[_clip()], _clip()], {}, "mixes clips and lists"),
    ([_clip()[0]], {}, r"\(T, H, W, 3\)"),
])
def test_animation_rejects_bad_input(tmp_path, rows, kw, match):
    kw = {"path": "a.gif", **kw}
    path = os.path.join(tmp_path, kw.pop("path"))
    with pytest.raises(ValueError, match=match):
        pf.write_animation(rows, path, **kw)
    assert os.listdir(tmp_path) == []
