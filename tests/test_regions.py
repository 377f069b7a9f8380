"""Face/person-aware minimization: box smoothing and mask painting on hand-worked cases, the `faces(...)` /
`people(...)` spec sugar, `black@face` against numpy, and the real-face check: faces in real photographs
(scikit-image's astronaut and LFW crops) counted by an independent detector (scikit-image's LBP cascade)
before and after `faces(blur=12)` with masks from the OpenCV Haar detector."""
import sys

import numpy as np
import pytest

from anonvid import minimize, regions
from anonvid.regions import detectors as detectors_mod

EMPTY = np.zeros((0, 4), np.float32)


def _boxes(*rows):
    return np.asarray(rows, np.float32).reshape(-1, 4)


# ---- smoothing ------------------------------------------------------------------------------------------

def test_missed_frame_is_interpolated_exactly():
    # A box moving 4 px right per frame, missed in frame 1: frame 1 gets the midpoint of frames 0 and 2.
    raw = [_boxes([10, 10, 20, 20]), EMPTY, _boxes([18, 10, 28, 20])]
    out = regions.smooth_tracks(raw, max_gap=1, hold=0, dilate=0.0)
    np.testing.assert_array_equal(out[1], _boxes([14, 10, 24, 20]))
    np.testing.assert_array_equal(out[0], raw[0])
    np.testing.assert_array_equal(out[2], raw[2])


def test_interpolation_is_linear_across_a_longer_gap():
    raw = [_boxes([0, 0, 10, 10]), EMPTY, EMPTY, _boxes([6, 3, 16, 13])]
    out = regions.smooth_tracks(raw, max_gap=2, hold=0, dilate=0.0)
    np.testing.assert_allclose(out[1], _boxes([2, 1, 12, 11]), atol=1e-6)
    np.testing.assert_allclose(out[2], _boxes([4, 2, 14, 12]), atol=1e-6)


def test_gap_longer_than_max_gap_is_not_filled():
    raw = [_boxes([0, 0, 10, 10]), EMPTY, EMPTY, _boxes([0, 0, 10, 10])]
    out = regions.smooth_tracks(raw, max_gap=1, hold=0, dilate=0.0)
    assert [len(b) for b in out] == [1, 0, 0, 1]
    assert len(regions.link_tracks(raw, max_gap=1)) == 2 and len(regions.link_tracks(raw, max_gap=2)) == 1


def test_hold_extends_both_ends():
    raw = [EMPTY, EMPTY, _boxes([5, 5, 9, 9]), _boxes([6, 5, 10, 9]), EMPTY, EMPTY]
    out = regions.smooth_tracks(raw, max_gap=0, hold=1, dilate=0.0)
    assert [len(b) for b in out] == [0, 1, 1, 1, 1, 0]
    np.testing.assert_array_equal(out[1], raw[2])  # held before the first detection: the first box
    np.testing.assert_array_equal(out[4], raw[3])  # held after the last one: the last box
    # Holding past the ends of the video is clipped to the video.
    assert [len(b) for b in regions.smooth_tracks(raw, hold=10, dilate=0.0)] == [1] * 6


def test_two_faces_stay_separate_tracks():
    left, right = [0, 0, 10, 10], [50, 0, 60, 10]
    raw = [_boxes(left, right), _boxes(left), _boxes(right, left)]  # right missed in frame 1; order swapped
    tracks = regions.link_tracks(raw, max_gap=1)
    assert [t.frames for t in tracks] == [[0, 1, 2], [0, 2]]
    out = regions.smooth_tracks(raw, max_gap=1, hold=0, dilate=0.0)
    np.testing.assert_array_equal(out[1], _boxes(left, right))


def test_moving_face_is_linked_by_its_velocity():
    # 10 px boxes moving 9 px per frame overlap by IoU 0.05 frame to frame; the velocity prediction of the
    # track (after two detections) keeps linking them, the plain distance test links the first two.
    raw = [_boxes([9 * t, 0, 9 * t + 10, 10]) for t in range(5)]
    raw[3] = EMPTY
    tracks = regions.link_tracks(raw, max_gap=1, iou=0.5, distance=1.0)
    assert [t.frames for t in tracks] == [[0, 1, 2, 4]]
    out = regions.smooth_tracks(raw, max_gap=1, hold=0, dilate=0.0, iou=0.5, distance=1.0)
    np.testing.assert_array_equal(out[3], _boxes([27, 0, 37, 10]))


def test_dilate_grows_about_the_centre_and_clips_to_the_frame():
    raw = [_boxes([10, 10, 20, 30])]
    np.testing.assert_array_equal(regions.smooth_tracks(raw, dilate=0.5)[0], _boxes([7.5, 5, 22.5, 35]))
    np.testing.assert_array_equal(regions.smooth_tracks(raw, dilate=0.5, frame_size=(32, 21))[0],
                                  _boxes([7.5, 5, 21, 32]))


