"""Minimization specs: the string grammar, its parser and the pipelines it produces.

Grammar (whitespace allowed between tokens)::

    spec   := "" | "identity" | "raw" | op ("|" op)*
    op     := name ["(" [arg ("," arg)*] ")"] ["@" region]
    arg    := value | key "=" value
    value  := number | word

Examples: `"ts(5)|blur(4)"`, `"ds(2,bicubic)|mask(25)"`, `"gray"`, `"bgsub(warmup=20)"`, `"blur(4)@person"`.
Ops run left to right. `@region` restricts a shape-preserving op to a mask passed at call time. The region
sugar `faces(blur=4)`, `faces(pixelate=8)`, `faces(black)` (and `people(...)`) stands for `blur(4)@face`,
`pixelate(8)@face`, `black@face` (`@person`); see `sugar`. Every
malformed spec raises ValueError naming the bad token and its 0-based character position. A parsed pipeline
prints as its canonical spec (`str(parse(s))`), and parsing the canonical spec gives the same pipeline.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Mapping

import jax
import numpy as np

from anonvid.minimize import pixels, region, sugar
from anonvid.minimize.registry import BREADTH, DEPTH, IDENTITY_NAMES, REGION_SUGAR, Op, get_op

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_NUMBER_START = re.compile(r"[+\-.\d]")


@dataclasses.dataclass(frozen=True)
class OpCall:
    """One op of a pipeline with its bound parameters.

    Attributes:
      name: registered op name.
      params: `(name, value)` pairs for every parameter, in declaration order.
      region: mask name the op is restricted to, or None for the whole frame.
    """
    name: str
    params: tuple[tuple[str, Any], ...]
    region: str | None = None

    @property
    def op(self) -> Op:
        return get_op(self.name)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def __str__(self) -> str:
        text = self.op.format(self.kwargs)
        return f"{text}@{self.region}" if self.region else text

    def __call__(self, clips: jax.Array) -> jax.Array:
        """Runs the op on the whole frame (ignoring `region`)."""
        return self.op.fn(clips, **self.kwargs)


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A parsed minimization spec: ops applied left to right.

    Hashable and immutable, so `jax.jit(pipeline.apply)` compiles one program per pipeline and input shape.
    """
    ops: tuple[OpCall, ...] = ()

    # ---- description ------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return "|".join(str(c) for c in self.ops) if self.ops else "identity"

    def __repr__(self) -> str:
        return f"Pipeline({str(self)!r})"

    def __or__(self, other: Pipeline) -> Pipeline:
        return Pipeline(self.ops + other.ops)

    @property
    def spec(self) -> str:
        """Canonical spec string."""
        return str(self)

    @property
    def is_identity(self) -> bool:
        return not self.ops

    @property
    def breadth_ops(self) -> tuple[str, ...]:
        """Names of breadth ops (which frames are exposed), in order."""
        return tuple(c.name for c in self.ops if c.op.kind == BREADTH)

    @property
    def depth_ops(self) -> tuple[str, ...]:
        """Names of depth ops (how much detail a frame keeps), in order."""
        return tuple(c.name for c in self.ops if c.op.kind == DEPTH)

    @property
    def has_breadth(self) -> bool:
        return bool(self.breadth_ops)

    @property
    def has_depth(self) -> bool:
        return bool(self.depth_ops)

    @property
    def regions(self) -> tuple[str, ...]:
        """Mask names the pipeline needs at call time, in first-use order."""
        return tuple(dict.fromkeys(c.region for c in self.ops if c.region))

    @property
    def commutes_with_ts(self) -> bool:
        """True when every op commutes with temporal sampling."""
        return all(c.op.commutes_with_ts for c in self.ops)

    @property
    def preserves_shape(self) -> bool:
        return all(c.op.preserves_shape for c in self.ops)

    # ---- shapes and frames ------------------------------------------------------------------------------
    def frame_indices(self, num_frames: int) -> np.ndarray:
        """Input frame indices that survive the pipeline, in output order.

        Args:
          num_frames: T of the input clips.

        Returns:
          int array of length T' (use it to subsample per-frame labels).
        """
        idx = np.arange(num_frames)
        for call in self.ops:
            if call.op.frames is not None:
                idx = idx[call.op.frames(len(idx), **call.kwargs)]
        return idx

    def output_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """`(T', H', W')` of the output for `(T, H, W)` input.

        Raises:
          ValueError: an op cannot take the shape it would receive (e.g. ds with a non-dividing factor).
        """
        shape = (num_frames, height, width)
        for call in self.ops:
            if call.op.shape is not None:
                shape = call.op.shape(*shape, **call.kwargs)
        return shape

    # ---- application ------------------------------------------------------------------------------------
    def apply(self, clips: jax.Array, masks: Mapping[str, jax.Array] | None = None) -> jax.Array:
        """Applies the pipeline to a batch of clips.

        Args:
          clips: `(B, T, H, W, C)` uint8 or float clips, C in {1, 3}.
          masks: region name -> `(B, T, H, W)` boolean mask, for ops written `op@name`; given at the input's
            length and resolution (they follow ts and ds through the pipeline). Unused masks are ignored.

        Returns:
          `(B, T', H', W', C)` clips of the input dtype, `(T', H', W') = output_shape(T, H, W)`.

        Raises:
          ValueError: bad clips, a missing or mis-shaped mask, or a shape an op cannot take.
        """
        pixels.check_clips(clips, f"minimize {self}")
        _, t, h, w, _ = clips.shape
        self.output_shape(t, h, w)  # shape errors up front, before any work
        live = region.check_masks(masks, tuple(clips.shape), self.regions) if self.regions else {}
        return _compiled(self)(clips, live)

    def _run(self, clips: jax.Array, masks: dict[str, jax.Array]) -> jax.Array:
        x = clips
        for call in self.ops:
            if call.region is not None:
                x = region.apply_in_region(call, x, masks[call.region])
            else:
                x = call(x)
            if masks and call.op.map_mask is not None:
                masks = {name: call.op.map_mask(m, **call.kwargs) for name, m in masks.items()}
        return x

    __call__ = apply


