"""The built-in synthetic benchmark: procedural videos whose action and privacy cues are known per pixel.

Actions mode (`generate_actions`): one actor on a static textured background (optionally panned slowly) moves
along an action-specific trajectory; five privacy attributes, each a localised cue of a different kind, are
sampled independently of the action (Bernoulli 0.5 each):

  =============  ====================================================  ======================
  attribute      cue when 1 (absent or neutral when 0)                 kind
  =============  ====================================================  ======================
  skin_color     head, arms (and bare torso) in the dark skin group    colour
  face           high-frequency identity texture on the head           texture (fine)
  gender         flared dress-shaped torso instead of a block          shape
  nudity         bare, smooth skin torso instead of striped clothes    body texture / colour
  relationship   a second (hooded) person beside the actor             presence
  =============  ====================================================  ======================

**The action is only in the motion.** The world is a torus (the actor wraps round the frame edges), the
position is uniform, and every pose variable that an action animates (leg swing, raised-arm angle, body yaw,
hop height) is, in the other actions, frozen at a value drawn from the same distribution as the animated one at
a random phase. So the distribution of any single frame is exactly the same for every action and every frame
index; only the change between frames tells the action (`tests/test_synthetic.py` checks this with a
classifier that must fail on single frames and succeed on clips).

Surveillance mode lives in `synthetic_surveillance.py` and is re-exported here.
Everything is vectorised over chunks of clips and deterministic from the seed; chunk c of a dataset is drawn
from its own stream (seed, c), so the first k clips of a dataset do not depend on how many are drawn.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from anonvid.data.synthetic_person import (CLOTHES, Look, Pose, draw_companion, draw_person, sample_look)
from anonvid.data.synthetic_render import Canvas, background
from anonvid.data.synthetic_surveillance import (ANOMALY_TYPES, generate_surveillance,  # noqa: F401
                                                  surveillance_split)

# A "spin" (body yaw) action was dropped: at 32x32 the raised arm swapping sides as the body turns looked like a
# wave, and a small R3D confused the two (spin recall 0.56, 2026-11-28). The body yaw stays a frozen random pose
# variable of every clip.
ACTIONS: tuple[str, ...] = ("walk_left", "walk_right", "walk_up", "walk_down", "jump", "wave", "circle")
PRIVACY_ATTRIBUTES: tuple[str, ...] = ("skin_color", "face", "gender", "nudity", "relationship")
SPLITS: tuple[str, ...] = ("train", "val", "test")

CHUNK = 128  # clips per random stream and per vectorised batch: small enough to stay in cache
MIN_SIZE = 24  # below this the actor's cues are no longer a few pixels large

# Motion parameters in body units per frame (one unit = min(H, W) / 72 px) and periods in frames. Periods are
# in frames, not fractions of the clip, so a shorter clip shows the same motion for less long.
WALK_SPEED = 3.5
HOP_HEIGHT, HOP_PERIOD = 12.0, 6.0
CIRCLE_RADIUS, CIRCLE_PERIOD = 10.0, 8.0
WAVE_PERIOD, STRIDE_PERIOD = 4.5, 6.0
STRIDE = 0.5  # leg swing amplitude, radians
PAN_SPEED = 0.25  # maximum camera pan, units per frame
COMPANION_OFFSET = 15.0


def split_seed(seed: int, split: str, mode: str = "actions") -> int:
    """Returns the generator seed of a split: disjoint streams for train/val/test and for each mode.

    Args:
      seed: dataset seed.
      split: one of 'train', 'val', 'test'.
      mode: 'actions' or 'surveillance'.

    Returns:
      A non-negative int seed.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    seq = np.random.SeedSequence([int(seed), SPLITS.index(split), 0 if mode == "actions" else 1])
    return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))


def check_clip_shape(num_frames: int, height: int, width: int, *, min_frames: int = 2) -> None:
    """Raises ValueError for clip shapes the generators cannot draw meaningfully."""
    if int(num_frames) < min_frames:
        raise ValueError(f"num_frames={num_frames}: need at least {min_frames} frames (motion needs two)")
    if min(int(height), int(width)) < MIN_SIZE:
        raise ValueError(f"frame size {height}x{width} is too small: height and width must be >= {MIN_SIZE}")


