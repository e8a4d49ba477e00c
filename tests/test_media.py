"""Probe, decode, encode and the one-line errors for bad files, on real footage."""

import threading

import av
import numpy as np
import pytest

from rereel.errors import MediaError
from rereel.media import VideoWriter, decode_frames, fingerprint, probe


def test_probe_real_files(archive, media):
    info = probe(archive / "pd_chaplin_excerpt.mp4")
    assert info.width == 640 and info.height == 360
    assert abs(info.fps - 25) < 1e-6 and info.has_audio
    assert 9 < info.duration < 10.5
    vertical = probe(archive / "pd_pixwarp_nasa_cyclone_freddy_vertical.mp4")
    assert vertical.display_size == (270, 480)
    assert not probe(archive / "ccby_intel_asl_sign_book.mkv").has_audio
    webm = probe(media / "trailers" / "sintel_trailer_480x270.webm")
    assert webm.codec == "vp8" and webm.has_audio


def test_decode_times_are_monotonic_and_complete(archive):
    path = archive / "cc0_mdn_stream_of_water.mp4"
    frames = [(f.index, f.time) for f in decode_frames(path)]
    info = probe(path)
    assert abs(len(frames) - info.frames) <= 2
    times = [t for _, t in frames]
    assert times[0] == 0.0 and all(b > a for a, b in zip(times, times[1:]))


def test_rgb_scaling(archive):
    f = next(iter(decode_frames(archive / "pd_chaplin_excerpt.mp4")))
    rgb = f.rgb(224, 224)
    assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8 and rgb.std() > 5


def _independent_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """The frame scaled without FFmpeg's scaler: its YUV 4:2:0 (or 4:4:4) planes read raw, the
    chroma repeated to full size, BT.601 to RGB in float (limited range, or full for a JPEG-range
    `yuvj420p` frame), area-scaled by OpenCV."""
    import cv2

    full = frame.format.name == "yuvj420p"
    yuv = frame.to_ndarray(format=frame.format.name).astype(np.float32)
    h, w = frame.height, frame.width
    if frame.format.name == "yuv444p":  # the three planes, each at full size
        y, u, v = yuv[0], yuv[1] - 128, yuv[2] - 128
    else:  # 4:2:0, the planes stacked: Y, then U, then V
        y = yuv[:h]
        chroma = yuv[h:].reshape(2, h // 2, w // 2)
        u, v = (np.repeat(np.repeat(c, 2, 0), 2, 1) - 128 for c in chroma)
    if full:
        rgb = np.stack([y + 1.402 * v, y - 0.344 * u - 0.714 * v, y + 1.772 * u], axis=-1)
    else:
        y = 1.164 * (y - 16)
        rgb = np.stack([y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u], axis=-1)
    return cv2.resize(rgb.clip(0, 255), (width, height), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("film", ["ccby_bbb_film_first30s.webm", "ccby_mdn_tears_of_steel_battle_clip.webm",
                                  "ccby_intel_asl_sign_book.mkv", "pd_imageio_cockatoo.mp4"])
def test_scaled_frames_match_an_independent_conversion(archive, film):
    """`rgb()` (FFmpeg's scaler to BGR, channels swapped: faster than its RGB) and a shot
    detector's `detector_rgb()` (scaled in YUV, then converted) against the same frames
    converted and scaled without FFmpeg: the channels in RGB order, within two levels (FFmpeg's
    own RGB output is off from this reference by 1.3-1.8 levels on average, by up to 1.8 in a
    channel's mean; a swap of red and blue moves the channels by tens of levels, and a
    full-range frame read as limited range by about 9)."""
    for i, f in enumerate(decode_frames(archive / film)):
        if i % 60:
            continue
        here_for = {"ccby_intel_asl_sign_book.mkv": "yuvj420p", "pd_imageio_cockatoo.mp4": "yuv444p"}
        assert f.frame.format.name == here_for.get(film, f.frame.format.name)
        # A 4:4:4 picture keeps its colour (through 4:2:0 it came out 1.3-1.8 levels off, a level darker).
        within, means_within = (0.8, 0.5) if f.frame.format.name == "yuv444p" else (2.0, 2.5)
        for size in ((256, 144), (224, 224), (640, 360)):
            want = _independent_rgb(f.frame, *size)
            for got in (f.rgb(*size), f.detector_rgb(*size)):
                got = got.astype(np.float32)
                assert np.abs(got - want).mean() < within, (film, i, size, np.abs(got - want).mean())
                assert np.abs(got.mean((0, 1)) - want.mean((0, 1))).max() < means_within, (film, i, size)


def test_fingerprint_follows_content_not_path(archive, tmp_path):
    src = archive / "cc0_mdn_stream_of_water.mp4"
    copy = tmp_path / "renamed.bin"
    copy.write_bytes(src.read_bytes())
    assert fingerprint(copy) == fingerprint(src)
    assert fingerprint(copy) != fingerprint(archive / "pd_chaplin_excerpt.mp4")


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda d, m: d / "missing.mp4", "no such file"),
        (lambda d, m: _write(d / "empty.mp4", b""), "empty file"),
        (lambda d, m: _write(d / "notes.mp4", b"not a video"), "not a readable video"),
        (lambda d, m: m / "odd" / "audio_only_apollo15_opus.mp4", "audio only"),
        (lambda d, m: d, "is a folder"),
    ],
)
def test_bad_input_reasons(tmp_path, media, make, reason):
    path = make(tmp_path, media)
    with pytest.raises(MediaError) as e:
        probe(path)
    assert reason in str(e.value) and str(path) in str(e.value)


