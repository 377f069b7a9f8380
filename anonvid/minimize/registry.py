"""The minimization op registry: what each op is called, takes, and does to a clip's shape and frames.

Every op declares its parameters (type, default, valid range), its kind (`breadth`: which frames are exposed;
`depth`: how much detail each exposed frame keeps), whether it commutes with temporal sampling, and whether
it preserves the clip shape (only shape-preserving ops can be restricted to a region). Specs and configs name
ops through this table; `register_op` adds new ones.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from anonvid.minimize import background, blur, region, resize, spatial, temporal

BREADTH, DEPTH = "breadth", "depth"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


@dataclasses.dataclass(frozen=True)
class Param:
    """One op parameter.

    Attributes:
      name: keyword name (`sigma`, `factor`, ...).
      type: `int`, `float` or `str`.
      default: default value, or REQUIRED.
      low, high: inclusive numeric bounds (None: unbounded).
      low_open: the lower bound is exclusive.
      choices: allowed values of a `str` parameter.
      doc: one line for listings.
    """
    name: str
    type: type
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def range_text(self) -> str:
        """The valid values in words, e.g. `[1, 8]`, `(0, 100]`, `one of area, bicubic`."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        lo = "-inf" if self.low is None else _format_value(self.low)
        hi = "inf" if self.high is None else _format_value(self.high)
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}{']' if self.high is not None else ')'}"

    def convert(self, op: str, raw: Any) -> Any:
        """Converts a spec token or Python value to this parameter's type and checks its range.

        Raises:
          ValueError: naming the op, the parameter, the value and the valid range.
        """
        where = f"{op}: parameter {self.name}={raw!s}"
        if self.type is str:
            value = str(raw)
            if self.choices is not None and value not in self.choices:
                raise ValueError(f"{where} is not valid; expected {self.range_text()}")
            return value
        if isinstance(raw, bool):
            raise ValueError(f"{where} must be a number, got a boolean")
        if self.type is int:
            if (isinstance(raw, (int, np.integer)) or (isinstance(raw, float) and raw.is_integer())
                    or (isinstance(raw, str) and _INT.match(raw))):
                value = int(raw)
            else:
                raise ValueError(f"{where} must be an integer in {self.range_text()}")
        else:
            if isinstance(raw, (int, float, np.integer, np.floating)):
                value = float(raw)
            elif isinstance(raw, str) and _FLOAT.match(raw):
                value = float(raw)
            else:
                raise ValueError(f"{where} must be a number in {self.range_text()}")
            if not math.isfinite(value):
                raise ValueError(f"{where} must be finite, in {self.range_text()}")
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and value > self.high
        if below or above:
            raise ValueError(f"{where} is out of range {self.range_text()}")
        return value


def _format_value(value: Any) -> str:
    """Shortest spec spelling of a value: 4.0 -> '4', 0.05 -> '0.05', 'bicubic' -> 'bicubic'."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class Op:
    """A registered minimization op.

    Attributes:
      name: spec name (`blur`).
      fn: `fn(clips, **params) -> clips` on `(B, T, H, W, C)` batches; pure jnp, static shapes.
      params: declared parameters, in positional order.
      kind: BREADTH (changes which frames are exposed) or DEPTH (changes what a frame shows).
      commutes_with_ts: applying it before or after temporal sampling gives the same frames.
      preserves_shape: output shape equals input shape (required for `@region` restriction).
      doc: one-line description.
      positional: how many leading parameters the canonical spec writes positionally (the first always,
        the others up to the last one that differs from its default); later ones are written as
        `name=value`, and only when they differ from their default.
      frames: `frames(T, **params) -> kept frame indices`; None keeps every frame.
      shape: `shape(T, H, W, **params) -> (T', H', W')`, raising ValueError for shapes the op cannot take;
        None keeps the shape.
      map_mask: `map_mask(mask, **params)` carries `(B, T, H, W)` region masks through a shape-changing op.
    """
    name: str
    fn: Callable[..., jax.Array]
    params: tuple[Param, ...]
    kind: str
    commutes_with_ts: bool
    preserves_shape: bool
    doc: str
    positional: int = 0
    frames: Callable[..., np.ndarray] | None = None
    shape: Callable[..., tuple[int, int, int]] | None = None
    map_mask: Callable[..., jax.Array] | None = None

    def bind(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validates arguments against the declared parameters.

        Args:
          args: positional values (spec tokens or Python values), in declaration order.
          kwargs: keyword values.

        Returns:
          Every parameter's value (defaults filled in), in declaration order.

        Raises:
          ValueError: too many positional arguments, unknown/duplicate/missing parameter, bad value.
        """
        kwargs = dict(kwargs or {})
        names = [p.name for p in self.params]
        if len(args) > len(self.params):
            raise ValueError(f"{self.name} takes at most {len(self.params)} argument(s) "
                             f"({self.signature()}), got {len(args)}")
        raw = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise ValueError(f"{self.name} has no parameter {key!r}; parameters: {self.signature()}")
            if key in raw:
                raise ValueError(f"{self.name}: parameter {key!r} given twice")
            raw[key] = value
        out = {}
        for p in self.params:
            if p.name in raw:
                out[p.name] = p.convert(self.name, raw[p.name])
            elif p.required:
                raise ValueError(f"{self.name} needs parameter {p.name!r} ({p.range_text()}); "
                                 f"usage: {self.signature()}")
            else:
                out[p.name] = p.default
        return out

    def signature(self) -> str:
        """Usage line, e.g. `ds(factor, method=area)`."""
        parts = [p.name if p.required else f"{p.name}={_format_value(p.default)}" for p in self.params]
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def format(self, params: Mapping[str, Any]) -> str:
        """Canonical spelling of this op with bound `params` (see `positional`)."""
        values = [params[p.name] for p in self.params]
        differs = [p.required or params[p.name] != p.default for p in self.params]
        # The first positional parameter is always written (`mask(25)` rather than `mask`, so grid labels name
        # the setting); later ones up to the last that differs from its default.
        last = max([i for i in range(self.positional) if differs[i] or i == 0], default=-1)
        parts = [_format_value(v) for v in values[:last + 1]]
        parts += [f"{p.name}={_format_value(params[p.name])}"
                  for i, p in enumerate(self.params) if i >= self.positional and differs[i]]
        return f"{self.name}({','.join(parts)})" if parts else self.name