def test_empty_inputs():
    assert regions.smooth_tracks([]) == []
    out = regions.smooth_tracks([EMPTY, [], np.zeros((0, 4))])
    assert len(out) == 3 and all(b.shape == (0, 4) and b.dtype == np.float32 for b in out)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hold=-1), "hold=-1 must be an integer >= 0"),
    (dict(max_gap=1.5), "max_gap=1.5 must be an integer"),
    (dict(dilate=-0.1), "dilate=-0.1 must be a number >= 0"),
    (dict(iou=2), r"iou=2 must be a number in \[0, 1\]"),
])
def test_smoothing_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        regions.smooth_tracks([EMPTY], **kwargs)


def test_malformed_boxes_name_the_frame():
    with pytest.raises(ValueError, match=r"frame 1: expected an \(n, 4\) array"):
        regions.smooth_tracks([EMPTY, np.zeros((2, 3))])


def test_merge_overlapping_keeps_the_union():
    merged = regions.merge_overlapping(_boxes([0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40]), [1, 2, 3])
    np.testing.assert_array_equal(merged, _boxes([30, 30, 40, 40], [0, 0, 11, 11]))


# ---- masks ----------------------------------------------------------------------------------------------

def test_box_mask_covers_every_pixel_the_box_touches():
    mask = regions.boxes_to_mask(_boxes([1.5, 0, 3, 2], [4, 3, 9, 9]), 4, 5, shape="box")
    want = np.zeros((4, 5), bool)
    want[0:2, 1:3] = True
    want[3:4, 4:5] = True  # clipped to the frame
    np.testing.assert_array_equal(mask, want)


