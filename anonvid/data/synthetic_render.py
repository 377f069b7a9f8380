"""Vectorised 2-D painting for the synthetic benchmark: shapes, boxes, canvases, backgrounds.

Every function works on a *chunk* of n clips at once. A shape (disc, capsule, trapezoid) is rasterised only
inside a small box around its own centre — not over the whole frame — because a person covers a few percent of
the frame and painting is the generator's hot loop. Boxes wrap around the canvas edges (index modulo size), so
the actions mode can live on a torus: the actor never leaves the frame and its position is exactly uniform at
every frame, whatever the action (see `synthetic.py`). The surveillance mode paints on a padded canvas instead
and crops the margin, so people enter and leave through the edges.

Coordinates: pixel (i, j) has its centre at (y=i, x=j); y grows downwards.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Box:
    """A per-clip rectangle of pixels around a shape's centre.

    Attributes:
      dy: float32 (n, bh, 1), pixel y minus the shape's centre y.
      dx: float32 (n, 1, bw), pixel x minus the shape's centre x.
      flat: int (n, bh, bw), flat indices of the box pixels into the canvas' (n*H*W) pixel array.
    """

    dy: np.ndarray
    dx: np.ndarray
    flat: np.ndarray


class Canvas:
    """One frame of n clips being painted: RGB plus the per-pixel privacy bits and action mask painted with it.

    The canvas paints in place into frame `frame` of whole-clip arrays, so a generator can paint straight into
    its output without copying frames around.

    Args:
      rgb: uint8 (n, T, H, W, 3), C-contiguous; frame `frame` holds the background on entry.
      bits: uint8 (n, T, H, W) privacy bits, C-contiguous; frame `frame` must be zero on entry.
      act: uint8 (n, T, H, W) action mask, C-contiguous; frame `frame` must be zero on entry.
      frame: the frame index painted.
    """

    def __init__(self, rgb: np.ndarray, bits: np.ndarray, act: np.ndarray, frame: int = 0):
        n, t, h, w, _ = rgb.shape
        if bits.shape != (n, t, h, w) or act.shape != (n, t, h, w):
            raise ValueError(f"canvas shapes differ: rgb {rgb.shape}, bits {bits.shape}, act {act.shape}")
        self.shape = (n, h, w)
        self._frames, self._frame = t, int(frame)
        if not (rgb.flags.c_contiguous and bits.flags.c_contiguous and act.flags.c_contiguous):
            raise ValueError("canvas arrays must be C-contiguous so that painting writes into them")
        self._rgb_flat = rgb.reshape(-1, 3)
        self._bits_flat = bits.reshape(-1)
        self._act_flat = act.reshape(-1)

    def box(self, cy: np.ndarray, cx: np.ndarray, half: float, half_w: float | None = None,
            clips: np.ndarray | None = None) -> Box:
        """Returns the box of pixels within `half` (and `half_w` across) of each clip's centre (cy, cx).

        Args:
          cy, cx: (k,) centres in pixels.
          half, half_w: half height and half width of the box in pixels (half_w defaults to half).
          clips: optional int (k,) canvas clip of each centre (a subset of clips); default: all n clips.
        """
        n, h, w = self.shape
        clips = np.arange(n) if clips is None else np.asarray(clips)
        eh = int(np.ceil(half)) + 1
        ew = int(np.ceil(half if half_w is None else half_w)) + 1
        oy = np.floor(cy).astype(np.int64) - eh + 1
        ox = np.floor(cx).astype(np.int64) - ew + 1
        iy = oy[:, None] + np.arange(2 * eh)  # (n, bh)
        ix = ox[:, None] + np.arange(2 * ew)  # (n, bw)
        dy = (iy - cy[:, None]).astype(np.float32)[:, :, None]
        dx = (ix - cx[:, None]).astype(np.float32)[:, None, :]
        # Wrap around the canvas: the actions world is a torus; the surveillance canvas is padded instead.
        iy %= h
        ix %= w
        first = (clips * self._frames + self._frame) * h  # row of (clip, frame)'s first pixel line
        flat = (first[:, None, None] + iy[:, :, None]) * w + ix[:, None, :]
        return Box(dy=dy, dx=dx, flat=flat)

    def paint(self, box: Box, inside: np.ndarray, colour: np.ndarray, bits=0, act=0, index=None) -> None:
        """Paints `colour` where `inside`, overwriting what lies below (and its privacy bits / action mask).

        Args:
          box: the box the shape was rasterised in.
          inside: bool (n, bh, bw).
          colour: uint8 (n, 3) flat colour per clip, or with `index` a palette (n, K, 3).
          bits: privacy bits of the painted pixels, scalar or (n,) uint8.
          act: action-mask value of the painted pixels, scalar or (n,).
          index: optional int (n, bh, bw) palette entry per pixel (a texture); only read where `inside`.
        """
        # The clip of every painted pixel, in the (C) order of box.flat[inside].
        rows = np.repeat(np.arange(inside.shape[0]), inside.sum(axis=(1, 2)))
        where = box.flat[inside]
        colour = np.asarray(colour)
        self._rgb_flat[where] = colour[rows] if index is None else colour[rows, index[inside]]
        self._bits_flat[where] = _per_pixel(bits, rows)
        self._act_flat[where] = _per_pixel(act, rows)


def _per_pixel(value, rows: np.ndarray) -> np.ndarray:
    value = np.asarray(value, np.uint8)
    return value if value.ndim == 0 else value[rows]


def disc(box: Box, r) -> np.ndarray:
    """Pixels within radius r (scalar or (n,)) of the box centre."""
    r = _b(r)
    return box.dy**2 + box.dx**2 <= r * r


def capsule(box: Box, hy, hx, r) -> np.ndarray:
    """A segment from -h to +h around the box centre, thickened by radius r (a limb).

    Args:
      box: box centred on the segment's midpoint.
      hy, hx: (n,) half-vector of the segment.
      r: radius, scalar or (n,).
    """
    hy, hx, r = _b(hy), _b(hx), _b(r)
    t = np.clip((box.dy * hy + box.dx * hx) / np.maximum(hy * hy + hx * hx, 1e-6), -1.0, 1.0)
    ey = box.dy - t * hy
    ex = box.dx - t * hx
    return ey * ey + ex * ex <= r * r


def trapezoid(box: Box, ay, ax, half_len, w_top, w_bot) -> tuple[np.ndarray, np.ndarray]:
    """A trapezoid along the unit axis (ay, ax) (pointing from its top to its bottom edge).

    Args:
      box: box centred on the trapezoid's centre.
      ay, ax: (n,) unit axis.
      half_len: half the length along the axis, scalar or (n,).
      w_top, w_bot: half-widths at the top and bottom edges, scalar or (n,).

    Returns:
      (inside, s): the bool mask and the signed position along the axis (for stripes), both (n, bh, bw).
    """
    ay, ax, half_len, w_top, w_bot = (_b(v) for v in (ay, ax, half_len, w_top, w_bot))
    s = box.dy * ay + box.dx * ax
    q = box.dx * ay - box.dy * ax
    half_w = w_top + (w_bot - w_top) * (s + half_len) / (2 * half_len)
    return (np.abs(s) <= half_len) & (np.abs(q) <= half_w), s


def _b(v):
    v = np.asarray(v, np.float32)
    return v if v.ndim == 0 else v.reshape(-1, 1, 1)


def background(rng: np.random.Generator, n: int, h: int, w: int, unit: float) -> np.ndarray:
    """Static textured backgrounds: muted green/blue/grey, low-frequency shading plus a faint mid texture.

    Kept free of strong high-frequency detail so that the face texture stays the only one (a cue must not
    be imitated by the scene), and in a hue range away from skin tones and clothing.

    Args:
      rng: random generator.
      n, h, w: number and size of the backgrounds.
      unit: pixels per body unit (sets the texture scale).

    Returns:
      uint8 (n, h, w, 3).
    """
    bases = np.array([[105, 130, 110], [110, 120, 140], [130, 130, 120], [95, 125, 125]], np.float32)
    base = bases[rng.integers(0, len(bases), n)] + rng.uniform(-12, 12, (n, 1)).astype(np.float32)
    # One luminance field (low-frequency shading + a faint mid-frequency texture) on a per-clip base colour.
    lum = 28 * _smooth_noise(rng, n, h, w, cells=4)
    lum += 10 * _smooth_noise(rng, n, h, w, cells=max(4, round(min(h, w) / (4 * unit))))
    img = lum[..., None] + base[:, None, None, :]
    np.clip(img, 55, 190, out=img)
    return img.astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, n: int, h: int, w: int, cells: int) -> np.ndarray:
    """Bilinear value noise in [-1, 1], (n, h, w), from a (cells+1)^2 grid (two small matmuls per clip)."""
    grid = rng.random((n, cells + 1, cells + 1), dtype=np.float32) * 2 - 1
    return np.einsum("hi,nij,wj->nhw", _interp(h, cells), grid, _interp(w, cells), optimize=True)


def _interp(size: int, cells: int) -> np.ndarray:
    pos = np.linspace(0, cells, size, dtype=np.float32)
    lo = np.minimum(np.floor(pos).astype(int), cells - 1)
    frac = pos - lo
    m = np.zeros((size, cells + 1), np.float32)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m