@functools.lru_cache(maxsize=256)
def _compiled(pipeline: Pipeline):
    """One jitted program per pipeline (jax caches it per input shape and dtype).

    Op-by-op (eager) execution compiled every primitive separately and ran the ~100 small kernels of a
    blur or background removal one at a time; inside a caller's jit this is simply inlined.
    """
    return jax.jit(pipeline._run)


# ---- parser ---------------------------------------------------------------------------------------------

def _split_ops(spec: str) -> list[tuple[str, int]]:
    """Splits at top-level `|`, checking parentheses; returns `(text, start position)` per op."""
    pieces, start, opened = [], 0, None
    for i, ch in enumerate(spec):
        if ch == "(":
            if opened is not None:
                raise ValueError(f"nested '(' at position {i} in spec {spec!r} (the '(' at position {opened} "
                                 "is still open)")
            opened = i
        elif ch == ")":
            if opened is None:
                raise ValueError(f"unbalanced ')' at position {i} in spec {spec!r}")
            opened = None
        elif ch == "|":
            if opened is not None:
                raise ValueError(f"unbalanced '(' at position {opened} in spec {spec!r}: missing ')' before "
                                 f"'|' at position {i}")
            pieces.append((spec[start:i], start))
            start = i + 1
    if opened is not None:
        raise ValueError(f"unbalanced '(' at position {opened} in spec {spec!r}: missing ')'")
    pieces.append((spec[start:], start))
    return pieces


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _parse_args(text: str, offset: int, spec: str) -> tuple[list[str], dict[str, str]]:
    """Parses `a, b, key=c` (text between the parentheses, starting at `offset` in `spec`)."""
    args, kwargs = [], {}
    if not text.strip():
        return args, kwargs
    pos = offset
    for piece in text.split(","):
        token = piece.strip()
        at = pos + (len(piece) - len(piece.lstrip()))
        pos += len(piece) + 1
        if not token:
            raise ValueError(f"empty argument at position {at} in spec {spec!r}")
        key = None
        if "=" in token:
            key, _, token = (s.strip() for s in token.partition("="))
            if not _NAME.fullmatch(key):
                raise ValueError(f"bad parameter name {key!r} at position {at} in spec {spec!r}")
            if not token:
                raise ValueError(f"missing value for {key!r} at position {at} in spec {spec!r}")
            at = spec.index(token, at + len(key))
        if _NUMBER_START.match(token):
            if not _NUMBER.match(token):
                raise ValueError(f"bad number {token!r} at position {at} in spec {spec!r}")
        elif not _NAME.fullmatch(token):
            raise ValueError(f"bad argument {token!r} at position {at} in spec {spec!r}")
        if key is None:
            if kwargs:
                raise ValueError(f"positional argument {token!r} at position {at} follows a keyword argument "
                                 f"in spec {spec!r}")
            args.append(token)
        else:
            if key in kwargs:
                raise ValueError(f"parameter {key!r} given twice (position {at}) in spec {spec!r}")
            kwargs[key] = token
    return args, kwargs