def generate_actions(num_clips: int, *, seed: int, num_frames: int = 16, height: int = 64, width: int = 64,
                     camera_pan: bool = True) -> dict[str, np.ndarray]:
    """Generates action clips with per-pixel privacy and action ground truth.

    Args:
      num_clips: number of clips N (>= 0).
      seed: random seed; the same seed and arguments give the same bytes.
      num_frames: frames per clip T (>= 2).
      height, width: frame size (>= 24 each).
      camera_pan: whether the camera pans slowly (random direction and speed per clip).

    Returns:
      dict with
        video: uint8 (N, T, H, W, 3);
        action: int32 (N,), index into ACTIONS;
        privacy: int32 (N, 5) in {0, 1}, PRIVACY_ATTRIBUTES order;
        privacy_mask: uint8 (N, T, H, W), bit i set where attribute i's cue is visible (only if it is 1);
        action_mask: uint8 (N, T, H, W) in {0, 1}, the actor's body (not the companion).
    """
    num_clips, t, h, w = _check_actions_args(num_clips, num_frames, height, width)
    out = _empty_actions(num_clips, t, h, w)
    for start in range(0, num_clips, CHUNK):
        stop = min(start + CHUNK, num_clips)
        _action_chunk(_chunk_rng(seed, start), {k: v[start:stop] for k, v in out.items()}, bool(camera_pan))
    return out


