"""Data-minimization transforms for video (pure jnp), their registry and the spec grammar.

A minimization is written as a spec string such as `"ts(5)|blur(4)"` and parsed into a `Pipeline`:

    pipe = minimize.parse("ts(5)|blur(4)")
    out = pipe.apply(clips)                  # (B, T, H, W, C) uint8 or float -> (B, ceil(T/5), H, W, C)
    labels = labels[:, pipe.frame_indices(T)]

Ops (see `registry.OPS`): `ts(s)` temporal sampling (breadth); `ds(f[,bicubic])` downsampling, `blur(sigma)`
PIL Gaussian blur, `mask(t)` luminance threshold, `bgsub(...)` background removal, `pixelate(b)`,
`quant(bits)`, `gray`, `black` (depth). Any shape-preserving op can be restricted to a caller-supplied mask:
`"blur(4)@person"` with `apply(clips, masks={"person": m})`.

Region sugar (`sugar`): `faces(blur=sigma)`, `faces(pixelate=b)`, `faces(black)` mean `blur(sigma)@face`,
`pixelate(b)@face`, `black@face`; `people(...)` the same `@person`. The parsed pipeline prints in the
canonical form (`parse("ts(2)|faces(blur=4)")` prints `ts(2)|blur(4)@face`) and lists `"face"` in
`pipeline.regions`. `anonvid.regions.apply_with_detection(spec, clips)` detects the faces/people (OpenCV,
extra `anonvid[faces]`), smooths the boxes over time and applies the pipeline with those masks.
"""
from anonvid.minimize.background import foreground_masks, open_close, remove_background
from anonvid.minimize.blur import gaussian_blur, pillow_box_radius
from anonvid.minimize.pixels import luminance
from anonvid.minimize.registry import BREADTH, DEPTH, OPS, Op, Param, get_op, register_op
from anonvid.minimize.resize import area_downsample, bicubic_downsample
from anonvid.minimize.spatial import black, gray, pixelate, quantize, threshold_mask
from anonvid.minimize.spec import OpCall, Pipeline, apply, parse
from anonvid.minimize.temporal import sample_indices, temporal_sample

__all__ = [
    "BREADTH", "DEPTH", "OPS", "Op", "OpCall", "Param", "Pipeline", "apply", "area_downsample", "black",
    "bicubic_downsample", "foreground_masks", "gaussian_blur", "get_op", "gray", "luminance", "open_close",
    "parse", "pillow_box_radius", "pixelate", "quantize", "register_op", "remove_background",
    "sample_indices", "temporal_sample", "threshold_mask",
]
