"""Minimization ops against independent oracles (PIL, OpenCV, numpy loops, hand-worked cases), the registry,
the spec grammar, region restriction, jit/vmap and uint8/float agreement."""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageFilter

from anonvid import minimize
from anonvid.minimize import background, blur, registry, resize, spatial

RNG = np.random.default_rng(0)


def _frames(h, w, c, seed=0):
    """Noise plus a smooth ramp: noise makes any rounding difference visible, the ramp gives structure."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.linspace(0, 120, h), np.linspace(0, 120, w))[..., None]
    noise = rng.integers(0, 136, (h, w, c))
    return (ramp + noise).clip(0, 255).astype(np.uint8)


def _pil(frame):
    return Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)


def _as_hwc(a):
    a = np.asarray(a)
    return a[..., None] if a.ndim == 2 else a


def _clip(frame):
    return jnp.asarray(frame)[None, None]


# ---- blur: PIL GaussianBlur ------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_blur_matches_pil(size, channels):
    frame = _frames(size, size, channels, seed=size + channels)
    sigmas = (0.5, 1, 2, 4)
    # One program for the four sigmas: a quarter less compile time than four.
    outs = jax.jit(lambda x: [minimize.gaussian_blur(x, s) for s in sigmas])(_clip(frame))
    for sigma, got in zip(sigmas, outs):
        want = _as_hwc(_pil(frame).filter(ImageFilter.GaussianBlur(radius=sigma)))
        # Bit-exact, borders included: the extended-box passes and their 8-bit rounding are PIL's.
        np.testing.assert_array_equal(np.asarray(got)[0, 0], want, err_msg=f"sigma={sigma}")


@pytest.mark.parametrize("shape,sigma", [((5, 7, 1), 4.0), ((40, 33, 3), 16.0), ((9, 64, 1), 0.1)])
def test_blur_matches_pil_wide_boxes_and_tiny_frames(shape, sigma):
    # sigma 16: the wide-box (block sum) path; 5x7 with sigma 4: the box is wider than the frame.
    frame = _frames(*shape, seed=3)
    want = _as_hwc(_pil(frame).filter(ImageFilter.GaussianBlur(radius=sigma)))
    np.testing.assert_array_equal(np.asarray(minimize.apply(f"blur({sigma})", _clip(frame)))[0, 0], want)


def test_blur_radius_is_pillows_extended_box():
    # Hand-worked from Gwosdek et al. eqs. 7, 11, 14 for sigma 4, 3 passes: sigma^2/n = 16/3,
    # L = sqrt(65) -> l = 3, a = 7 (12 - 16) / (6 (16/3 - 16)) = 0.4375.
    assert blur.pillow_box_radius(4.0) == pytest.approx(3.4375, abs=1e-6)
    l, ww, fw = blur.box_weights(blur.pillow_box_radius(4.0))
    assert l == 3 and ww == int(2 ** 24 / 7.875) and 7 * ww + 2 * fw <= 2 ** 24
    assert minimize.gaussian_blur(_clip(_frames(8, 8, 1)), 0.0) is not None


# ---- downsampling: PIL bicubic, OpenCV INTER_AREA --------------------------------------------------------

@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_bicubic_matches_pil(factor, channels):
    frame = _frames(64, 48, channels, seed=factor)
    want = _as_hwc(_pil(frame).resize((48 // factor, 64 // factor), Image.BICUBIC))
    got = np.asarray(minimize.apply(f"ds({factor},bicubic)", _clip(frame)))[0, 0]
    np.testing.assert_array_equal(got, want)  # exact: PIL's 22-bit coefficients in int32


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_area_matches_opencv(factor, channels):
    frame = _frames(48, 36, channels, seed=factor)
    want = _as_hwc(cv2.resize(frame, (36 // factor, 48 // factor), interpolation=cv2.INTER_AREA))
    got = np.asarray(minimize.apply(f"ds({factor})", _clip(frame)))[0, 0].astype(int)
    sums = frame.reshape(48 // factor, factor, 36 // factor, factor, channels).sum((1, 3))
    tie = (2 * (sums % factor ** 2)) == factor ** 2
    # We round ties up; OpenCV does too for 2x2 and rounds them to even otherwise: differences only on ties.
    np.testing.assert_array_equal(got[~tie], want[~tie])
    assert np.abs(got - want).max() <= 1
    if factor == 2:
        np.testing.assert_array_equal(got, want)


def test_area_and_bicubic_reject_non_dividing_factor():
    clips = jnp.zeros((1, 2, 10, 12, 1), jnp.uint8)
    with pytest.raises(ValueError, match=r"height 10 is not divisible by the downsampling factor 4"):
        minimize.area_downsample(clips, 4)
    with pytest.raises(ValueError, match=r"height 10 and width 12 are not divisible.*factor 7"):
        minimize.apply("ds(7,bicubic)", clips)
    with pytest.raises(ValueError, match="not divisible"):
        minimize.parse("ds(3)").output_shape(2, 10, 12)


# ---- morphology and background removal -------------------------------------------------------------------

@pytest.mark.parametrize("density", [0.3, 0.6, 0.85])
def test_open_close_matches_opencv(density):
    masks = np.random.default_rng(int(density * 100)).random((2, 3, 19, 23)) < density
    kernel = np.ones((3, 3), np.uint8)
    want = np.stack([[cv2.morphologyEx(cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, kernel),
                                       cv2.MORPH_CLOSE, kernel) for m in clip] for clip in masks])
    np.testing.assert_array_equal(np.asarray(jax.jit(minimize.open_close)(jnp.asarray(masks))), want.astype(bool))


def _reference_foreground(clips, warmup, alpha, k, min_std):
    """Plain numpy loop over frames and pixels' model, written from the docstring."""
    x = clips.astype(np.float64)
    out = np.zeros(clips.shape[:4], bool)
    for b in range(x.shape[0]):
        warm = x[b, :min(warmup, x.shape[1])]
        mean, var = warm.mean(0), warm.var(0)
        for t in range(x.shape[1]):
            d = x[b, t] - mean
            fg = (np.abs(d) > k * np.sqrt(np.maximum(var, min_std ** 2))).any(-1)
            bg = ~fg[..., None]
            mean = np.where(bg, mean + alpha * d, mean)
            var = np.where(bg, var + alpha * (d * d - var), var)
            out[b, t] = fg
    return out