def test_ellipse_mask_hand_worked():
    # Inscribed in the 5x5 box: pixel centres (i + 0.5) inside ((x - 2.5)/2.5)^2 + ((y - 2.5)/2.5)^2 <= 1;
    # the corner pixel (0.5, 0.5) gives 0.64 + 0.64 = 1.28 (out), its neighbour (1.5, 0.5) 0.16 + 0.64 (in).
    want = np.array([[0, 1, 1, 1, 0]] + [[1] * 5] * 3 + [[0, 1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(regions.boxes_to_mask(_boxes([0, 0, 5, 5]), 5, 5), want)
    assert not regions.boxes_to_mask(EMPTY, 3, 4).any()


def test_masks_for_range_is_a_slice_of_the_whole_video():
    smooth = [_boxes([t, 0, t + 2, 2]) for t in range(6)]
    whole = regions.masks_for_range(smooth, 0, 6, 4, 8, "box")
    np.testing.assert_array_equal(regions.masks_for_range(smooth, 2, 3, 4, 8, "box"), whole[2:5])
    assert whole.shape == (6, 4, 8) and whole[5, :2, 5:7].all() and whole[5].sum() == 4
    with pytest.raises(ValueError, match=r"frames \[4, 7\) are outside the video's 6 frames"):
        regions.masks_for_range(smooth, 4, 3, 4, 8)
    with pytest.raises(ValueError, match="mask shape must be one of ellipse, box"):
        regions.boxes_to_mask(EMPTY, 2, 2, shape="circle")


# ---- spec sugar and the black op ------------------------------------------------------------------------

@pytest.mark.parametrize("spec, canonical, needed", [
    ("ts(2)|faces(blur=4)", "ts(2)|blur(4)@face", ("face",)),
    ("faces(black)", "black@face", ("face",)),
    ("faces( pixelate = 8 )|people(blur=2.5)", "pixelate(8)@face|blur(2.5)@person", ("face", "person")),
    ("people(black)|ds(2)", "black@person|ds(2)", ("person",)),
])
def test_sugar_expands_to_region_ops(spec, canonical, needed):
    pipe = minimize.parse(spec)
    assert str(pipe) == canonical and pipe.regions == needed
    assert minimize.parse(canonical) == pipe and minimize.parse(str(pipe)) == pipe


@pytest.mark.parametrize("spec, match", [
    ("faces(foo=1)", r"faces\(foo=1\): unknown form 'foo'"),
    ("faces()", r"faces\(\) takes exactly one argument"),
    ("faces", r"takes exactly one argument"),
    ("faces(blur=-1)", r"faces\(blur=-1\): blur: parameter sigma=-1 is out of range \[0, 64\]"),
    ("ts(2)|people(gray)", r"people\(gray\): unknown form 'gray'.*position 6"),
    ("faces(black, blur=2)", r"faces\(black, blur=2\) takes exactly one argument"),
    ("faces(black=1)", "unknown form 'black'"),
])
def test_bad_sugar_lists_the_accepted_forms(spec, match):
    name = "people" if "people" in spec else "faces"
    with pytest.raises(ValueError, match=match) as err:
        minimize.parse(spec)
    assert f"accepted forms: {name}(blur=sigma), {name}(pixelate=block), {name}(black)" in str(err.value)


def test_sugar_with_a_region_and_reserved_names():
    with pytest.raises(ValueError, match=r"already names its region \(face\); drop '@person'"):
        minimize.parse("faces(blur=2)@person")
    with pytest.raises(ValueError, match="reserved for the region sugar"):
        minimize.register_op(minimize.registry.Op("faces", lambda c: c, (), minimize.DEPTH, True, True, "x"))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_black_at_face_equals_numpy(dtype):
    rng = np.random.default_rng(1)
    clips = rng.integers(1, 256, (2, 3, 6, 7, 3)).astype(dtype)
    if dtype == np.float32:
        clips /= 255
    mask = rng.random((2, 3, 6, 7)) < 0.4
    want = np.where(mask[..., None], 0, clips).astype(dtype)
    out = minimize.apply("faces(black)", clips, masks={"face": mask})
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out), want)
    # apply_with_detection uses given masks instead of detecting.
    np.testing.assert_array_equal(np.asarray(regions.apply_with_detection("black@face", clips, masks={"face": mask})),
                                  want)
    np.testing.assert_array_equal(np.asarray(minimize.apply("black", clips)), np.zeros_like(clips))


class _FixedDetector:
    """A stand-in detector: the same box in every frame but one."""

    def __init__(self, box, miss):
        self.box, self.miss, self.calls = _boxes(box), miss, 0

    def detect(self, frame):
        assert frame.dtype == np.uint8 and frame.shape[-1] == 3
        self.calls += 1
        return EMPTY if self.calls - 1 == self.miss else self.box


def test_region_masks_with_a_custom_detector():
    clips = np.zeros((1, 4, 10, 12, 1), np.float32)  # grey float clips are converted for the detector
    det = _FixedDetector([2, 2, 6, 8], miss=2)
    masks = regions.region_masks(clips, ("face",), detectors={"face": det}, shape="box", dilate=0.5)
    want = regions.boxes_to_mask(_boxes([1, 0.5, 7, 9.5]), 10, 12, "box")
    assert det.calls == 4 and masks["face"].shape == (1, 4, 10, 12)
    for t in range(4):  # the missed frame 2 is filled
        np.testing.assert_array_equal(masks["face"][0, t], want)


def test_detecting_every_third_frame_is_filled_by_smoothing():
    frames = np.zeros((7, 6, 6, 3), np.uint8)
    det = _FixedDetector([1, 1, 3, 3], miss=-1)
    raw = regions.detect_frames(frames, det, every=3)
    assert det.calls == 3 and [len(b) for b in raw] == [1, 0, 0, 1, 0, 0, 1]
    smooth = regions.smooth_tracks(raw, max_gap=2, hold=2, dilate=0.0)
    assert all(np.array_equal(b, _boxes([1, 1, 3, 3])) for b in smooth)
    with pytest.raises(ValueError, match="every=0 must be an integer >= 1"):
        regions.detect_frames(frames, det, every=0)


def test_region_without_a_detector_says_what_to_do():
    with pytest.raises(ValueError, match=r"no detector for region 'car'.*face, person.*masks="):
        regions.apply_with_detection("blur(2)@car", np.zeros((1, 1, 4, 4, 3), np.uint8))


def test_missing_opencv_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"pip install 'anonvid\[faces\]'"):
        regions.get_detector("haar_face")


# ---- OpenCV detectors -----------------------------------------------------------------------------------

def test_unknown_detector_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown detector 'yolo'; known detectors: haar_face, hog_person"):
        regions.get_detector("yolo")


def _lbp_faces(frames):
    """Faces per frame found by scikit-image's LBP cascade (the independent counter), as (n, 4) boxes."""
    import skimage.data
    import skimage.feature

    cascade = skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    out = []
    for frame in frames:
        found = cascade.detect_multi_scale(img=frame, scale_factor=1.2, step_ratio=1, min_size=(48, 48),
                                           max_size=(200, 200))
        out.append(_boxes(*[[d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]] for d in found]))
    return out


