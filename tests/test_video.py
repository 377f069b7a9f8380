"""`anonvid anonymize` / `anonvid minimize` on real files: timing, audio, chunking, atomic writes, bad inputs.

Outputs are checked with PyAV (the same FFmpeg libraries as ffprobe): frame rate, frame count, size, duration and
audio presence. Pixel checks use the lossless FFV1 codec, so the written frames must equal the minimization
pipeline applied to the decoded input, bit for bit.
"""
from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from anonvid import cli, minimize
from anonvid.data.video_io import VideoDecodeError, read_video
from anonvid.video import batch, ffprobe, processors, testclip, transcode
from anonvid.video.probe import probe

FRAMES, H, W, FPS = 24, 48, 64, 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 24-frame 64x48 H.264 + AAC .mp4 and its decoded frames."""
    path = str(tmp_path_factory.mktemp("in") / "clip.mp4")
    testclip.write(path, num_frames=FRAMES, height=H, width=W, fps=FPS)
    return path, read_video(path)[0]


def _streams(path):
    with av.open(path) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
        return {"fps": Fraction(v.average_rate), "frames": n, "size": (v.height, v.width),
                "duration": c.duration / 1e6, "audio": [a.codec_context.name for a in c.streams.audio]}


def _run(*argv):
    return cli.main([*map(str, argv), "--no-progress"])


def test_minimize_keeps_rate_frames_size_duration_and_audio(clip, tmp_path):
    src, _ = clip
    out = tmp_path / "blur.mp4"
    assert _run("anonymize", src, "-o", out, "--method", "minimize", "--ops", "blur(4)") == 0
    a, b = _streams(src), _streams(str(out))
    assert (b["fps"], b["frames"], b["size"], b["audio"]) == (a["fps"], a["frames"], a["size"], ["aac"])
    assert b["duration"] == pytest.approx(a["duration"], abs=1.0 / FPS)


def test_written_frames_equal_the_pipeline_on_the_decoded_input(clip, tmp_path):
    src, frames = clip
    out = tmp_path / "blur.mkv"
    assert _run("minimize", src, "-o", out, "--ops", "blur(3)|quant(4)", "--codec", "ffv1",
                "--chunk-frames", "5") == 0
    expect = np.asarray(minimize.parse("blur(3)|quant(4)").apply(frames[None]))[0]
    np.testing.assert_array_equal(read_video(out)[0], expect)


def test_temporal_sampling_keeps_duration_at_a_lower_rate(clip, tmp_path):
    src, frames = clip
    out = tmp_path / "ts.mkv"
    assert _run("minimize", src, "-o", out, "--ops", "ts(5)", "--codec", "ffv1", "--chunk-frames", "2") == 0
    s = _streams(str(out))
    assert s["frames"] == len(range(0, FRAMES, 5)) and s["fps"] == Fraction(FPS, 5)
    assert s["duration"] == pytest.approx(FRAMES / FPS, abs=5.0 / FPS)
    np.testing.assert_array_equal(read_video(out)[0], frames[::5])


def test_downsampling_is_replicated_back_to_the_input_size(tmp_path):
    src = str(tmp_path / "odd.mkv")
    frames = testclip.write(src, num_frames=6, height=50, width=66, codec="ffv1", audio=False)
    out = tmp_path / "ds.mkv"
    assert _run("minimize", src, "-o", out, "--ops", "ds(4)", "--codec", "ffv1") == 0
    got = read_video(out)[0]
    assert got.shape == frames.shape
    padded = np.pad(frames, ((0, 0), (0, 2), (0, 2), (0, 0)), mode="edge")  # 50x66 -> 52x68, multiples of 4
    small = np.asarray(minimize.parse("ds(4)").apply(padded[None]))[0]
    np.testing.assert_array_equal(got, np.repeat(np.repeat(small, 4, 1), 4, 2)[:, :50, :66])


def test_no_audio_drops_the_audio_stream(clip, tmp_path):
    out = tmp_path / "mute.mp4"
    assert _run("minimize", clip[0], "-o", out, "--ops", "gray", "--no-audio") == 0
    assert _streams(str(out))["audio"] == []


def test_audio_is_reencoded_when_the_container_cannot_carry_it(clip, tmp_path):
    out = tmp_path / "clip.webm"  # WebM takes Opus/Vorbis, not AAC
    assert _run("minimize", clip[0], "-o", out, "--ops", "gray") == 0
    assert _streams(str(out))["audio"] == ["opus"]


def test_chunked_processing_equals_one_chunk(clip):
    src, frames = clip
    small = processors.MinimizeProcessor("pixelate(4)", chunk_frames=3)
    whole = processors.MinimizeProcessor("pixelate(4)", chunk_frames=FRAMES)
    chunks = [small(frames[i:i + 3], i) for i in range(0, FRAMES, 3)]
    np.testing.assert_array_equal(np.concatenate(chunks), whole(frames, 0))


def test_background_removal_sees_the_previous_chunk_as_history(clip):
    _, frames = clip
    proc = processors.MinimizeProcessor("bgsub(warmup=4)", chunk_frames=6)
    assert proc.context == 4
    proc(frames[:6], 0)
    second = proc(frames[6:12], 6)  # computed on frames 2..11: the last 4 of the first chunk are its history
    expect = np.asarray(minimize.parse("bgsub(warmup=4)").apply(frames[None, 2:12]))[0, 4:]
    np.testing.assert_array_equal(second, expect)


def test_a_failure_leaves_no_output_and_no_temporary_file(clip, tmp_path):
    src, _ = clip
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")

    def failing(frames, first):
        if first >= 8:
            raise RuntimeError("boom")
        return frames

    with pytest.raises(RuntimeError, match="boom"):
        transcode.transcode(probe(src), str(out), failing, chunk_frames=4)
    assert out.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_a_truncated_mp4_is_refused_without_output(clip, tmp_path, capsys):
    data = open(clip[0], "rb").read()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 3])  # an .mp4 cut short loses its index (moov atom)
    with pytest.raises(VideoDecodeError, match="not a readable video"):
        probe(str(bad))
    assert _run("minimize", bad, "-o", tmp_path / "o.mp4", "--ops", "blur(2)") == 2
    assert sorted(os.listdir(tmp_path)) == ["truncated.mp4"]


def test_a_stream_that_ends_early_is_reported(tmp_path):
    src = str(tmp_path / "cut.mkv")
    testclip.write(src, num_frames=40, codec="ffv1", audio=False)
    data = open(src, "rb").read()
    open(src, "wb").write(data[: len(data) // 2])  # Matroska streams: the first half still decodes
    result = transcode.transcode(probe(src), str(tmp_path / "o.mkv"), lambda f, i: f, chunk_frames=8)
    assert 0 < result.frames_in < 40 and result.expected_frames == 40
    assert "ended early" in result.warning


@pytest.mark.parametrize("content,message", [
    (None, "no such file"), (b"", "empty (0 bytes)"), (b"not a video at all", "not a readable video"),
])
def test_bad_inputs_exit_2_and_write_nothing(content, message, clip, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    if content is not None:
        bad.write_bytes(content)
    out = tmp_path / "out"
    assert _run("minimize", clip[0], bad, "-o", out, "--ops", "blur(2)") == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_keep_going_skips_bad_inputs_and_exits_1(clip, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    assert _run("minimize", clip[0], bad, "-o", out, "--ops", "blur(2)", "--keep-going") == 1
    assert os.listdir(out) == ["clip.mp4"] and "1 failed" in capsys.readouterr().out


def test_folders_are_mirrored_and_existing_outputs_need_overwrite(clip, tmp_path, capsys):
    tree = tmp_path / "in"
    (tree / "cam1").mkdir(parents=True)
    os.link(clip[0], tree / "cam1" / "a.mp4")
    os.link(clip[0], tree / "b.mp4")
    (tree / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    assert _run("minimize", tree, "-o", out, "--ops", "gray") == 0
    assert sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs) == \
        ["b.mp4", os.path.join("cam1", "a.mp4")]
    assert _run("minimize", tree, "-o", out, "--ops", "gray") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _run("minimize", tree, "-o", out, "--ops", "gray", "--overwrite") == 0


@pytest.mark.parametrize("argv,message", [
    (["--method", "minimize"], "--ops SPEC"),
    (["--method", "prune"], "--checkpoint DIR"),
    (["--method", "minimize", "--ops", "bgsub|ts(2)"], "after temporal sampling"),
    (["--method", "minimize", "--ops", "blur(x)"], "blur"),
])
def test_bad_arguments_exit_2(argv, message, clip, tmp_path, capsys):
    assert _run("anonymize", clip[0], "-o", tmp_path / "o.mp4", *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_output_extension_and_self_overwrite_are_checked(clip, tmp_path):
    with pytest.raises(ValueError, match="unsupported output extension"):
        batch.plan_outputs([clip[0]], str(tmp_path / "o.gif"))
    with pytest.raises(batch.BatchError, match="overwrite an input"):
        batch.plan_outputs([clip[0]], clip[0], overwrite=True)


def test_anonymizer_method_matches_the_model_on_each_frame(clip, tmp_path):
    import jax
    import jax.numpy as jnp
    import ml_collections

    from anonvid.models.registry import build_model
    from anonvid.trainers import core, identity

    kwargs = {"widths": (4, 8), "encoder": "conv"}
    model = build_model("unetpp", 3, kwargs=kwargs, dtype="float32", seed=0)
    _, params, stats = core.split_model(model)
    export = str(tmp_path / "fa")
    identity.export_anonymizer(export, ml_collections.ConfigDict(
        {"name": "unetpp", "kwargs": kwargs, "dtype": "float32"}), params, stats)
    out = tmp_path / "fa.mkv"
    assert _run("anonymize", clip[0], "-o", out, "--method", "anonymizer", "--checkpoint", export,
                "--codec", "ffv1") == 0
    frames = clip[1]
    model.eval()  # the exported f_A runs with BatchNorm's running statistics
    forward = jax.jit(lambda x: jnp.round(jnp.clip(model(x / 255.0), 0, 1) * 255))
    expect = np.asarray(forward(jnp.asarray(frames, jnp.float32)))
    got = read_video(out)[0]
    assert got.shape == frames.shape
    assert np.abs(got.astype(int) - expect.astype(int)).max() <= 1  # float rounding at .5 between batchings


def test_faces_are_hidden_in_a_video_file(tmp_path):
    """The real-face check through the command line: a pan across skimage's photographs, `faces(blur=12)`,
    faces counted before and after by scikit-image's LBP cascade (independent of the Haar masks)."""
    pytest.importorskip("cv2")
    from tests.test_regions import _lbp_faces, _pan_clip

    src = str(tmp_path / "pan.mkv")
    frames = testclip.write(src, video=_pan_clip()[0], codec="ffv1", audio=False)
    out = tmp_path / "pan_anon.mkv"
    assert _run("minimize", src, "-o", out, "--ops", "faces(blur=12)", "--codec", "ffv1",
                "--detector-size", "240") == 0
    before = sum(len(b) for b in _lbp_faces(frames))
    after = sum(len(b) for b in _lbp_faces(read_video(out)[0]))
    assert before >= 30 and after <= 0.05 * before, (before, after)


