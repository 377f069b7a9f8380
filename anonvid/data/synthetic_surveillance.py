"""Surveillance mode of the synthetic benchmark: long fixed-camera clips for video anomaly detection.

Normal behaviour: a few people walk in one shared direction per video (the "flow": left, right, up or down) at
walking speed, each in its own lane, entering and leaving through the frame edges. Anomalies are events over
frame intervals, drawn on top of the crowd:

- ``run``: a person moving with the flow at about 3.5x walking speed;
- ``wrong_way``: a person walking against the flow;
- ``fall``: a person walking normally falls over, lies for a while, gets up and walks on (anomalous only
  while falling, lying and getting up);
- ``object``: a small bright object crossing the scene fast in any direction.

A frame is anomalous iff a pixel of an anomalous entity (in its anomalous phase) is visible in it, so the
frame labels and the pixel masks agree by construction. The training split has no anomalies.
"""
from __future__ import annotations

import numpy as np

from anonvid.data.synthetic_person import Look, Pose, draw_person, sample_look
from anonvid.data.synthetic_render import Canvas, background, disc

ANOMALY_TYPES: tuple[str, ...] = ("none", "run", "wrong_way", "fall", "object")
CHUNK = 16  # videos per random stream
PERSONS = 4  # lanes of normal walkers per video
EVENTS = 2  # event slots per video (the second is used with probability 0.5)
SCALE = 0.6  # people are smaller than in the actions mode: a wide view
EXTENT = 24.0  # body units from the hips to the farthest pixel of a person (arms, fallen body)
WALK = 1.2  # body units per frame
RUN_FACTOR, OBJECT_SPEED, OBJECT_R = 3.5, 7.0, 5.0
STRIDE, STRIDE_PERIOD = 0.45, 7.0
FALL_RAMP = 3.0  # frames to fall over / to get up


def generate_surveillance(num_videos: int, *, seed: int, num_frames: int = 200, height: int = 64, width: int = 64,
                          anomalies: bool = True) -> dict[str, np.ndarray]:
    """Generates fixed-camera videos of people walking, with optional anomalous events.

    Args:
      num_videos: number of videos V (>= 0).
      seed: random seed; the same seed and arguments give the same bytes.
      num_frames: frames per video F (>= 2).
      height, width: frame size (>= 24 each).
      anomalies: whether to add 1-2 anomalous events per video (starting in the first 60% of the video).

    Returns:
      dict with
        video: uint8 (V, F, H, W, 3);
        anomaly: uint8 (V, F) frame labels (1 = an anomalous entity is visible);
        anomaly_type: uint8 (V, F) index into ANOMALY_TYPES (the topmost visible event; 0 = normal);
        anomaly_mask: uint8 (V, F, H, W) in {0, 1}, pixels of the anomalous entity;
        privacy_mask: uint8 (V, F, H, W) privacy bits of the people (as in the actions mode; no companions).
    """
    from anonvid.data.synthetic import check_clip_shape  # local: synthetic imports this module

    if int(num_videos) < 0:
        raise ValueError(f"num_videos={num_videos} must be >= 0")
    check_clip_shape(num_frames, height, width)
    chunks = []
    for start in range(0, int(num_videos), CHUNK):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), start // CHUNK, 1]))
        chunks.append(_chunk(rng, min(CHUNK, num_videos - start), int(num_frames), int(height), int(width),
                             bool(anomalies)))
    if not chunks:
        f, h, w = int(num_frames), int(height), int(width)
        return {"video": np.zeros((0, f, h, w, 3), np.uint8), "anomaly": np.zeros((0, f), np.uint8),
                "anomaly_type": np.zeros((0, f), np.uint8), "anomaly_mask": np.zeros((0, f, h, w), np.uint8),
                "privacy_mask": np.zeros((0, f, h, w), np.uint8)}
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def surveillance_split(split: str, num_videos: int, *, seed: int = 0, **kw) -> dict[str, np.ndarray]:
    """`generate_surveillance` for one split: 'train' is normal-only; 'val' and 'test' have anomalies.

    Args:
      split: 'train', 'val' or 'test'.
      num_videos: number of videos.
      seed: dataset seed (splits use disjoint random streams).
      **kw: further `generate_surveillance` arguments (num_frames, height, width).

    Returns:
      As `generate_surveillance`.
    """
    from anonvid.data.synthetic import split_seed

    anomalies = split != "train"
    if "anomalies" in kw and bool(kw.pop("anomalies")) != anomalies:
        raise ValueError(f"split {split!r} is {'normal-only' if split == 'train' else 'with anomalies'}; "
                         "do not pass anomalies= (call generate_surveillance for other mixes)")
    return generate_surveillance(num_videos, seed=split_seed(seed, split, "surveillance"), anomalies=anomalies,
                                 **kw)


