"""Pictures of tubelet pruning (METHODS.md A): what the dual-token ViT scored, kept and removed in one clip.

Three views of the same clip, in this order everywhere: the raw frames, the per-tubelet score as a heat map over
the frame, and the anonymized frames (`pruning.apply_mask`). `pruning_figure` draws a few frames as a PNG
(rows = views, columns = frames); `write_animation` plays whole clips with the views side by side as a GIF or an
MP4. Plain numpy on the host: pass `jax.Array`s freely, they are copied with `np.asarray`.

Heat map: score = α_act − λ_priv·α_priv (`pruning.tubelet_scores`): high = kept for the action, low =
privacy-heavy (pruned first). A diverging colormap centred at 0 and symmetric about it (±max |score| of the
clip, so colours compare across frames), nearest-upsampled from the tubelet grid to pixels and blended over the
frame in grey, so that every colour in the panel is the score's. Tubelets with no score (NaN) show the grey
frame.

Example:
    outputs, aux = model(clips)
    grid = tubelet_score_grid(aux["scores"][0][b], aux["score_ids"][0][b], aux["grid"])
    mask = pruning.kept_ids_to_mask(aux["kept_ids"], aux["grid"], tubelet, clips.shape[1:4])
    anonymized = pruning.apply_mask(clips, mask)
    pruning_figure(clips[b], grid, anonymized[b], "pruning.png", tubelet=tubelet)
    write_animation(animation_rows(clips[b], grid, anonymized[b], tubelet=tubelet), "pruning.gif")

Files are written to a temporary name in the target directory and renamed at the end, so a failed write never
leaves a partial file.
"""
from __future__ import annotations

import fractions
import math
import numbers
import os
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

CMAP = "RdBu"  # diverging; red = low (privacy), blue = high (kept for action)
HEAT_ALPHA = 0.6  # opacity of the heat map over the grey frame
DEFAULT_FRAMES = 4  # frames `pruning_figure` shows when none are given
ANIMATION_SUFFIXES = (".gif", ".mp4")
# H.264 first (small files, plays everywhere); MPEG-4 part 2 is in every FFmpeg build. "h264" is FFmpeg's default
# H.264 encoder, in case a wheel has one that is not libx264.
MP4_CODECS = ("libx264", "h264", "mpeg4")
_AUTO_SCALE_TARGET = 192  # `write_animation` upscales frames to about this many pixels on their longer side
_FLOAT_SLACK = 1e-6  # float pixels this far outside [0, 1] are rounding error, clipped rather than refused

# pruning_figure layout, in inches (documented in `figure_size`, checked by the tests).
_PANEL_W = 1.6
_GAP = 0.06
_LEFT = 0.35
_CBAR_W = 1.0
_HEAD = 0.3
_TITLE = 0.35
_BOTTOM = 0.1


# ----------------------------------------------------------------------------------------------------------------
# Validation and conversion
# ----------------------------------------------------------------------------------------------------------------

def _three(name: str, value: Any) -> tuple[int, int, int]:
    out = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else ()
    if len(out) != 3 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                                for v in out):
        raise ValueError(f"{name} must be three positive ints (time, height, width); got {value!r}")
    return tuple(int(v) for v in out)


def _clip_u8(clip: Any, name: str = "clip") -> np.ndarray:
    """A `(T, H, W, 3)` uint8 or float-in-[0, 1] clip → uint8 (float rounded to the nearest level)."""
    x = np.asarray(clip)
    if x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[:3], default=0) < 1:
        raise ValueError(f"{name} must be one clip of shape (T, H, W, 3) (RGB frames, no batch axis); got shape "
                         f"{x.shape}" + ("; pass one clip of the batch, e.g. clips[0]" if x.ndim == 5 else ""))
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 (0..255) or float in [0, 1]; got dtype {x.dtype}"
                         + ("; divide by 255 or cast to uint8" if np.issubdtype(x.dtype, np.integer) else ""))
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has NaN or infinite pixels")
    lo, hi = float(x.min()), float(x.max())
    if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
        raise ValueError(f"float {name} must be in [0, 1]; its values span [{lo:.4g}, {hi:.4g}]"
                         + ("; divide by 255 (or pass uint8)" if hi > 1.5 else ""))
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _check_score_grid(score_grid: Any, tubelet: Any, clip_shape: Sequence[int]) -> tuple[np.ndarray, tuple]:
    tubelet = _three("tubelet", tubelet)
    grid = np.asarray(score_grid)
    if grid.ndim != 3 or not np.issubdtype(grid.dtype, np.floating):
        raise ValueError(f"score_grid must be a float (T', H', W') array (see tubelet_score_grid); got shape "
                         f"{grid.shape}, dtype {grid.dtype}")
    covered = tuple(g * t for g, t in zip(grid.shape, tubelet))
    if covered != tuple(clip_shape):
        raise ValueError(f"score grid {grid.shape} × tubelet {tubelet} = {covered} does not cover the clip "
                         f"(T, H, W) = {tuple(clip_shape)}; pass the model's tubelet size and the clip it scored")
    return grid.astype(np.float32), tubelet