def iter_action_chunks(num_clips: int, *, seed: int, num_frames: int = 16, height: int = 64, width: int = 64,
                       camera_pan: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """Yields `generate_actions` output in chunks of up to CHUNK clips (bounded memory for large datasets).

    Arguments as for `generate_actions`; concatenating the chunks gives exactly its output.
    """
    num_clips, t, h, w = _check_actions_args(num_clips, num_frames, height, width)
    for start in range(0, num_clips, CHUNK):
        out = _empty_actions(min(CHUNK, num_clips - start), t, h, w)
        _action_chunk(_chunk_rng(seed, start), out, bool(camera_pan))
        yield out


def _check_actions_args(num_clips, num_frames, height, width) -> tuple[int, int, int, int]:
    if int(num_clips) < 0:
        raise ValueError(f"num_clips={num_clips} must be >= 0")
    check_clip_shape(num_frames, height, width)
    return int(num_clips), int(num_frames), int(height), int(width)


def _chunk_rng(seed: int, start: int) -> np.random.Generator:
    # One stream per chunk of CHUNK clips: the first k clips do not depend on how many are drawn.
    return np.random.default_rng(np.random.SeedSequence([int(seed), start // CHUNK]))


def _empty_actions(n: int, t: int, h: int, w: int) -> dict[str, np.ndarray]:
    return {"video": np.empty((n, t, h, w, 3), np.uint8), "action": np.empty((n,), np.int32),
            "privacy": np.empty((n, 5), np.int32), "privacy_mask": np.empty((n, t, h, w), np.uint8),
            "action_mask": np.empty((n, t, h, w), np.uint8)}


def _action_chunk(rng: np.random.Generator, out: dict[str, np.ndarray], pan: bool) -> None:
    """Draws len(out['action']) <= CHUNK clips into the arrays of `out` (views of the caller's output).

    Random draws are always made for a full CHUNK and then cut to size, so that clip i of a chunk does not
    depend on how many clips the chunk holds.
    """
    m, t, h, w, _ = out["video"].shape
    n = CHUNK
    unit = min(h, w) / 72.0
    action = rng.integers(0, len(ACTIONS), n).astype(np.int32)
    privacy = rng.integers(0, 2, (n, len(PRIVACY_ATTRIBUTES))).astype(np.int32)
    look = sample_look(rng, privacy, unit)
    companion_cloth = np.clip(CLOTHES[rng.integers(0, len(CLOTHES), n)] * 0.8, 0, 255).astype(np.uint8)[:m]
    companion_side = np.where(rng.random(n) < 0.5, -1.0, 1.0)[:m]

    # Camera: a background larger than the frame, cropped at a slowly moving offset.
    pan_speed = rng.uniform(0, PAN_SPEED * unit, n)[:m] * float(pan)
    pan_dir = rng.uniform(0, 2 * np.pi, n)[:m]
    margin = int(np.ceil(PAN_SPEED * unit * (t - 1))) + 1
    motion = _sample_motion(rng, action, h, w, unit)
    bg = background(rng, n, h + 2 * margin, w + 2 * margin, unit)[:m]
    action, privacy, look = action[:m], privacy[:m], _first(look, m)
    out["action"][:], out["privacy"][:] = action, privacy
    video, pmask, amask = out["video"], out["privacy_mask"], out["action_mask"]
    pmask[...] = 0
    amask[...] = 0
    for f in range(t):
        oy = np.rint(pan_speed * np.sin(pan_dir) * f).astype(np.int64)
        ox = np.rint(pan_speed * np.cos(pan_dir) * f).astype(np.int64)
        for i in range(m):  # plain slices: much faster than one fancy-indexed gather
            video[i, f] = bg[i, margin + oy[i]:margin + oy[i] + h, margin + ox[i]:margin + ox[i] + w]
        canvas = Canvas(video, pmask, amask, frame=f)
        # Image position = world position minus camera offset, wrapped onto the torus by Canvas.box.
        pose = Pose(**{k: v[:m] for k, v in dataclasses.asdict(motion(f)).items()})
        pose.cy, pose.cx = pose.cy - oy, pose.cx - ox
        draw_companion(canvas, companion_cloth, pose.cy, pose.cx + companion_side * COMPANION_OFFSET * unit, unit,
                       privacy[:, 4] == 1)
        draw_person(canvas, look, pose, unit, act=1)


def _first(look: Look, m: int) -> Look:
    return dataclasses.replace(look, **{k: getattr(look, k)[:m] for k in ("privacy", "skin", "cloth", "trousers",
                                                                         "face")})


def _sample_motion(rng: np.random.Generator, action: np.ndarray, h_px: int, w_px: int, unit: float):
    """Returns pose(frame) for the chunk: each action animates some pose variables, the rest stay frozen.

    A frozen variable takes the value of the animated one at a random phase, so every frame's pose follows the
    same distribution whatever the action (see the module docstring).
    """
    n = len(action)
    name = np.array(ACTIONS)[action]
    y0, x0 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)  # uniform on the torus, in frame fractions
    speed = rng.uniform(0.85, 1.15, n)  # per-clip tempo of every motion
    phases = rng.uniform(0, 1, (n, 4))  # stride, hop, wave, circle
    yaw0 = rng.uniform(0, 2 * np.pi, n)
    turn = np.where(rng.random(n) < 0.5, -1.0, 1.0)  # direction of circling
    raised_left = rng.random(n) < 0.5  # the one arm that waves (or is held up, frozen, in other actions)
    rest_arm = np.radians(rng.uniform(8, 35, n))

    walk_dir = {"walk_left": (0, -1), "walk_right": (0, 1), "walk_up": (-1, 0), "walk_down": (1, 0)}
    vy = np.array([walk_dir.get(a, (0, 0))[0] for a in name], np.float64) * WALK_SPEED * unit * speed
    vx = np.array([walk_dir.get(a, (0, 0))[1] for a in name], np.float64) * WALK_SPEED * unit * speed
    walking = np.char.startswith(name, "walk")
    animated = {k: (name == k) for k in ("jump", "wave", "circle")}

    def pose(f: int) -> Pose:
        def phase(i, period, on):  # phase advances only while the variable is animated
            return phases[:, i] + np.where(on, speed * f / period, 0.0)

        stride = STRIDE * np.sin(2 * np.pi * phase(0, STRIDE_PERIOD, walking))
        hop = -HOP_HEIGHT * unit * np.abs(np.sin(np.pi * phase(1, HOP_PERIOD, animated["jump"])))
        wave = np.radians(95 + 60 * np.sin(2 * np.pi * phase(2, WAVE_PERIOD, animated["wave"])))
        ring = 2 * np.pi * turn * phase(3, CIRCLE_PERIOD, animated["circle"])
        yaw = yaw0
        # The torus absorbs any constant offset, so frozen hop/circle offsets need not be drawn at all.
        cy = y0 * h_px + vy * f + hop + np.where(animated["circle"], CIRCLE_RADIUS * unit * np.sin(ring), 0.0)
        cx = x0 * w_px + vx * f + np.where(animated["circle"], CIRCLE_RADIUS * unit * np.cos(ring), 0.0)
        return Pose(cy=cy, cx=cx, lean=np.zeros(n), yaw=yaw, leg=stride,
                    arm_l=np.where(raised_left, wave, rest_arm), arm_r=np.where(raised_left, rest_arm, wave))

    return pose


def tubelet_privacy_fraction(privacy_mask: np.ndarray, tubelet: tuple[int, int, int] = (2, 8, 8)) -> np.ndarray:
    """Fraction of each tubelet's pixels that show any privacy cue.

    Args:
      privacy_mask: uint8 (N, T, H, W) privacy bits.
      tubelet: (t, h, w) tubelet size; must divide (T, H, W).

    Returns:
      float32 (N, T/t, H/h, W/w) in [0, 1].
    """
    m = np.asarray(privacy_mask)
    if m.ndim != 4:
        raise ValueError(f"privacy_mask must be (N, T, H, W); got shape {m.shape}")
    tt, th, tw = (int(v) for v in tubelet)
    n, t, h, w = m.shape
    if min(tt, th, tw) < 1 or t % tt or h % th or w % tw:
        raise ValueError(f"tubelet {tubelet} must be positive and divide the clip shape (T, H, W)={(t, h, w)}")
    any_bit = (m != 0).reshape(n, t // tt, tt, h // th, th, w // tw, tw)
    return any_bit.mean(axis=(2, 4, 6), dtype=np.float32)


def actions_split(split: str, num_clips: int, *, seed: int = 0, **kw) -> dict[str, np.ndarray]:
    """`generate_actions` for one split ('train', 'val' or 'test'); the splits use disjoint random streams.

    Args:
      split: 'train', 'val' or 'test'.
      num_clips: number of clips.
      seed: dataset seed.
      **kw: further `generate_actions` arguments (num_frames, height, width, camera_pan).

    Returns:
      As `generate_actions`.
    """
    return generate_actions(num_clips, seed=split_seed(seed, split, "actions"), **kw)
