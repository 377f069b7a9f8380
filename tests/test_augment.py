"""Clip augmentation: one draw per clip shared by all frames, identity when switched off, clear errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from anonvid.data.augment import ClipAugment, augment_clips

OFF = ClipAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False, jitter=0.0, erase_prob=0.0)


def _clips(seed=0, b=6, t=4, h=12, w=16):
    return jax.random.uniform(jax.random.key(seed), (b, t, h, w, 3))


def test_switched_off_is_identity():
    x = _clips()
    np.testing.assert_allclose(augment_clips(jax.random.key(1), x, OFF), x, atol=1e-6)


def test_flip_only_gives_the_clip_or_its_mirror_and_both_occur():
    x = _clips(b=16)
    y = np.asarray(augment_clips(jax.random.key(2), x, ClipAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                                                                   jitter=0.0, erase_prob=0.0)))
    same = [np.allclose(y[i], x[i]) for i in range(16)]
    mirrored = [np.allclose(y[i], x[i, :, :, ::-1]) for i in range(16)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert any(same) and any(mirrored)


def test_identical_frames_stay_identical_under_the_full_recipe():
    """The same crop, flip, jitter and erased box in every frame: a still clip stays still."""
    frame = jax.random.uniform(jax.random.key(3), (8, 1, 16, 16, 3))
    x = jnp.repeat(frame, 5, axis=1)
    y = np.asarray(augment_clips(jax.random.key(4), x, ClipAugment(erase_prob=1.0)))
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0.0 <= y.min() and y.max() <= 1.0
    np.testing.assert_allclose(y, np.repeat(y[:, :1], 5, axis=1), atol=1e-6)
    assert not np.allclose(y, x)  # it did something


def test_crop_of_a_ramp_is_a_zoom_into_the_ramp():
    """A horizontal ramp cropped and resized stays a non-decreasing ramp spanning a sub-range of [0, 1]."""
    ramp = jnp.broadcast_to(jnp.linspace(0.0, 1.0, 32)[None, None, None, :, None], (4, 2, 32, 32, 3))
    aug = ClipAugment(crop_scale=(0.3, 0.3), crop_ratio=(1.0, 1.0), flip=False, jitter=0.0, erase_prob=0.0)
    y = np.asarray(augment_clips(jax.random.key(5), ramp, aug))[:, 0, 16, :, 0]
    assert np.all(np.diff(y, axis=1) >= -1e-6)
    span = y[:, -1] - y[:, 0]
    assert np.all(span < 0.7) and np.all(span > 0.4)  # a crop of width sqrt(0.3) ≈ 0.55 of the frame


@pytest.mark.parametrize("kwargs, match", [
    (dict(crop_scale=(0.0, 1.0)), "crop_scale"), (dict(jitter=1.5), "jitter"), (dict(erase_prob=2.0), "erase_prob"),
])
def test_bad_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClipAugment(**kwargs)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="unknown augmentation"):
        ClipAugment.from_config({"crop": 1})
    with pytest.raises(ValueError, match="float clips"):
        augment_clips(jax.random.key(0), jnp.zeros((1, 2, 8, 8, 3), jnp.uint8))
    with pytest.raises(ValueError, match=r"\(B, T, H, W, C\)"):
        augment_clips(jax.random.key(0), jnp.zeros((2, 8, 8, 3)))