OPS: dict[str, Op] = {}
# Spec words that mean "no minimization" (the reference row of a grid).
IDENTITY_NAMES = ("identity", "raw")
# Spec sugar for detected regions (see `sugar`): `faces(blur=4)` is `blur(4)@face`, `people(...)` uses `@person`.
REGION_SUGAR = {"faces": "face", "people": "person"}


def register_op(op: Op) -> Op:
    """Adds `op` to the registry (replacing an op of the same name) and returns it."""
    if op.name in IDENTITY_NAMES:
        raise ValueError(f"{op.name!r} is reserved for the identity pipeline")
    if op.name in REGION_SUGAR:
        raise ValueError(f"{op.name!r} is reserved for the region sugar {op.name}(...) (ops @{REGION_SUGAR[op.name]})")
    if op.kind not in (BREADTH, DEPTH):
        raise ValueError(f"op {op.name!r}: kind must be {BREADTH!r} or {DEPTH!r}, got {op.kind!r}")
    OPS[op.name] = op
    return op


def get_op(name: str) -> Op:
    """The registered op called `name`.

    Raises:
      ValueError: unknown name; the message lists the known ops.
    """
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))} "
                         f"(and {'/'.join(IDENTITY_NAMES)} for no minimization; "
                         f"{', '.join(n + '(...)' for n in REGION_SUGAR)} for detected regions)")
    return OPS[name]


# ---- built-in ops ---------------------------------------------------------------------------------------

def _downsample(clips, factor, method):
    return (resize.bicubic_downsample if method == "bicubic" else resize.area_downsample)(clips, factor)


def _downsample_shape(t, h, w, factor, method):
    resize.check_divisible(h, w, factor, f"ds({factor}{',' + method if method != 'area' else ''})")
    return t, h // factor, w // factor


register_op(Op(
    "ts", lambda clips, stride: temporal.temporal_sample(clips, stride),
    (Param("stride", int, low=1, high=10_000, doc="keep every stride-th frame, starting at frame 0"),),
    kind=BREADTH, commutes_with_ts=True, preserves_shape=False, positional=1,
    doc="temporal sampling: frames 0, s, 2s, ...",
    frames=lambda t, stride: temporal.sample_indices(t, stride),
    shape=lambda t, h, w, stride: (-(-t // stride), h, w),
    map_mask=lambda mask, stride: temporal.temporal_sample(mask, stride)))

register_op(Op(
    "ds", _downsample,
    (Param("factor", int, low=1, high=64, doc="integer downsampling factor"),
     Param("method", str, "area", choices=("area", "bicubic"), doc="block mean or PIL antialiased bicubic")),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=False, positional=2,
    doc="spatial downsampling by an integer factor",
    shape=_downsample_shape,
    map_mask=lambda mask, factor, method: region.downsample_mask(mask, factor)))

register_op(Op(
    "blur", lambda clips, sigma: blur.gaussian_blur(clips, sigma),
    (Param("sigma", float, low=0.0, high=64.0, doc="Gaussian std in pixels (PIL's radius)"),),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=True, positional=1,
    doc="Gaussian blur, PIL GaussianBlur semantics"))

register_op(Op(
    "mask", lambda clips, threshold: spatial.threshold_mask(clips, threshold),
    (Param("threshold", float, 25.0, low=0.0, high=255.0, doc="luminance threshold in grey levels"),),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=True, positional=1,
    doc="global binary threshold on luminance (silhouette-like image)"))

register_op(Op(
    "bgsub", lambda clips, **kw: background.remove_background(clips, **kw),
    (Param("warmup", int, 20, low=1, high=100_000, doc="frames that initialise the background model"),
     Param("alpha", float, 0.05, low=0.0, high=1.0, doc="background learning rate"),
     Param("k", float, 2.5, low=0.0, high=100.0, low_open=True, doc="foreground threshold in std"),
     Param("min_std", float, 6.0, low=0.0, high=255.0, doc="std floor in grey levels")),
    kind=DEPTH, commutes_with_ts=False, preserves_shape=True, positional=0,
    doc="background removal: running-Gaussian model, 3x3 open+close, background set to 0"))

register_op(Op(
    "pixelate", lambda clips, block: spatial.pixelate(clips, block),
    (Param("block", int, low=1, high=1024, doc="tile side in pixels"),),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=True, positional=1,
    doc="block mean upsampled back to full size"))

register_op(Op(
    "quant", lambda clips, bits: spatial.quantize(clips, bits),
    (Param("bits", int, low=1, high=8, doc="bits per channel"),),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=True, positional=1,
    doc="uniform colour quantisation to 2**bits levels per channel"))

register_op(Op(
    "black", lambda clips: spatial.black(clips), (),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=True,
    doc="every pixel set to 0 (use it restricted to a region: black@face)"))

register_op(Op(
    "gray", lambda clips: spatial.gray(clips), (),
    kind=DEPTH, commutes_with_ts=True, preserves_shape=True,
    doc="ITU-R 601 luminance replicated to every channel"))