def test_truncated_file_is_reported(media, tmp_path):
    data = (media / "archive" / "ccby_mdn_tears_of_steel_battle_clip.webm").read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 3])
    probe(cut)  # the header survives...
    with pytest.raises(MediaError, match="truncated"):
        for _ in decode_frames(cut):  # ...but the frames stop early
            pass


def test_writer_keeps_fps_frames_and_audio(archive, tmp_path):
    src = archive / "cc0_mdn_stream_of_water.mp4"
    info = probe(src)
    out = tmp_path / "copy.mp4"
    with VideoWriter(out, 320, 240, info.fps, audio_from=src) as w:
        for f in decode_frames(src):
            w.write(f.rgb(320, 240))
    got = probe(out)
    assert got.has_audio and got.codec == "h264"
    assert abs(got.fps - info.fps) < 0.01
    assert abs(sum(1 for _ in decode_frames(out)) - w.frames) == 0
    assert not (tmp_path / "copy.partial.mp4").exists()


def test_writer_audio_ends_with_the_video_written(archive, tmp_path):
    """The audio is encoded in a thread beside the video (media/encode.py) and must still end,
    to the sample, where the video written ends: 50 frames at 25 fps are 2 s. PCM in a MOV,
    counted by an independent decode, has no codec padding to blur the count."""
    src = archive / "pd_chaplin_excerpt.mp4"  # 25 fps, with audio, longer than 2 s
    out = tmp_path / "short.mov"
    with VideoWriter(out, 160, 120, 25, audio_from=src) as w:
        for f in decode_frames(src):
            if f.index == 50:
                break
            w.write(f.rgb(160, 120))
    with av.open(str(out)) as c:
        rate, channels = c.streams.audio[0].rate, c.streams.audio[0].channels
        pcm = np.concatenate([fr.to_ndarray().reshape(-1) for fr in c.decode(c.streams.audio[0])])
    assert len(pcm) == 2 * rate * channels
    assert np.abs(pcm.astype(np.int32)).max() > 1000  # sound, not silence


def test_writer_with_audio_stops_its_thread_on_failure(archive, tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 64, 25, audio_from=archive / "pd_chaplin_excerpt.mp4") as w:
            for _ in range(30):
                w.write(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())
    assert not [t for t in threading.enumerate() if t.name == "rereel-audio"]


def test_writer_given_no_frame_says_so_and_leaves_nothing(archive, tmp_path):
    # With audio, `close` fails while the audio thread waits for video: it must be stopped.
    for audio in (None, archive / "pd_chaplin_excerpt.mp4"):
        with pytest.raises(MediaError, match="no video frame was written"):
            with VideoWriter(tmp_path / "empty.mp4", 64, 64, 25, audio_from=audio):
                pass
    assert not list(tmp_path.iterdir())
    assert not [t for t in threading.enumerate() if t.name == "rereel-audio"]


def test_writer_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 64, 25) as w:
            w.write(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert not out.exists() and not (tmp_path / "broken.partial.mp4").exists()


def test_truncation_is_one_rule_for_every_length_and_container(media, tmp_path):
    """Frames ending more than max(1 s, 1 %) before the stated duration: truncated, whatever
    the container does at the cut (a cut MP4 fails to decode there, a cut WebM just ends)."""
    archive = media / "archive"
    cases = [  # (clip, share of the bytes kept, refused?); stated lengths 2.0, 3.0 and 9.9 s
        ("pd_pixwarp_roundhay_garden_scene_1888.m4v", 0.45, True),  # about 0.6 of 2.0 s
        ("pd_pixwarp_roundhay_garden_scene_1888.m4v", 0.97, False),  # about 1.8 of 2.0 s
        ("cc0_mdn_stream_of_water.mp4", 0.45, True),
        ("pd_tmh_vp9_tractor.webm", 0.45, True),  # about 4.2 of 9.9 s
        ("pd_tmh_vp9_tractor.webm", 0.97, False),  # about 9.4 of 9.9 s
    ]
    for name, share, refused in cases:
        data = (archive / name).read_bytes()
        cut = tmp_path / f"cut{share}_{name}"
        cut.write_bytes(data[: int(len(data) * share)])
        if refused:
            with pytest.raises(MediaError, match="truncated: frames stop at"):
                for _ in decode_frames(cut):
                    pass
        else:
            assert sum(1 for _ in decode_frames(cut)) > 0


def test_odd_paths_are_named_not_passed_over(archive, tmp_path):
    from rereel.media.find import scan_videos

    (tmp_path / "x.mp4").mkdir()  # a folder named like a video
    tree = tmp_path / "tree"
    (tree / "inner.mov").mkdir(parents=True)
    (tree / "loop.mp4").symlink_to("loop.mp4")
    (tree / "broken.mkv").symlink_to("nowhere.mkv")
    (tree / "deep").mkdir()
    good = tree / "deep" / "water.mp4"
    good.write_bytes((archive / "cc0_mdn_stream_of_water.mp4").read_bytes())
    (tmp_path / "self").symlink_to("self")
    files, problems = scan_videos([tmp_path / "x.mp4", tree, tmp_path / "self"])
    assert files == [good, tmp_path / "self"]  # a file given by name is tried; its reason comes at indexing
    reasons = dict(problems)
    assert "folder with no video files" in reasons[tmp_path / "x.mp4"]
    assert "folder with no video files" in reasons[tree / "inner.mov"]
    assert "symbolic link loop" in reasons[tree / "loop.mp4"]
    assert "broken symbolic link" in reasons[tree / "broken.mkv"]
    assert len(problems) == 4
