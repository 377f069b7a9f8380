"""video_io: PyAV round trip against a direct PyAV decode, resizing against PIL, clip-sampling rules."""
import av
import numpy as np
import pytest
from PIL import Image

from anonvid.data import video_io
from tests.real_data import tiny_video


def test_read_video_matches_direct_pyav_decode(tmp_path):
    path = tmp_path / "v_X_g01_c01.avi"
    clip = tiny_video(0, frames=10)
    video_io.write_video(path, clip, fps=25)
    frames, fps = video_io.read_video(path)
    with av.open(str(path)) as c:  # independent oracle: PyAV without our wrapper
        ref = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert frames.dtype == np.uint8 and frames.shape == (10, 24, 32, 3) and fps == 25.0
    np.testing.assert_array_equal(frames, ref)
    assert np.abs(frames.astype(int) - clip).mean() < 12  # lossy codec, smooth content


def test_read_video_resize_matches_pil(tmp_path):
    path = tmp_path / "a.avi"
    video_io.write_video(path, tiny_video(1, frames=4))
    native, _ = video_io.read_video(path)
    small, _ = video_io.read_video(path, size=(12, 20))
    ref = np.stack([np.asarray(Image.fromarray(f).resize((20, 12), Image.BILINEAR)) for f in native])
    np.testing.assert_array_equal(small, ref)


def test_corrupt_and_missing_videos(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(video_io.VideoDecodeError, match="bad.avi"):
        video_io.read_video(bad)
    with pytest.raises(video_io.VideoDecodeError, match="not found"):
        video_io.read_video(tmp_path / "missing.avi")


def test_effective_stride_halving_rule():
    assert video_io.effective_stride(31, 16, 2) == 2  # span 31 fits exactly
    assert video_io.effective_stride(30, 16, 2) == 1
    assert video_io.effective_stride(61, 16, 4) == 4
    assert video_io.effective_stride(60, 16, 4) == 2  # 61 > 60 -> halve to 2 (span 31)
    assert video_io.effective_stride(20, 16, 4) == 1


def test_clip_indices_modes():
    np.testing.assert_array_equal(video_io.clip_indices(100, mode="center")[0], 34 + 2 * np.arange(16))
    uni = video_io.clip_indices(100, mode="uniform", num_clips=5)
    np.testing.assert_array_equal(uni[:, 0], [0, 17, 34, 52, 69])  # round(linspace(0, 69, 5))
    assert uni[-1, -1] == 99
    rnd = video_io.clip_indices(100, mode="random", num_clips=50, rng=np.random.default_rng(0))
    assert rnd.min() >= 0 and rnd.max() <= 99 and (np.diff(rnd, axis=1) == 2).all()
    short = video_io.clip_indices(20, mode="center")  # stride halved to 1; 16 of 20 frames, centred
    np.testing.assert_array_equal(short[0], 2 + np.arange(16))
    tiny = video_io.clip_indices(5, clip_len=8, mode="center")  # shorter than a clip: last frame repeated
    np.testing.assert_array_equal(tiny[0], [0, 1, 2, 3, 4, 4, 4, 4])
    with pytest.raises(ValueError, match="rng"):
        video_io.clip_indices(100, mode="random")
    with pytest.raises(ValueError, match="unknown clip sampling mode"):
        video_io.clip_indices(100, mode="dense")