def _parse_op(text: str, start: int, spec: str) -> OpCall | None:
    """Parses one op; None for the identity words."""
    i = _skip_space(text, 0)
    if i == len(text):
        raise ValueError(f"empty op at position {start + i} in spec {spec!r}")
    m = _NAME.match(text, i)
    if not m:
        raise ValueError(f"expected an op name at position {start + i}, got {text[i:].strip()!r} in spec "
                         f"{spec!r}")
    name, name_at = m.group(), start + i
    i = _skip_space(text, m.end())
    args, kwargs = [], {}
    if i < len(text) and text[i] == "(":
        close = text.index(")", i)  # _split_ops guarantees a matching, un-nested ')'
        args, kwargs = _parse_args(text[i + 1:close], start + i + 1, spec)
        i = _skip_space(text, close + 1)
    where = None
    if i < len(text) and text[i] == "@":
        j = _skip_space(text, i + 1)
        m = _NAME.match(text, j)
        if not m:
            raise ValueError(f"expected a region name after '@' at position {start + i} in spec {spec!r}")
        where = m.group()
        i = _skip_space(text, m.end())
    if i < len(text):
        raise ValueError(f"unexpected {text[i:].strip()!r} at position {start + i} in spec {spec!r}")
    if name in REGION_SUGAR:
        if where is not None:
            raise ValueError(f"{name}(...) at position {name_at} already names its region "
                             f"({REGION_SUGAR[name]}); drop '@{where}' in spec {spec!r}")
        try:
            op_name, params, where = sugar.expand(name, args, kwargs)
        except ValueError as err:
            raise ValueError(f"{err} (at position {name_at} in spec {spec!r})") from None
        return OpCall(op_name, tuple(params.items()), where)
    if name in IDENTITY_NAMES:
        if args or kwargs or where:
            raise ValueError(f"{name!r} at position {name_at} takes no arguments or region in spec {spec!r}")
        return None
    try:
        op = get_op(name)
    except ValueError as err:
        raise ValueError(f"{err} (at position {name_at} in spec {spec!r})") from None
    try:
        params = op.bind(args, kwargs)
    except ValueError as err:
        raise ValueError(f"{err} (op at position {name_at} in spec {spec!r})") from None
    if where is not None and not op.preserves_shape:
        raise ValueError(f"{op.format(params)}@{where} at position {name_at} in spec {spec!r}: {name} changes the "
                         f"clip shape, so it cannot be "
                         f"restricted to a region; only shape-preserving ops can (e.g. blur, pixelate, gray)")
    return OpCall(name, tuple(params.items()), where)


@functools.lru_cache(maxsize=1024)
def parse(spec: str) -> Pipeline:
    """Parses a minimization spec into a pipeline.

    Args:
      spec: e.g. `"ts(5)|blur(4)"`; `""`, `"identity"` and `"raw"` give the identity pipeline.

    Returns:
      The pipeline; `str(pipeline)` is the canonical spec.

    Raises:
      ValueError: malformed spec (message names the token and its position), unknown op (lists the known
        ops), bad parameter (names op, parameter, value and valid range), region on a shape-changing op.
    """
    if isinstance(spec, Pipeline):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a minimization spec must be a string, got {type(spec).__name__}")
    if not spec.strip():
        return Pipeline(())
    calls = [_parse_op(text, start, spec) for text, start in _split_ops(spec)]
    return Pipeline(tuple(c for c in calls if c is not None))


def apply(spec: str | Pipeline, clips: jax.Array, masks: Mapping[str, jax.Array] | None = None) -> jax.Array:
    """Parses `spec` (cached) and applies it: `parse(spec).apply(clips, masks)`."""
    return parse(spec).apply(clips, masks)