def _check_path(path: Any, suffixes: Sequence[str], what: str) -> str:
    """Checks that `path` has one of `suffixes` (case-insensitive) and that its folder exists."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in suffixes:
        raise ValueError(f"cannot write {what} to {path!r}: unknown suffix {suffix or '(none)'!r}; use one of "
                         f"{', '.join(suffixes)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {path!r}: folder {folder!r} does not exist")
    return path


def _write_atomic(path: str, write) -> str:
    """Calls `write(tmp)` on a fresh temporary name beside `path`, then renames it to `path`.

    The writer creates the file itself, so it gets the usual permissions (umask), not mkstemp's 0600.
    """
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp{os.path.splitext(path)[1].lower()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------------------------

def tubelet_score_grid(scores: Any, score_ids: Any, grid: Sequence[int]) -> np.ndarray:
    """One clip's tubelet scores (by global id) → a dense `(T', H', W')` grid.

    Args:
      scores: `(n,)` scores of one clip at one pruning stage, e.g. `aux["scores"][0][b]` (the first stage scores
        every tubelet, so its grid has no gaps; later stages score only the survivors).
      score_ids: `(n,)` their global tubelet ids, e.g. `aux["score_ids"][0][b]`; time-major,
        id = (t·H' + h)·W' + w, distinct.
      grid: the tubelet grid (T', H', W'), `aux["grid"]`.

    Returns:
      float32 `(T', H', W')`: the score of each tubelet, NaN where a tubelet has no score.
    """
    grid = _three("grid", grid)
    s, ids = np.asarray(scores), np.asarray(score_ids)
    if s.ndim != 1 or ids.shape != s.shape:
        hint = "; pass one clip's vector, e.g. aux['scores'][0][b] and aux['score_ids'][0][b]" if s.ndim == 2 else ""
        raise ValueError(f"scores and score_ids must be (n,) vectors of the same length; got {s.shape} and "
                         f"{ids.shape}{hint}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"score_ids must be integers (global tubelet ids); got dtype {ids.dtype}")
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)) or s.dtype == bool:
        raise ValueError(f"scores must be numbers; got dtype {s.dtype}")
    n = math.prod(grid)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"score_ids span [{ids.min()}, {ids.max()}], outside 0..{n - 1} of the grid {grid}; pass "
                         f"the grid of the model that scored them")
    if np.unique(ids).size != ids.size:
        raise ValueError("score_ids repeat an id; each tubelet has one score per stage")
    out = np.full(n, np.nan, np.float32)
    out[ids.astype(np.int64)] = s.astype(np.float32)
    return out.reshape(grid)


def _symmetric_limit(score_grid: np.ndarray) -> float:
    """The heat map's colour range ±vmax: max |score| over the scored tubelets, 1 if there are none (or all 0)."""
    finite = np.abs(score_grid[np.isfinite(score_grid)])
    vmax = float(finite.max()) if finite.size else 0.0
    return vmax if vmax > 0 else 1.0


def _upsample(score_grid: np.ndarray, tubelet: tuple[int, int, int]) -> np.ndarray:
    """Nearest upsampling `(T', H', W')` → `(T, H, W)`: each tubelet's score on all its pixels."""
    out = score_grid
    for axis, size in enumerate(tubelet):
        out = np.repeat(out, size, axis=axis)
    return out


def _heat_overlay(frames: np.ndarray, scores: np.ndarray, vmax: float) -> np.ndarray:
    """uint8 frames `(..., H, W, 3)` with per-pixel scores `(..., H, W)` blended over them in grey → uint8."""
    import matplotlib

    cmap = matplotlib.colormaps[CMAP]
    # ITU-R 601 luminance: the frame in grey, so colour in the panel means score only.
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    rgba = cmap(0.5 + 0.5 * np.clip(scores / vmax, -1.0, 1.0))  # NaN → the colormap's "bad" colour, alpha 0
    alpha = HEAT_ALPHA * rgba[..., 3:4]
    blended = (1 - alpha) * grey[..., None] + alpha * 255.0 * rgba[..., :3]
    return np.round(np.clip(blended, 0, 255)).astype(np.uint8)


def score_heatmap(clip: Any, score_grid: Any, *, tubelet: Sequence[int]) -> np.ndarray:
    """The clip's score heat-map frames, as drawn in the middle row/panel (see the module docstring).

    Args:
      clip: `(T, H, W, 3)` uint8 or float in [0, 1].
      score_grid: `(T', H', W')` scores (`tubelet_score_grid`), NaN = no score.
      tubelet: tubelet size (t, p, q); score grid × tubelet must equal (T, H, W).

    Returns:
      `(T, H, W, 3)` uint8.
    """
    frames = _clip_u8(clip)
    grid, tubelet = _check_score_grid(score_grid, tubelet, frames.shape[:3])
    return _heat_overlay(frames, _upsample(grid, tubelet), _symmetric_limit(grid))


# ----------------------------------------------------------------------------------------------------------------
# Figure
# ----------------------------------------------------------------------------------------------------------------

def _default_frames(t: int) -> list[int]:
    return sorted({round(float(v)) for v in np.linspace(0, t - 1, min(DEFAULT_FRAMES, t))})


def _check_frames(frames: Any, t: int) -> list[int]:
    if frames is None:
        return _default_frames(t)
    if isinstance(frames, numbers.Integral):
        frames = [frames]
    frames = list(frames)
    if not frames or any(not isinstance(f, numbers.Integral) or isinstance(f, bool) for f in frames):
        raise ValueError(f"frames must be a non-empty list of int frame indices; got {frames!r}")
    out = [int(f) for f in frames]
    bad = [f for f in out if not 0 <= f < t]
    if bad:
        raise ValueError(f"frame indices {bad} are outside 0..{t - 1} of the {t}-frame clip")
    return out


def figure_size(num_frames: int, frame_hw: Sequence[int], *, title: bool = False) -> tuple[float, float]:
    """`pruning_figure`'s figure size in inches for `num_frames` columns of (H, W) frames.

    Each panel is 1.6 in wide and 1.6·H/W in tall, with 0.06 in between panels; a 0.35 in left margin holds
    the row labels, a 1.0 in column on the right the colorbar, 0.3 in on top the frame numbers (plus 0.35 in
    for a title) and 0.1 in at the bottom.
    """
    h, w = frame_hw
    panel_h = _PANEL_W * h / w
    width = _LEFT + num_frames * _PANEL_W + (num_frames - 1) * _GAP + _CBAR_W
    height = _HEAD + (_TITLE if title else 0.0) + 3 * panel_h + 2 * _GAP + _BOTTOM
    return width, height


def pruning_figure(clip: Any, score_grid: Any, anonymized: Any, path: Any, *, tubelet: Sequence[int],
                   frames: Sequence[int] | None = None, title: str = "", dpi: int = 100) -> str:
    """Draws a few frames of one clip as raw / score heat map / anonymized rows and saves the figure.

    Args:
      clip: `(T, H, W, 3)` raw clip, uint8 or float in [0, 1].
      score_grid: `(T', H', W')` tubelet scores (`tubelet_score_grid`), NaN = no score.
      anonymized: the anonymized clip, same shape as `clip` (e.g. `pruning.apply_mask(...)[b]`).
      path: output file, `.png` (or `.pdf`/`.svg`); written through a temporary file.
      tubelet: tubelet size (t, p, q); score grid × tubelet must equal (T, H, W).
      frames: frame indices to show (columns); default up to 4 evenly spaced frames, first and last included.
      title: optional figure title.
      dpi: resolution; the image is `figure_size(...)` × dpi pixels (to the pixel).

    Returns:
      `path`.
    """
    raw = _clip_u8(clip)
    anon = _clip_u8(anonymized, "anonymized")
    if anon.shape != raw.shape:
        raise ValueError(f"anonymized {anon.shape} and clip {raw.shape} must have the same shape")
    grid, tubelet = _check_score_grid(score_grid, tubelet, raw.shape[:3])
    cols = _check_frames(frames, raw.shape[0])
    if not isinstance(dpi, numbers.Integral) or dpi < 10:
        raise ValueError(f"dpi must be an int >= 10; got {dpi!r}")
    path = _check_path(path, (".png", ".pdf", ".svg"), "a figure")

    from matplotlib import cm, colors
    from matplotlib.figure import Figure

    vmax = _symmetric_limit(grid)
    heat = _heat_overlay(raw[cols], _upsample(grid, tubelet)[cols], vmax)
    h, w = raw.shape[1:3]
    fig_w, fig_h = figure_size(len(cols), (h, w), title=bool(title))
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)  # no pyplot: no global backend or figure state
    panel_h = _PANEL_W * h / w
    top = fig_h - _HEAD - (_TITLE if title else 0.0)
    rows = (("raw", raw[cols]), ("score", heat), ("anonymized", anon[cols]))
    for r, (label, images) in enumerate(rows):
        y = top - (r + 1) * panel_h - r * _GAP
        for c, (t, image) in enumerate(zip(cols, images)):
            x = _LEFT + c * (_PANEL_W + _GAP)
            ax = fig.add_axes((x / fig_w, y / fig_h, _PANEL_W / fig_w, panel_h / fig_h))
            ax.imshow(image, interpolation="nearest", aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {t}", fontsize=8, pad=3)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    # The colorbar spans the score row; it shows the map at full strength (the panels blend it at HEAT_ALPHA).
    y = top - 2 * panel_h - _GAP
    cax = fig.add_axes(((fig_w - _CBAR_W + 0.12) / fig_w, y / fig_h, 0.12 / fig_w, panel_h / fig_h))
    bar = fig.colorbar(cm.ScalarMappable(colors.Normalize(-vmax, vmax), CMAP), cax=cax)
    bar.ax.tick_params(labelsize=6)
    bar.set_label("score\nhigh: kept (action)\nlow: privacy", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.1 / fig_h, va="top")
    return _write_atomic(path, lambda p: fig.savefig(p, dpi=dpi, format=os.path.splitext(p)[1][1:]))


# ----------------------------------------------------------------------------------------------------------------
# Animation
# ----------------------------------------------------------------------------------------------------------------

def animation_rows(clip: Any, score_grid: Any, anonymized: Any, *, tubelet: Sequence[int]) -> list[np.ndarray]:
    """The three panels `write_animation` plays side by side: [raw, score heat map, anonymized], uint8 clips."""
    raw = _clip_u8(clip)
    anon = _clip_u8(anonymized, "anonymized")
    if anon.shape != raw.shape:
        raise ValueError(f"anonymized {anon.shape} and clip {raw.shape} must have the same shape")
    return [raw, score_heatmap(raw, score_grid, tubelet=tubelet), anon]


def _as_rows(rows: Any) -> list[list[np.ndarray]]:
    """A flat sequence of `(T, H, W, 3)` panels (one row) or a sequence of such sequences → rows of uint8 panels."""
    if isinstance(rows, np.ndarray) or hasattr(rows, "__array__"):
        raise ValueError("rows must be a list of (T, H, W, 3) clips shown side by side (or a list of such lists, "
                         "one per row), e.g. animation_rows(clip, score_grid, anonymized, tubelet=...); got one array")
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: give at least one (T, H, W, 3) clip")
    is_row = [isinstance(r, (list, tuple)) for r in rows]
    if not any(is_row):
        rows = [rows]  # a flat list of clips: one row
    elif not all(is_row):
        raise ValueError("rows mixes clips and lists: give a list of (T, H, W, 3) clips (one row) or a list of "
                         "such lists (one per row)")
    out = []
    for i, row in enumerate(rows):
        if not row:
            raise ValueError(f"row {i} is empty: give at least one (T, H, W, 3) clip")
        out.append([_clip_u8(p, f"row {i} panel {j}") for j, p in enumerate(row)])
    shapes = {p.shape for row in out for p in row}
    if len(shapes) != 1:
        raise ValueError(f"all panels must have the same (T, H, W, 3) shape; got {sorted(shapes)}")
    return out


def _check_scale(scale: Any, h: int, w: int) -> int:
    if scale is None:
        return max(1, round(_AUTO_SCALE_TARGET / max(h, w)))
    if not isinstance(scale, numbers.Integral) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be a positive int (nearest-neighbour upscaling factor) or None (automatic); "
                         f"got {scale!r}")
    return int(scale)


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of `(..., H, W, C)` frames by an integer factor (PIL NEAREST semantics)."""
    return np.repeat(np.repeat(frames, scale, axis=-3), scale, axis=-2)


def compose_frames(rows: Any, *, scale: int | None = None, gap: int = 4) -> np.ndarray:
    """The animation's frames: panels upscaled, side by side in each row, rows stacked; `(T, H', W', 3)` uint8.

    Panels are separated by `gap` white pixels (of the output), between panels and between rows, none outside.
    See `write_animation` for the arguments.
    """
    panels = _as_rows(rows)
    t, h, w, _ = panels[0][0].shape
    s = _check_scale(scale, h, w)
    if not isinstance(gap, numbers.Integral) or isinstance(gap, bool) or gap < 0:
        raise ValueError(f"gap must be an int >= 0 (pixels between panels); got {gap!r}")
    cols = max(len(row) for row in panels)
    ph, pw = h * s, w * s
    out = np.full((t, len(panels) * ph + (len(panels) - 1) * gap, cols * pw + (cols - 1) * gap, 3), 255, np.uint8)
    for r, row in enumerate(panels):
        for c, panel in enumerate(row):
            y, x = r * (ph + gap), c * (pw + gap)
            out[:, y:y + ph, x:x + pw] = upscale(panel, s)
    return out


def _check_fps(fps: Any) -> float:
    if not isinstance(fps, numbers.Real) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number; got {fps!r}")
    return float(fps)


def mp4_codec() -> str:
    """The first of `MP4_CODECS` the installed PyAV (FFmpeg) can encode with."""
    import av

    for name in MP4_CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except ValueError:  # av.codec.codec.UnknownCodecError
            continue
    raise ValueError(f"this PyAV build has none of the MP4 encoders {MP4_CODECS}; write a .gif instead")


def _write_gif(frames: np.ndarray, path: str, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    # GIF stores delays in 1/100 s. loop=0: play forever. Pillow merges identical consecutive frames into one
    # (adding their delays), so a static stretch plays for the right time but counts as one frame.
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)


def _write_mp4(frames: np.ndarray, path: str, fps: float) -> None:
    import av

    # yuv420p subsamples chroma 2×2: width and height must be even. Pad with the separator colour (white).
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
    codec = mp4_codec()
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 8_000_000  # its default (~200 kb/s) smears the block edges the pictures are about
        else:
            stream.options = {"crf": "18"}  # visually lossless H.264
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())  # flush


def write_animation(rows: Any, path: Any, *, fps: float = 8, scale: int | None = None, gap: int = 4) -> str:
    """Plays clips side by side (raw | score heat map | anonymized) as an animated GIF or an MP4.

    Args:
      rows: the panels of one row, a list of `(T, H, W, 3)` clips (uint8 or float in [0, 1], all the same
        shape) shown left to right, e.g. `animation_rows(clip, score_grid, anonymized, tubelet=...)`; or a
        list of such lists, one row each, stacked top to bottom (several clips in one animation).
      path: output file; the suffix picks the format: `.gif` (PIL, loops forever) or `.mp4` (PyAV, the first
        encoder of `MP4_CODECS` available, yuv420p; an odd total width or height is padded by one white
        column or row at the right or bottom). Written through a temporary file.
      fps: frames per second (GIF delays are whole hundredths of a second).
      scale: integer nearest-neighbour upscaling of every panel, so that 32–64 px frames are visible; None
        picks round(192 / max(H, W)), at least 1 (6 for 32 px, 3 for 64 px, 1 from 384 px).
      gap: white pixels between panels and rows (in the output, not scaled).

    Returns:
      `path`.
    """
    fps = _check_fps(fps)
    frames = compose_frames(rows, scale=scale, gap=gap)
    path = _check_path(path, ANIMATION_SUFFIXES, "an animation")
    writer = _write_gif if path.lower().endswith(".gif") else _write_mp4
    return _write_atomic(path, lambda p: writer(frames, p, fps))