def _square(i, h, w):
    """Where the moving square is in frame i (moves 2 px right per frame)."""
    inside = np.zeros((h, w), bool)
    inside[6:14, 2 + 2 * i:10 + 2 * i] = True
    return inside


def _moving_square_clips(t=12, h=24, w=28, c=3, noise=4, seed=0, start=0):
    """Two clips of a static noisy background with a bright square moving from frame `start` on."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(40, 200, (1, 1, h, w, c))
    clips = (bg + rng.integers(-noise, noise + 1, (2, t, h, w, c))).clip(0, 255).astype(np.uint8)
    for i in range(start, t):
        clips[:, i][:, _square(i - start, h, w)] = 250
    return clips


def test_foreground_model_matches_numpy_reference():
    clips = _moving_square_clips()
    # k = 2 would tie exactly (d^2 = 4 var) for a value seen once in 5 warm-up frames; 2.2 keeps decisions
    # away from float32-vs-float64 ties.
    kw = {"warmup": 5, "alpha": 0.1, "k": 2.2, "min_std": 3.0}
    got = np.asarray(jax.jit(lambda c: minimize.foreground_masks(c, **kw))(jnp.asarray(clips)))
    np.testing.assert_array_equal(got, _reference_foreground(clips, **kw))


def _bgsub_scenes():
    """Clip 0: a square moving in after 4 frames of noisy background (an object present during warm-up is
    partly learnt as background; the numpy-reference test covers that). Clip 1: from frame 8, a one-pixel
    speck and a 7x7 square with a background-coloured pinhole on a flat background."""
    clips = _moving_square_clips(noise=2, start=4)
    clips[1] = 100
    clips[1, 8:, 2, 2] = 250
    clips[1, 8:, 6:13, 6:13] = 250
    clips[1, 8:, 9, 9] = 100
    return clips


def test_bgsub_keeps_moving_objects_removes_specks_fills_pinholes():
    clips = _bgsub_scenes()
    out = np.asarray(minimize.apply("bgsub(warmup=4)", jnp.asarray(clips)))
    assert out[:, :4].max() == 0
    for i in range(4, clips.shape[1]):
        square = _square(i - 4, *clips.shape[2:4])
        np.testing.assert_array_equal(out[0, i][square], clips[0, i][square])
        assert (out[0, i][~square] == 0).all()
    assert out[1, :8].max() == 0
    assert (out[1, 8:, 2, 2] == 0).all()                 # speck removed by the opening
    assert (out[1, 8:, 9, 9] == 100).all()               # pinhole filled by the closing: input value kept
    assert (out[1, 8:, 6:13, 6:13] > 0).all() and (out[1, 8:, 14:] == 0).all()


def test_bgsub_does_not_commute_with_ts():
    # A square present only in frames 1 and 2: bgsub first warms up on frames 0..2 (square in 2 of 3) and
    # flags a ghost in frame 0; ts(3) first warms up on frames 0, 3, 6 (no square) and flags nothing.
    clips = np.full((1, 9, 12, 12, 1), 80, np.uint8)
    clips[0, 1:3, 3:9, 3:9] = 240
    a = np.asarray(minimize.apply("ts(3)|bgsub(warmup=3,k=1)", jnp.asarray(clips)))
    b = np.asarray(minimize.apply("bgsub(warmup=3,k=1)|ts(3)", jnp.asarray(clips)))
    assert a.max() == 0 and (b[0, 0, 3:9, 3:9] == 80).all()
    assert not minimize.get_op("bgsub").commutes_with_ts and not minimize.parse("ts(3)|bgsub").commutes_with_ts


def test_spatial_ops_commute_with_ts():
    clips = jnp.asarray(_moving_square_clips(t=7, h=16, w=24))
    for spec in ("gray|blur(2)|ds(2)|pixelate(3)|quant(3)", "ds(2,bicubic)|mask(25)"):
        assert minimize.parse(spec).commutes_with_ts
        np.testing.assert_array_equal(minimize.apply(f"ts(3)|{spec}", clips),
                                      minimize.apply(f"{spec}|ts(3)", clips))


# ---- ts, mask, gray, quant, pixelate: hand-worked ----------------------------------------------------------

def test_ts_keeps_every_sth_frame():
    clips = jnp.arange(2 * 7, dtype=jnp.uint8).reshape(2, 7, 1, 1, 1)
    out = minimize.apply("ts(3)", clips)
    np.testing.assert_array_equal(out[..., 0, 0, 0], [[0, 3, 6], [7, 10, 13]])
    pipe = minimize.parse("ts(3)")
    np.testing.assert_array_equal(pipe.frame_indices(7), [0, 3, 6])
    assert pipe.output_shape(7, 5, 5) == (3, 5, 5)
    np.testing.assert_array_equal(minimize.parse("ts(2)|ts(3)").frame_indices(20), [0, 6, 12, 18])
    np.testing.assert_array_equal(minimize.parse("blur(1)").frame_indices(4), [0, 1, 2, 3])


def test_mask_thresholds_luminance():
    # Luminance (PIL): (19595 R + 38470 G + 7471 B + 2^15) >> 16. (100, 0, 0) -> 30 > 25 on;
    # (0, 0, 200) -> 23 off; (25, 25, 25) -> 25 off (strict); (26, 26, 26) -> 26 on.
    rgb = np.array([[100, 0, 0], [0, 0, 200], [25, 25, 25], [26, 26, 26]], np.uint8).reshape(1, 1, 1, 4, 3)
    out = np.asarray(minimize.apply("mask(25)", jnp.asarray(rgb)))
    np.testing.assert_array_equal(out[0, 0, 0], [[255] * 3, [0] * 3, [0] * 3, [255] * 3])
    grey = jnp.asarray([0, 25, 26, 255], jnp.uint8).reshape(1, 1, 1, 4, 1)
    np.testing.assert_array_equal(minimize.apply("mask(25)", grey).ravel(), [0, 0, 255, 255])
    # Float: luminance > 25 / 255 (values exactly at the threshold are left to float rounding).
    grey_f = jnp.asarray([0.0, 0.09, 0.1, 1.0], jnp.float32).reshape(1, 1, 1, 4, 1)
    np.testing.assert_array_equal(minimize.apply("mask(25)", grey_f).ravel(), [0, 0, 1, 1])


def test_gray_and_luminance_match_pil():
    frame = _frames(17, 13, 3)
    want = np.asarray(Image.fromarray(frame).convert("L"))
    got = np.asarray(minimize.apply("gray", _clip(frame)))[0, 0]
    np.testing.assert_array_equal(got, np.repeat(want[..., None], 3, -1))
    mask = np.asarray(minimize.apply("mask(100)", _clip(frame)))[0, 0, ..., 0]
    np.testing.assert_array_equal(mask, np.where(want > 100, 255, 0))
    grey = _clip(frame[..., :1])
    np.testing.assert_array_equal(minimize.apply("gray", grey), grey)


def test_quant_hand_worked():
    x = jnp.asarray([0, 42, 43, 127, 128, 212, 213, 255], jnp.uint8).reshape(1, 1, 1, 8, 1)
    # 2 bits: levels 0, 85, 170, 255; level = floor(3 x / 255 + 1/2).
    np.testing.assert_array_equal(minimize.apply("quant(2)", x).ravel(), [0, 0, 85, 85, 170, 170, 255, 255])
    np.testing.assert_array_equal(minimize.apply("quant(1)", x).ravel(), [0, 0, 0, 0, 255, 255, 255, 255])
    full = jnp.arange(256, dtype=jnp.uint8).reshape(1, 1, 1, 256, 1)
    np.testing.assert_array_equal(minimize.apply("quant(8)", full), full)
    assert len(np.unique(minimize.apply("quant(3)", full))) == 8


def test_pixelate_hand_worked():
    x = jnp.arange(25, dtype=jnp.uint8).reshape(1, 1, 5, 5, 1)
    out = np.asarray(minimize.apply("pixelate(2)", x))[0, 0, ..., 0]
    # Tiles: [0 1 5 6] -> 3, [2 3 7 8] -> 5, [4 9] -> 6.5 -> 7 (half up), [20 21] -> 20.5 -> 21, [24] -> 24.
    np.testing.assert_array_equal(out, [[3, 3, 5, 5, 7], [3, 3, 5, 5, 7], [13, 13, 15, 15, 17],
                                        [13, 13, 15, 15, 17], [21, 21, 23, 23, 24]])


# ---- dtypes, jit, vmap ----------------------------------------------------------------------------------

# Tolerances in grey levels: 0.5 where only the final rounding differs; blur rounds after each of its six
# passes on uint8 (worst at small sigma), bicubic after each of its two.
AGREEMENT = [("ds(2)", 0.5), ("ds(2,bicubic)", 1.5), ("blur(0.5)", 2.5), ("pixelate(3)", 0.5), ("gray", 0.5),
             ("quant(3)", 0.5), ("ts(2)", 0.0)]


@pytest.mark.parametrize("spec,tol", AGREEMENT)
def test_uint8_and_float_agree(spec, tol):
    clips = jnp.asarray(_moving_square_clips(t=4, h=16, w=20))
    u8 = minimize.apply(spec, clips)
    fl = minimize.apply(spec, clips.astype(jnp.float32) / 255)
    assert u8.dtype == jnp.uint8 and fl.dtype == jnp.float32 and u8.shape == fl.shape
    assert float(jnp.abs(u8.astype(jnp.float32) - fl * 255).max()) <= tol + 1e-3


def test_uint8_and_float_agree_on_binary_ops():
    clips = jnp.asarray(_bgsub_scenes())
    for spec in ("mask(25)", "bgsub(warmup=4)"):
        u8 = np.asarray(minimize.apply(spec, clips)) > 0
        fl = np.asarray(minimize.apply(spec, clips.astype(jnp.float32) / 255)) > 0
        assert (u8 != fl).mean() < 0.01, spec
    half = minimize.apply("mask(25)", clips.astype(jnp.bfloat16) / 255)
    assert half.dtype == jnp.bfloat16


def test_jit_and_vmap():
    # apply() itself runs a jitted program; here also inside a caller's jit, and vmapped over an extra axis.
    # One pipeline touching a scan (bgsub), a region op, the blur loop, a shape change and a threshold.
    clips = jnp.asarray(_moving_square_clips(t=6, h=16, w=20))
    masks = {"p": jnp.zeros(clips.shape[:4], bool).at[:, :, 4:12, 4:12].set(True)}
    pipe = minimize.parse("ts(2)|bgsub(warmup=3)|blur(0.5)@p|ds(2)|mask(25)")
    ref = [pipe.apply(clips, masks), pipe.apply(clips[::-1], masks)]
    batched = jax.vmap(pipe.apply, in_axes=(0, None))(jnp.stack([clips, clips[::-1]]), masks)
    np.testing.assert_array_equal(batched[0], ref[0])
    np.testing.assert_array_equal(batched[1], ref[1])
    # Inside a caller's jit: the whole pipeline traces and lowers; a light one also runs and matches.
    assert "while" in jax.jit(pipe.apply).lower(clips, masks).as_text()
    light = minimize.parse("gray|pixelate(2)@p|ts(4)")
    np.testing.assert_array_equal(jax.jit(light.apply)(clips, masks), light.apply(clips, masks))


# ---- region restriction ---------------------------------------------------------------------------------

def test_region_restricted_op_changes_only_inside_the_mask():
    clips = jnp.asarray(_moving_square_clips(t=4, h=16, w=20))
    inside = np.zeros(clips.shape[:4], bool)
    inside[:, :, 3:9, 5:15] = True
    out = np.asarray(minimize.apply("blur(1)@person", clips, masks={"person": jnp.asarray(inside)}))
    full = np.asarray(minimize.apply("blur(1)", clips))
    np.testing.assert_array_equal(out[~inside], np.asarray(clips)[~inside])
    np.testing.assert_array_equal(out[inside], full[inside])


def test_region_masks_follow_ts_and_ds():
    clips = jnp.asarray(_moving_square_clips(t=6, h=16, w=20))
    inside = np.zeros(clips.shape[:4], bool)
    inside[:, 0::3, 0:4, 0:4] = True                    # frames 0 and 3; after ds(2): rows/cols 0..1
    inside[:, 1, :, :] = True                           # frame 1 is dropped by ts(3)
    out = np.asarray(minimize.apply("ts(3)|ds(2)|quant(1)@r", clips, masks={"r": jnp.asarray(inside)}))
    small = np.asarray(minimize.apply("ts(3)|ds(2)", clips))
    quant = np.asarray(minimize.apply("ts(3)|ds(2)|quant(1)", clips))
    np.testing.assert_array_equal(out[:, :, :2, :2], quant[:, :, :2, :2])
    np.testing.assert_array_equal(out[:, :, 2:], small[:, :, 2:])
    # "any pixel of the block" rule: a single masked pixel marks its whole 2x2 block.
    one = np.zeros(clips.shape[:4], bool)
    one[:, :, 5, 7] = True
    out = np.asarray(minimize.apply("ds(2)|gray@r", clips, masks={"r": jnp.asarray(one)}))
    gray = np.asarray(minimize.apply("ds(2)|gray", clips))
    np.testing.assert_array_equal(out[:, :, 2, 3], gray[:, :, 2, 3])
    assert (out[:, :, 2, 2] != gray[:, :, 2, 2]).any()


def test_region_errors():
    clips = jnp.zeros((1, 2, 8, 8, 1), jnp.uint8)
    with pytest.raises(ValueError, match=r"no mask named 'person' was passed \(masks given: face\)"):
        minimize.apply("blur(4)@person", clips, masks={"face": jnp.zeros((1, 2, 8, 8), bool)})
    with pytest.raises(ValueError, match=r"no mask named 'person'.*masks given: none"):
        minimize.apply("blur(4)@person", clips)
    with pytest.raises(ValueError, match=r"mask 'person' has shape \(1, 2, 8\), expected"):
        minimize.apply("blur(4)@person", clips, masks={"person": jnp.zeros((1, 2, 8), bool)})
    for spec in ("ts(5)@person", "ds(2)@person", "blur(1)|ds(2,bicubic)@face"):
        with pytest.raises(ValueError, match="changes the clip shape, so it cannot be restricted to a region"):
            minimize.parse(spec)


# ---- registry and spec grammar --------------------------------------------------------------------------

def test_registry_metadata():
    ops = minimize.OPS
    assert set(ops) >= {"ts", "ds", "blur", "mask", "bgsub", "pixelate", "quant", "gray"}
    assert ops["ts"].kind == minimize.BREADTH and not ops["ts"].preserves_shape
    assert all(ops[n].kind == minimize.DEPTH for n in ("ds", "blur", "mask", "bgsub", "pixelate", "quant"))
    assert not ops["ds"].preserves_shape and ops["blur"].preserves_shape and ops["bgsub"].preserves_shape
    assert [p.name for p in ops["bgsub"].params] == ["warmup", "alpha", "k", "min_std"]
    pipe = minimize.parse("ts(5)|blur(4)")
    assert pipe.has_breadth and pipe.has_depth and pipe.breadth_ops == ("ts",) and pipe.depth_ops == ("blur",)
    assert pipe.commutes_with_ts and not minimize.parse("ts(5)|bgsub").commutes_with_ts
    assert not minimize.parse("gray").has_breadth and minimize.parse("blur(1)@a|gray@b|mask@a").regions == ("a", "b")


@pytest.mark.parametrize("spec,message", [
    ("blur(-1)", r"blur: parameter sigma=-1 is out of range \[0, 64\]"),
    ("quant(9)", r"quant: parameter bits=9 is out of range \[1, 8\]"),
    ("ts(0)", r"ts: parameter stride=0 is out of range \[1, 10000\]"),
    ("bgsub(k=0)", r"bgsub: parameter k=0 is out of range \(0, 100\]"),
    ("bgsub(alpha=1.5)", r"bgsub: parameter alpha=1.5 is out of range \[0, 1\]"),
    ("ts(2.5)", r"ts: parameter stride=2.5 must be an integer in \[1, 10000\]"),
    ("blur(big)", r"blur: parameter sigma=big must be a number"),
    ("ds(2,cubic)", r"ds: parameter method=cubic is not valid; expected one of area, bicubic"),
    ("ds(2,bicubic,3)", r"ds takes at most 2 argument"),
    ("bgsub(q=1)", r"bgsub has no parameter 'q'; parameters: bgsub\(warmup=20"),
    ("blur", r"blur needs parameter 'sigma'"),
    ("blur(sigma=1, sigma=2)", r"parameter 'sigma' given twice"),
    ("blur(sigma=1, 2)", r"positional argument '2' at position 14 follows a keyword argument"),
    ("ts(5)|fuzz(3)",
     r"unknown op 'fuzz'; known ops: bgsub, black, blur, ds, gray, mask, pixelate, quant, ts.*position 6"),
    ("ts(5", r"unbalanced '\(' at position 2"),
    ("ts(5)|blur(4", r"unbalanced '\(' at position 10"),
    ("ts(5))", r"unbalanced '\)' at position 5"),
    ("ts(5|blur(4)", r"unbalanced '\(' at position 2 .*missing '\)' before '\|' at position 4"),
    ("ts((5))", r"nested '\(' at position 3"),
    ("ts(5)||blur(4)", r"empty op at position 6"),
    ("|blur(4)", r"empty op at position 0"),
    ("ts(5)| ", r"empty op at position 7"),
    ("blur(2x)", r"bad number '2x' at position 5"),
    ("blur( 1..5 )", r"bad number '1\.\.5' at position 6"),
    ("ds(2, -)", r"bad number '-' at position 6"),
    ("blur(,)", r"empty argument at position 5"),
    ("blur(4) x", r"unexpected 'x' at position 8"),
    ("blur(4)@", r"expected a region name after '@' at position 7"),
    ("3blur", r"expected an op name at position 0"),
    ("raw(2)", r"'raw' at position 0 takes no arguments"),
])
def test_bad_specs_raise_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        minimize.parse(spec)


@pytest.mark.parametrize("spec,canonical", [
    ("ts(5)|blur(4)", "ts(5)|blur(4)"),
    ("  ds( 2 , bicubic ) |mask( 25 )", "ds(2,bicubic)|mask(25)"),
    ("ds(2, method=area)", "ds(2)"),
    ("gray", "gray"),
    ("mask", "mask(25)"),
    ("bgsub(warmup=20)", "bgsub"),
    ("bgsub(k=3, warmup=10)", "bgsub(warmup=10,k=3)"),
    ("blur(sigma=0.5)@person", "blur(0.5)@person"),
    ("blur(4.0) @ face | pixelate(8)", "blur(4)@face|pixelate(8)"),
    ("ts(10)|identity|quant(3)", "ts(10)|quant(3)"),
    ("", "identity"),
    ("identity", "identity"),
    ("raw", "identity"),
])
def test_canonical_form_round_trips(spec, canonical):
    pipe = minimize.parse(spec)
    assert str(pipe) == canonical
    assert minimize.parse(str(pipe)) == pipe and hash(minimize.parse(str(pipe))) == hash(pipe)


def test_identity_pipeline_and_shapes():
    clips = jnp.asarray(_moving_square_clips(t=5, h=16, w=20))
    for spec in ("", "raw", "identity"):
        pipe = minimize.parse(spec)
        assert pipe.is_identity and not pipe.has_breadth and not pipe.has_depth
        np.testing.assert_array_equal(pipe.apply(clips), clips)
    pipe = minimize.parse("ts(2)|ds(2)|ds(2,bicubic)")
    assert pipe.output_shape(5, 16, 20) == (3, 4, 5)
    assert pipe.apply(clips).shape == (2, 3, 4, 5, 3)


def test_bad_clips_are_rejected():
    with pytest.raises(ValueError, match=r"shape \(B, T, H, W, C\), got shape \(2, 8, 8, 3\)"):
        minimize.apply("gray", jnp.zeros((2, 8, 8, 3), jnp.uint8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        minimize.apply("gray", jnp.zeros((1, 2, 8, 8, 2), jnp.uint8))
    with pytest.raises(ValueError, match="uint8 .* or float .*got dtype int32"):
        minimize.apply("gray", jnp.zeros((1, 2, 8, 8, 3), jnp.int32))
    with pytest.raises(TypeError, match="must be a string"):
        minimize.parse(5)


def test_register_op_extends_the_grammar():
    op = registry.Op("invert", lambda clips: 255 - clips, (), kind=minimize.DEPTH, commutes_with_ts=True,
                     preserves_shape=True, doc="test op")
    minimize.register_op(op)
    try:
        clips = jnp.full((1, 1, 2, 2, 1), 5, jnp.uint8)
        np.testing.assert_array_equal(minimize.apply("invert@m", clips, masks={"m": jnp.ones((1, 1, 2, 2), bool)}),
                                      jnp.full_like(clips, 250))
    finally:
        del minimize.OPS["invert"]
    with pytest.raises(ValueError, match="reserved"):
        minimize.register_op(registry.Op("raw", lambda c: c, (), minimize.DEPTH, True, True, "x"))


def test_module_level_functions_exposed():
    # The functions behind the ops are public for callers that skip the spec (the benchmark, trainers).
    assert minimize.open_close is background.open_close and minimize.gray is spatial.gray
    assert minimize.area_downsample is resize.area_downsample and minimize.gaussian_blur is blur.gaussian_blur
    assert list(minimize.sample_indices(7, 3)) == [0, 3, 6]
    assert resize.bicubic_matrix(8, 4).sum(0) == pytest.approx(np.ones(4))
