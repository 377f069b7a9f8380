"""Which encoders an output file gets, and whether its container can carry the input's audio as is.

The video is re-encoded (its pixels changed); the audio is copied packet for packet when the output container
accepts its codec, and re-encoded otherwise (e.g. PCM audio from an .avi going into an .mp4 becomes AAC).
"""
from __future__ import annotations

import dataclasses
import os

# output extension -> (video encoder, audio encoder used when the input's audio cannot be copied)
_CONTAINERS = {
    ".mp4": ("libx264", "aac"),
    ".m4v": ("libx264", "aac"),
    ".mov": ("libx264", "aac"),
    ".mkv": ("libx264", "aac"),
    ".avi": ("mpeg4", "libmp3lame"),
    ".webm": ("libvpx-vp9", "libopus"),
}
# audio codecs each container carries without re-encoding (decoder names as PyAV reports them)
_AUDIO_COPY = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".mkv": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "vorbis", "pcm_s16le", "pcm_s24le",
             "pcm_f32le", "mp2", "dts", "truehd"},
    ".avi": {"mp3", "mp2", "ac3", "pcm_s16le", "pcm_u8", "aac"},
    ".webm": {"opus", "vorbis"},
}
SUPPORTED_OUTPUTS = tuple(_CONTAINERS)


@dataclasses.dataclass(frozen=True)
class EncoderChoice:
    """How one output file is encoded.

    Attributes:
      video_codec: FFmpeg encoder for the frames.
      pix_fmt: its pixel format (yuv444p when the frame size is odd, which 4:2:0 cannot hold).
      options: encoder options (quality).
      copy_audio: the input's audio packets go into the output unchanged.
      audio_codec: encoder used when the audio is re-encoded.
    """
    video_codec: str
    pix_fmt: str
    options: dict
    copy_audio: bool
    audio_codec: str


def output_extension(path: str) -> str:
    """The lower-case extension of an output path, checked against the containers anonvid writes.

    Raises:
      ValueError: an extension anonvid cannot write, with the list of those it can.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in _CONTAINERS:
        raise ValueError(f"cannot write {path!r}: unsupported output extension {ext or '(none)'!r}; use one of "
                         f"{', '.join(SUPPORTED_OUTPUTS)}")
    return ext


def choose(out_path: str, width: int, height: int, audio_codec: str | None, *, video_codec: str | None = None,
           crf: int = 18, preset: str = "veryfast") -> EncoderChoice:
    """Encoder settings for `out_path` holding `width` x `height` frames and the input's `audio_codec`.

    Args:
      out_path: output file (its extension picks the container).
      width, height: frame size.
      audio_codec: the input's audio decoder name (None: no audio).
      video_codec: override of the container's default video encoder.
      crf: libx264 / VP9 constant-rate factor (lower is better quality; 18 is visually lossless for x264).
      preset: libx264 speed preset.
    """
    import av

    ext = output_extension(out_path)
    default_video, audio_fallback = _CONTAINERS[ext]
    codec = video_codec or default_video
    try:
        av.codec.Codec(codec, "w")
    except Exception as err:
        raise ValueError(f"video encoder {codec!r} is not available in this FFmpeg build ({err}); choose another "
                         f"with --codec, e.g. libx264 or mpeg4") from err
    odd = width % 2 or height % 2
    if codec == "libx264":
        pix_fmt = "yuv444p" if odd else "yuv420p"
        options = {"crf": str(crf), "preset": preset}
    elif codec == "libvpx-vp9":
        pix_fmt = "yuv444p" if odd else "yuv420p"
        options = {"crf": str(crf + 12), "b": "0", "row-mt": "1", "deadline": "realtime", "cpu-used": "8"}
    elif codec == "mpeg4":
        if odd:
            raise ValueError(f"mpeg4 cannot encode an odd frame size {width}x{height}; write .mp4/.mkv (libx264 "
                             f"4:4:4) instead")
        # MPEG-4 part 2 has no constant-quality knob through PyAV: a generous bit rate per pixel instead
        pix_fmt, options = "yuv420p", {"bits_per_pixel": "0.3"}
    elif codec == "ffv1":
        pix_fmt, options = "bgr0", {}  # lossless RGB: outputs equal the processed frames bit for bit
    else:
        pix_fmt, options = "yuv420p", {}
    copy = audio_codec is not None and audio_codec in _AUDIO_COPY[ext]
    return EncoderChoice(codec, pix_fmt, options, copy, audio_fallback)