def test_face_ops_without_opencv_exit_2_saying_how_to_install(clip, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)
    assert _run("minimize", clip[0], "-o", tmp_path / "o.mp4", "--ops", "faces(black)") == 2
    assert "pip install 'anonvid[faces]'" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.skipif(not ffprobe.available(), reason="ffprobe not installed (apt install ffmpeg)")
@pytest.mark.parametrize("ops,keep_every", [("blur(4)", 1), ("ts(4)|pixelate(8)", 4)])
def test_ffprobe_sees_the_same_rate_frames_duration_and_audio(ops, keep_every, clip, tmp_path):
    out = str(tmp_path / "o.mp4")
    assert _run("minimize", clip[0], "-o", out, "--ops", ops) == 0
    check = ffprobe.compare(clip[0], out, keep_every)
    assert check["same_fps"] and check["same_frames"] and check["same_duration"] and check["audio_kept"], check


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_variable_frame_rate_timestamps_are_kept(ext, tmp_path):
    frames = testclip.frames(12, 48, 64)
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21, 22, 30]  # in 1/25 s, irregular gaps
    src = str(tmp_path / "vfr.mkv")
    with av.open(src, "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "bgr0"
        stream.codec_context.time_base = Fraction(1, 25)
        for img, p in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = p, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    out = str(tmp_path / f"o.{ext}")
    transcode.transcode(probe(src), out, lambda f, i: f, chunk_frames=5)
    with av.open(out) as c:
        s = c.streams.video[0]
        times = [float(f.pts * s.time_base) for f in c.decode(s)]
    np.testing.assert_allclose(times, np.array(pts) / 25, atol=1e-3)