class _Lane:
    """Geometry of the flow: maps (along, across) coordinates in pixels to image (y, x)."""

    def __init__(self, flow: np.ndarray, h: int, w: int):
        self.flow = flow  # 0 right, 1 left, 2 down, 3 up
        self.horizontal = flow < 2
        self.length = np.where(self.horizontal, w, h).astype(np.float64)
        self.across_len = np.where(self.horizontal, h, w).astype(np.float64)

    def to_image(self, along, across):
        forward = np.where(self.flow % 2 == 0, along, self.length - along)
        return np.where(self.horizontal, across, forward), np.where(self.horizontal, forward, across)


def _chunk(rng: np.random.Generator, n: int, f_total: int, h: int, w: int, anomalies: bool) -> dict:
    unit = min(h, w) / 72.0 * SCALE
    ext = EXTENT * unit
    pad = int(np.ceil(ext)) + 4  # the canvas margin: parts of people off-screen never wrap round
    lane = _Lane(rng.integers(0, 4, n), h, w)
    bg = background(rng, n, h + 2 * pad, w + 2 * pad, unit)

    # Normal walkers: lane k cycles people through [-ext, length + ext] plus an off-screen gap.
    speed = WALK * unit * rng.uniform(0.8, 1.2, (PERSONS, n))
    cycle = lane.length + 2 * ext + rng.uniform(0, 0.6, (PERSONS, n)) * lane.length
    start = rng.uniform(0, 1, (PERSONS, n)) * cycle
    passes = int(np.ceil((cycle.max() + speed.max() * f_total) / cycle.min())) + 1
    across = (rng.uniform(0.15, 0.85, (PERSONS, passes, n)) * lane.across_len)
    looks = [[sample_look(rng, rng.integers(0, 2, (n, 5)), unit) for _ in range(passes)] for _ in range(PERSONS)]
    stride0 = rng.uniform(0, 1, (PERSONS, n))

    events = _sample_events(rng, n, f_total, h, w, lane, ext, unit, anomalies)

    video = np.empty((n, f_total, h, w, 3), np.uint8)
    pmask = np.empty((n, f_total, h, w), np.uint8)
    amask = np.empty((n, f_total, h, w), np.uint8)
    kind = np.zeros((n, f_total), np.uint8)
    zeros = np.zeros(n)
    rgb = np.empty((n, 1) + bg.shape[1:], np.uint8)
    bits = np.empty(rgb.shape[:-1], np.uint8)
    act = np.empty(rgb.shape[:-1], np.uint8)
    for f in range(f_total):
        rgb[:, 0], bits[...], act[...] = bg, 0, 0
        canvas = Canvas(rgb, bits, act)
        for k in range(PERSONS):
            travelled = start[k] + speed[k] * f
            j = np.minimum((travelled // cycle[k]).astype(int), passes - 1)
            along = travelled % cycle[k] - ext
            cy, cx = lane.to_image(along, across[k, j, np.arange(n)])
            stride = STRIDE * np.sin(2 * np.pi * (stride0[k] + f * speed[k] / (WALK * unit * STRIDE_PERIOD)))
            pose = Pose(cy=cy + pad, cx=cx + pad, lean=zeros, yaw=zeros, leg=stride, arm_l=zeros + 0.15,
                        arm_r=zeros + 0.15)
            draw_person(canvas, _pick(looks[k], j), pose, unit, act=0, visible=along <= lane.length + ext)
        for e in events:
            e.draw(canvas, f, pad, unit)
        crop = (slice(None), 0, slice(pad, pad + h), slice(pad, pad + w))
        video[:, f], pmask[:, f] = rgb[crop], bits[crop]
        seen_act = act[crop]
        for e_id, e in enumerate(events, start=1):
            seen = (seen_act == e_id).any(axis=(1, 2))
            kind[seen, f] = e.kind[seen]
        amask[:, f] = seen_act > 0
    return {"video": video, "anomaly": (kind > 0).astype(np.uint8), "anomaly_type": kind, "anomaly_mask": amask,
            "privacy_mask": pmask}


def _pick(looks: list[Look], j: np.ndarray) -> Look:
    """The look of pass j[v] for each video v."""
    rows = np.arange(len(j))
    stack = lambda name: np.stack([getattr(lk, name) for lk in looks])[j, rows]  # noqa: E731
    return Look(privacy=stack("privacy"), skin=stack("skin"), cloth=stack("cloth"), trousers=stack("trousers"),
                face=stack("face"), face_cell=looks[0].face_cell)


class _Event:
    """One event slot of a chunk: a person (run / wrong way / fall) or an object, per video."""

    def __init__(self, rng, slot, n, f_total, h, w, lane, ext, unit, anomalies, optional):
        self.slot = slot
        self.size = (h, w)
        self.lane, self.ext = lane, ext
        on = np.full(n, anomalies) & (rng.random(n) < 0.5 if optional else True)
        self.kind = np.where(on, rng.integers(1, len(ANOMALY_TYPES), n), 0).astype(np.uint8)
        self.t0 = rng.uniform(0.05, 0.6, n) * f_total
        self.speed = WALK * unit * rng.uniform(0.8, 1.2, n) * np.where(self.kind == 1, RUN_FACTOR, 1.0)
        self.across = rng.uniform(0.15, 0.85, n) * lane.across_len
        self.look = sample_look(rng, rng.integers(0, 2, (n, 5)), unit)
        # Falls: when, where along the path (fraction of the frame) and for how long the person lies. The
        # faller entered earlier (maybe before the video began), walking normally: t0 moves back accordingly.
        self.fall_at = rng.uniform(0.1, 0.7, n) * f_total
        walked = (rng.uniform(0.3, 0.7, n) * lane.length + ext) / self.speed
        self.t0 = np.where(self.kind == 3, self.fall_at - walked, self.t0)
        self.fall_len = rng.uniform(25, 40, n)
        self.fall_side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        # Objects: a straight line through a random point near the centre, in any direction.
        angle = rng.uniform(0, 2 * np.pi, n)
        self.obj_dir = np.stack([np.sin(angle), np.cos(angle)])
        size = np.array([[h], [w]], np.float64)
        mid = size / 2 + rng.uniform(-0.2, 0.2, (2, n)) * size
        reach = np.hypot(h, w) / 2 + OBJECT_R * unit + 2
        self.obj_start = mid - self.obj_dir * reach
        self.obj_colour = np.array([[255, 255, 255], [255, 30, 30], [255, 230, 0]], np.uint8)[rng.integers(0, 3, n)]
        self.obj_speed = OBJECT_SPEED * unit

    def draw(self, canvas: Canvas, f: int, pad: int, unit: float) -> None:
        e_id = self.slot + 1
        dt = f - self.t0
        started = (self.kind > 0) & (dt >= 0)
        # Person: walking time excludes the time spent lying; the fall pivots about the feet.
        person = started & (self.kind != 4)
        lying_time = np.where(self.kind == 3, np.clip(f - self.fall_at, 0, self.fall_len), 0.0)
        along = np.maximum(dt - lying_time, 0) * self.speed - self.ext
        backwards = self.kind == 2
        along_img = np.where(backwards, self.lane.length - along, along)
        cy, cx = self.lane.to_image(along_img, self.across)
        into = f - self.fall_at
        ramp = np.clip(np.minimum(into, self.fall_len - into) / FALL_RAMP, 0, 1)
        falling = (self.kind == 3) & (into >= 0) & (into < self.fall_len)
        lean = np.where(falling, self.fall_side * ramp * np.pi / 2, 0.0)
        feet = 14.0 * unit
        cy = cy + feet - feet * np.cos(lean)  # keep the feet on the ground while the body tips over
        cx = cx - feet * np.sin(lean)
        run = self.kind == 1
        stride = np.where(falling, 0.0, STRIDE * np.sin(
            2 * np.pi * f * self.speed / (WALK * unit * STRIDE_PERIOD * np.where(run, 1.8, 1.0))))
        visible = person & (along <= self.lane.length + self.ext)
        act = np.where((self.kind == 3) & ~falling, 0, e_id)
        zeros = np.zeros_like(cy)
        pose = Pose(cy=cy + pad, cx=cx + pad, lean=lean, yaw=zeros, leg=stride, arm_l=zeros + 0.3,
                    arm_r=zeros + 0.3)
        draw_person(canvas, self.look, pose, unit, act=act, visible=visible)
        # Object.
        pos = self.obj_start + self.obj_dir * self.obj_speed * np.maximum(dt, 0)
        # Only on the padded canvas (beyond it a box would wrap round to the far side).
        r = OBJECT_R * unit + 2
        on_canvas = ((pos[0] > r - pad) & (pos[0] < self.size[0] + pad - r) & (pos[1] > r - pad)
                     & (pos[1] < self.size[1] + pad - r))
        obj = started & (self.kind == 4) & on_canvas
        box = canvas.box(pos[0] + pad, pos[1] + pad, OBJECT_R * unit + 1)
        canvas.paint(box, disc(box, OBJECT_R * unit) & obj[:, None, None], self.obj_colour, 0, e_id)


def _sample_events(rng, n, f_total, h, w, lane, ext, unit, anomalies) -> list[_Event]:
    return [_Event(rng, slot, n, f_total, h, w, lane, ext, unit, anomalies, optional=slot > 0)
            for slot in range(EVENTS)]
