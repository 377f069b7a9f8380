"""The synthetic person: a stick-and-block figure whose parts carry the privacy cues.

Body units: a person is about 36 units tall (head top −21 to feet +15, origin at the hips, "down" positive);
`unit` converts units to pixels. Each part paints its own privacy bits (bit i = attribute i of
`synthetic.PRIVACY_ATTRIBUTES`), so the mask is exactly the visible cue:

- skin_color (bit 0): pixels in the skin colour of the dark group (head, arms, bare torso);
- face (bit 1): the head when it carries the high-frequency identity texture;
- gender (bit 2): the torso when it has the flared (dress) shape;
- nudity (bit 3): the torso when it is bare (skin coloured, unstriped) instead of striped clothing;
- relationship (bit 4): the second person (`draw_companion`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from anonvid.data.synthetic_render import Canvas, capsule, disc, trapezoid

SKIN_LIGHT = np.array([232, 188, 152], np.float32)
SKIN_DARK = np.array([104, 64, 40], np.float32)
# Saturated garment colours, far from skin tones and from the muted backgrounds.
CLOTHES = np.array([[40, 80, 210], [30, 160, 60], [150, 40, 170], [210, 40, 40], [235, 210, 30],
                    [20, 170, 180], [250, 130, 20], [230, 60, 150]], np.float32)
TROUSERS = np.array([[45, 45, 50], [40, 50, 90], [80, 60, 40], [70, 70, 75]], np.float32)

HEAD_V, HEAD_R = -16.0, 4.8
# Face marks contrast with either skin group: near-black on light skin, near-white on dark skin.
FACE_MARK = {0: np.array([25, 20, 20], np.uint8), 1: np.array([235, 230, 220], np.uint8)}
SHOULDER_V, SHOULDER_H, ARM_LEN, ARM_R = -9.5, 3.6, 10.5, 1.5
HIP_V, HIP_H, LEG_LEN, LEG_R = 1.0, 2.0, 12.0, 1.8
# (centre v, half length, half width top, half width bottom): a block torso vs a flared dress.
TORSO = {0: (-4.5, 6.0, 4.0, 4.0), 1: (-2.0, 8.5, 2.8, 9.0)}


@dataclasses.dataclass
class Look:
    """What a chunk of n people look like (constant over a clip).

    Attributes:
      privacy: int (n, 5) attribute flags.
      skin, cloth, trousers: uint8 (n, 3) colours.
      face: bool (n, G, G) identity texture cells (used where privacy[:, 1] is 1).
      face_cell: texture cell size in pixels.
    """

    privacy: np.ndarray
    skin: np.ndarray
    cloth: np.ndarray
    trousers: np.ndarray
    face: np.ndarray
    face_cell: int


def sample_look(rng: np.random.Generator, privacy: np.ndarray, unit: float) -> Look:
    """Samples colours and face textures for people with the given attribute flags (n, 5)."""
    n = len(privacy)
    skin = np.where(privacy[:, :1] == 1, SKIN_DARK, SKIN_LIGHT) + rng.uniform(-10, 10, (n, 3))
    cloth = CLOTHES[rng.integers(0, len(CLOTHES), n)] + rng.uniform(-15, 15, (n, 3))
    trousers = TROUSERS[rng.integers(0, len(TROUSERS), n)] + rng.uniform(-8, 8, (n, 3))
    face_cell = max(1, round(2 * unit))
    cells = int(np.ceil(2 * HEAD_R * unit / face_cell)) + 2
    face = rng.random((n, cells, cells)) < 0.5
    u8 = lambda c: np.clip(c, 0, 255).astype(np.uint8)  # noqa: E731
    return Look(privacy=np.asarray(privacy), skin=u8(skin), cloth=u8(cloth), trousers=u8(trousers), face=face,
                face_cell=face_cell)


@dataclasses.dataclass
class Pose:
    """Where a chunk of n people are and how they hold themselves in one frame (all (n,) float arrays).

    Attributes:
      cy, cx: hip centre in pixels.
      lean: body axis angle in radians (0 upright, ±pi/2 lying on the ground).
      yaw: rotation about the vertical body axis (0 facing the camera); narrows the body, swaps the arms.
      leg: leg swing angle in radians (walking phase).
      arm_l, arm_r: arm angles from hanging down, in radians, raised outwards.
    """

    cy: np.ndarray
    cx: np.ndarray
    lean: np.ndarray
    yaw: np.ndarray
    leg: np.ndarray
    arm_l: np.ndarray
    arm_r: np.ndarray


def draw_person(canvas: Canvas, look: Look, pose: Pose, unit: float, act=1, visible=None) -> None:
    """Paints people (legs, torso, arms, head, back to front) with their privacy bits.

    Args:
      canvas: canvas of n clips.
      look: appearance of the n people.
      pose: pose of the n people in this frame.
      unit: pixels per body unit.
      act: action-mask value of the painted pixels (scalar or (n,)).
      visible: optional bool (n,): people to paint (others are skipped).
    """
    p = look.privacy.astype(np.uint8)
    skin_bit = p[:, 0]
    cos_l, sin_l = np.cos(pose.lean), np.sin(pose.lean)
    width = 0.6 + 0.4 * np.abs(np.cos(pose.yaw))  # a turned body is narrower
    side = np.cos(pose.yaw)  # the arms swap sides as the body turns round

    def at(v, h):  # body frame (down, right) in units -> image pixels
        return pose.cy + unit * (v * cos_l - h * sin_l), pose.cx + unit * (v * sin_l + h * cos_l)

    def axis(v, h):  # a body-frame direction -> image direction
        return v * cos_l - h * sin_l, v * sin_l + h * cos_l

    def gate(inside):
        return inside if visible is None else inside & visible[:, None, None]

    for sign in (-1.0, 1.0):
        gv, gh = np.cos(pose.leg), sign * 0.15 + np.sin(pose.leg) * sign
        mv, mh = HIP_V + 0.5 * LEG_LEN * gv, sign * HIP_H * width + 0.5 * LEG_LEN * gh
        cy, cx = at(mv, mh)
        hy, hx = axis(0.5 * LEG_LEN * unit * gv, 0.5 * LEG_LEN * unit * gh)
        box = canvas.box(cy, cx, (0.5 * LEG_LEN + LEG_R) * unit + 1)
        canvas.paint(box, gate(capsule(box, hy, hx, LEG_R * unit)), look.trousers, 0, act)

    _draw_torso(canvas, look, p, at, axis, width, unit, act, gate)

    for sign, angle in ((-1.0, pose.arm_l), (1.0, pose.arm_r)):
        dv, dh = np.cos(angle), sign * np.sin(angle) * side
        mv, mh = SHOULDER_V + 0.5 * ARM_LEN * dv, sign * SHOULDER_H * side + 0.5 * ARM_LEN * dh
        cy, cx = at(mv, mh)
        hy, hx = axis(0.5 * ARM_LEN * unit * dv, 0.5 * ARM_LEN * unit * dh)
        box = canvas.box(cy, cx, (0.5 * ARM_LEN + ARM_R) * unit + 1)
        canvas.paint(box, gate(capsule(box, hy, hx, ARM_R * unit)), look.skin, skin_bit, act)

    cy, cx = at(HEAD_V, 0.0)
    r = HEAD_R * unit
    box = canvas.box(cy, cx, r + 1)
    inside = gate(disc(box, r))
    cells = look.face.shape[1]
    iy = np.clip(((box.dy + r) // look.face_cell).astype(np.int64), 0, cells - 1)
    ix = np.clip(((box.dx + r) // look.face_cell).astype(np.int64), 0, cells - 1)
    dark = look.face[np.arange(len(p))[:, None, None], iy, ix] & (p[:, 1] == 1)[:, None, None]
    mark = np.where((p[:, :1] == 1), FACE_MARK[1], FACE_MARK[0])
    # Skin first (skin bit, plus the face bit on a textured head), then the marks, which are not skin.
    canvas.paint(box, inside, look.skin, skin_bit | (p[:, 1] << 1), act)
    canvas.paint(box, inside & dark, mark, 1 << 1, act)


def _draw_torso(canvas, look, p, at, axis, width, unit, act, gate) -> None:
    gender, nude = p[:, 2], p[:, 3]
    params = np.array([TORSO[0], TORSO[1]], np.float32)[gender]  # (n, 4)
    cv, half_len, w_top, w_bot = params.T
    cy, cx = at(cv, 0.0)
    ay, ax = axis(np.ones_like(cv), 0.0)
    box = canvas.box(cy, cx, max(TORSO[1][1], TORSO[1][3]) * unit + 1)
    inside, s = trapezoid(box, ay, ax, half_len * unit, w_top * unit * width, w_bot * unit * width)
    stripe = max(1, round(1.5 * unit))
    # Palette per clip: clothing, its dark stripe, bare skin; the index picks one per pixel.
    palette = np.stack([look.cloth, look.cloth // 2, look.skin], axis=1)
    index = ((s // stripe).astype(np.int64) % 2).astype(np.int8)
    index = np.where((nude == 1)[:, None, None], np.int8(2), index)
    bits = (nude & p[:, 0]) | (gender << 2) | (nude << 3)
    canvas.paint(box, gate(inside), palette, bits, act, index=index)


def draw_companion(canvas: Canvas, cloth: np.ndarray, cy: np.ndarray, cx: np.ndarray, unit: float,
                   present: np.ndarray) -> None:
    """Paints the second person (relationship cue, bit 4): a hooded figure in a straight long coat.

    Args:
      canvas: canvas of n clips.
      cloth: uint8 (n, 3) coat colour.
      cy, cx: (n,) hip centre in pixels.
      unit: pixels per body unit.
      present: bool (n,) — clips without a companion paint nothing.
    """
    # Only the clips that have a companion are rasterised (about half).
    clips = np.nonzero(present)[0]
    cy, cx, cloth = cy[clips], cx[clips], cloth[clips]
    box = canvas.box(cy - 4.0 * unit, cx, 11.5 * unit + 1, 5.0 * unit + 1, clips=clips)
    # A straight column: unlike the flared gender cue, so that the two shape cues do not look alike.
    inside, _ = trapezoid(box, np.ones_like(cy), np.zeros_like(cx), 10.5 * unit, 3.6 * unit, 3.6 * unit)
    canvas.paint(box, inside, cloth, 1 << 4, 0)
    box = canvas.box(cy + HEAD_V * unit, cx, HEAD_R * unit + 1, clips=clips)
    hood = (cloth.astype(np.int16) * 3 // 4).astype(np.uint8)
    canvas.paint(box, disc(box, HEAD_R * unit), hood, 1 << 4, 0)