def _pan_clip(num_frames=16, height=240, width=320, faces=6, size=88, pad=8, gap=150, first=280):
    """A camera pan across real photographs: the astronaut, then LFW faces over a coffee-table background.

    The LFW crops (25x25 grey, the first 100 of `lfw_subset` are faces) are upscaled to `size` px and padded
    with their edge pixels, alternately near the top and the bottom, `gap` px apart.
    """
    cv2 = pytest.importorskip("cv2")
    import skimage.data

    lfw = skimage.data.lfw_subset()[:100]
    mosaic = cv2.resize(skimage.data.coffee(), (first + (faces // 2) * gap + 40, height),
                        interpolation=cv2.INTER_AREA)
    mosaic[:, :height] = cv2.resize(skimage.data.astronaut(), (height, height), interpolation=cv2.INTER_AREA)
    for k in range(faces):
        tile = cv2.resize((lfw[k] * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        tile = cv2.copyMakeBorder(tile, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        row = 10 if k % 2 == 0 else height - 10 - tile.shape[0]
        col = first + (k // 2) * gap + (gap // 2 if k % 2 else 0)
        mosaic[row:row + tile.shape[0], col:col + tile.shape[1]] = tile[..., None]
    starts = np.linspace(0, mosaic.shape[1] - width, num_frames).round().astype(int)
    return np.stack([mosaic[:, x:x + width] for x in starts])[None]


@pytest.fixture(scope="module")
def scene():
    """The pan clip, a Haar detector (on a copy capped at 240 px), its raw boxes and the LBP faces before."""
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    clip = _pan_clip()
    detector = regions.get_detector("haar_face", max_side=240, min_size=32)
    raw = regions.detect_frames(clip[0], detector)
    return dict(clip=clip, detector=detector, raw=raw, before=_lbp_faces(clip[0]))


def test_blurred_faces_are_not_found_by_an_independent_detector(scene):
    before = [len(b) for b in scene["before"]]
    # Measured: 38 faces over 16 frames ([1, 1, 2, 1, 2, 2, 2, 3, 3, 4, 4, 3, 3, 2, 3, 2]).
    assert sum(before) >= 30 and min(before) >= 1, before
    out = np.asarray(regions.apply_with_detection("faces(blur=12)", scene["clip"],
                                                  detectors={"face": scene["detector"]}))
    assert out.shape == scene["clip"].shape and out.dtype == np.uint8
    after = [len(b) for b in _lbp_faces(out[0])]
    # Measured: 0 after. Allow 5% of before (independent detectors can fire on a blurred blob).
    assert sum(after) <= 0.05 * sum(before), (before, after)


def test_a_missed_frame_is_still_covered(scene):
    clip, raw, before = scene["clip"], list(scene["raw"]), scene["before"]
    k = 9  # four faces in this frame
    assert len(before[k]) == 4 and len(raw[k]) >= 3
    raw[k] = EMPTY
    _, _, h, w, _ = clip.shape
    unsmoothed = regions.masks_for_range(regions.smooth_tracks(raw, max_gap=0, hold=0), 0, 16, h, w)
    assert not unsmoothed[k].any()  # without smoothing the frame is bare
    masks = regions.masks_for_range(regions.smooth_tracks(raw, frame_size=(h, w)), 0, 16, h, w)
    for x0, y0, x1, y1 in before[k].astype(int):
        assert masks[k, y0:y1, x0:x1].mean() >= 0.9
    out = np.asarray(minimize.apply("faces(blur=12)", clip[:, k:k + 1], masks={"face": masks[None, k:k + 1]}))
    assert len(_lbp_faces(out[0])[0]) == 0


def test_detector_boxes_scale_back_from_the_downscaled_copy(scene):
    # A 2x pixel-replicated frame, downscaled by INTER_AREA to the 320 px cap, is the original frame again
    # (which runs at full size), so its boxes are exactly twice the original's.
    frame = scene["clip"][0, 9]
    detector = regions.get_detector("haar_face", max_side=320, min_size=32)
    want = detector.detect(frame)
    got = detector.detect(np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1))
    assert len(want) >= 3 and want.dtype == np.float32
    np.testing.assert_allclose(got, 2 * want, atol=1e-4)


def test_detectors_check_their_input_and_hog_runs(scene):
    with pytest.raises(ValueError, match=r"uint8 RGB frame of shape \(H, W, 3\)"):
        scene["detector"].detect(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="np.round"):
        scene["detector"].detect(np.zeros((8, 8, 3), np.float32))
    hog = regions.get_detector("hog_person", max_side=160)
    assert hog.detect(np.zeros((100, 60, 3), np.uint8)).shape == (0, 4)  # smaller than the 64x128 window
    boxes = hog.detect(scene["clip"][0, 0])
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4
    with pytest.raises(ValueError, match="max_side=8 must be an integer >= 32"):
        detectors_mod.HaarFaceDetector(max_side=8)
