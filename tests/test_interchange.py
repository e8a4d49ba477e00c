"""Timelines that editing software reads as rereel renders them: holds, MLT, FCP XML, EDL;
audio sync from late-starting streams; interrupted renders.

A small real timeline (no matcher run): target shots of a 24 fps film filled with archive
segments at 24, 29.97 and 25 fps. Target shot 0 (103 frames) gets a 0.79 s archive shot that
another shot follows in its file, so it must hold its last frame; shot 1 gets a segment that
ends exactly on its archive shot's cut. Expected frames come from PyAV directly.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from conftest import sigint_as_at_a_terminal

from rereel.errors import MediaError
from rereel.library.catalog import Catalog
from rereel.match.choose import Candidate, ShotMatch
from rereel.match.score import Placement
from rereel.media import VideoWriter
from rereel.render import render_timeline
from rereel.timeline import build_timeline, media_path, read_timeline, remake_track, write_timeline
from test_library import rereel

TARGET = "ccby_zwm_caminandes_llama_drama_10s.mp4"  # 24 fps, shots of 103, 122 and 15 frames
SHORT = "ccby_zwm_tears_of_steel_10s.mp4"  # 24 fps; its shot 3 (19 frames) is followed by shot 4
FIT_END = "pd_steamboat_willie_1928_extract.mp4"  # 29.97 fps, shot 0 of 6.5 s
OTHER = "pd_chaplin_excerpt.mp4"  # 25 fps, with audio


def require(what: str, found: bool) -> None:
    """An optional tool or package: fail under CI (which installs it), skip elsewhere."""
    if not found:
        msg = f"{what} not found (install it to run this test)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def require_melt() -> str:
    require("melt (MLT)", shutil.which("melt") is not None)
    require("otio-mlt-adapter", "mlt_xml" in otio.adapters.available_adapter_names())
    return shutil.which("melt")


def decode_gray(path, size=None) -> tuple[np.ndarray, np.ndarray]:
    """All frames of `path` (grey, optionally scaled) and their times from the first frame."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        first = s.start_time or 0
        times, frames = [], []
        for f in c.decode(s):
            times.append(float((f.pts - first) * s.time_base))
            g = f.reformat(*size, format="gray") if size else f.reformat(format="gray")
            frames.append(g.to_ndarray().astype(np.float32))
    return np.array(times), np.stack(frames)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def small(archive, tmp_path_factory):
    lib = tmp_path_factory.mktemp("interchange") / "library"
    rereel("index", *[archive / n for n in (TARGET, SHORT, FIT_END, OTHER)], "--library", lib, check=True)
    cat = Catalog(lib / "catalog.sqlite")
    videos = {v["name"]: v for v in cat.videos()}
    shots = {name: cat.shots(v["id"]) for name, v in videos.items()}
    target = videos[TARGET]
    tshots = shots[TARGET]
    assert [s["end_frame"] - s["start_frame"] for s in tshots] == [103, 122, 15]

    def cand(shot, start, duration):
        row = cat.shot(shot["id"])
        end = min(start + duration, row["end"])
        p = Placement(0.9, start, end, row["end"] - start >= duration - 0.1, 0.9, 0.9, 0.9)
        return Candidate(row["id"], row["video_id"], row["path"], row["name"], row["fps"], row["video_duration"], p)

    dur = [s["end"] - s["start"] for s in tshots]
    short, fit = shots[SHORT][3], shots[FIT_END][0]
    chosen = [cand(short, short["start"], dur[0]), cand(fit, fit["end"] - dur[1], dur[1]),
              cand(shots[OTHER][0], 3.0, dur[2])]
    matches = [ShotMatch(s["idx"], s["start_frame"], s["end_frame"], s["start"], s["end"], False, [c], c)
               for s, c in zip(tshots, chosen)]
    tl = build_timeline("interchange", {
        "path": target["path"], "fps": target["fps"], "width": 640, "height": 360, "duration": target["duration"],
        "frames": 240, "has_audio": False}, matches, {"library": str(lib), "fit": "letterbox"})
    cat.close()
    out = lib.parent
    for ext in ("otio", "edl", "xml"):
        write_timeline(tl, out / f"t.{ext}")
    render_timeline(tl, [(out / "rereel.mp4", False)], fit="letterbox")
    return {"dir": out, "tl": read_timeline(out / "t.otio"), "short": short, "archive": archive}


def items(tl):
    """(first output frame, frames, item) along the remake track."""
    k, rows = 0, []
    for item in remake_track(tl):
        if isinstance(item, otio.schema.Transition):  # takes no time of its own
            continue
        n = round(item.source_range.duration.value)
        rows.append((k, n, item))
        k += n
    return rows


def test_short_segment_holds_its_last_frame_and_never_shows_the_next_shot(small):
    rows = items(small["tl"])
    (k0, n0, seg), (k1, n1, hold) = rows[0], rows[1]
    assert media_path(seg.media_reference).endswith(SHORT) and media_path(hold.media_reference).endswith(SHORT)
    assert n0 + n1 == 103 and k1 == n0 and n1 > 0
    assert [e.schema_name() for e in hold.effects] == ["FreezeFrame"] and not seg.effects
    shot = small["short"]
    assert seg.source_range.end_time_exclusive().to_seconds() <= shot["end"] + 1e-6
    assert hold.source_range.start_time == seg.source_range.end_time_inclusive()
    # Which archive frame does each output frame of target shot 0 show? The nearest of the
    # archive's frames from this shot's start to the end of the file, decoded by PyAV here.
    times, src = decode_gray(small["archive"] / SHORT, (160, 90))
    _, out = decode_gray(small["dir"] / "rereel.mp4", (160, 90))
    first, end = np.searchsorted(times, shot["start"] - 1e-6), np.searchsorted(times, shot["end"] - 1e-6)
    assert end < len(times) - 10  # the file goes on into the next shot: bleeding would show it
    shown = [first + int(np.argmin(np.abs(src[first:] - out[k]).mean(axis=(1, 2)))) for k in range(103)]
    assert all(first <= i < end for i in shown), f"archive frames {sorted(set(shown))}, shot is [{first}, {end})"
    assert set(shown[n0:]) == {end - 1}  # the hold shows the shot's last frame


def test_melt_renders_the_timeline_as_rereel_does(small):
    melt = require_melt()
    d = small["dir"]
    tl = small["tl"]
    edit = otio.schema.Timeline(name="remake")
    edit.tracks.append(remake_track(tl).deepcopy())
    edit.global_start_time = otio.opentime.RationalTime(0, 24)
    (d / "t.mlt").write_text(otio.adapters.write_to_string(
        edit, adapter_name="mlt_xml", width="640", height="360", progressive="1", sample_aspect_num="1",
        sample_aspect_den="1", display_aspect_num="16", display_aspect_den="9", frame_rate_num="24", frame_rate_den="1"))
    # real_time=-1: render every frame, as Kdenlive and Shotcut render to a file (the default, 1,
    # plays in real time and may drop frames when the machine is busy). One fresh clone's `make
    # test` found melt's file unreadable after melt exited 0; melt's own words, if it happens again:
    proc = subprocess.run([melt, "-quiet", str(d / "t.mlt"), "-consumer", f"avformat:{d / 'melt.mp4'}",
                           "real_time=-1", "vcodec=libx264", "crf=12", "preset=veryfast", "an=1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    size = (d / "melt.mp4").stat().st_size if (d / "melt.mp4").exists() else None
    assert size, (size, proc.stdout[-1000:], proc.stderr[-2000:])
    _, ours = decode_gray(d / "rereel.mp4", (320, 180))
    _, theirs = decode_gray(d / "melt.mp4", (320, 180))
    assert len(ours) == len(theirs) == 240
    for k, n, item in items(tl):
        worst = min(corr(ours[j], theirs[j]) for j in range(k, k + n))
        assert worst > 0.95, f"{item.name}: melt and rereel differ (frame correlation {worst:.3f})"
        if item.effects:  # the hold survives MLT: one frame, still, the one rereel holds
            assert np.abs(np.diff(theirs[k:k + n], axis=0)).mean() < 0.5, item.name


def test_fcp_xml_gives_each_file_its_own_rate(small):
    root = ET.parse(small["dir"] / "t.xml").getroot()
    seq = root.find(".//sequence")
    assert (seq.findtext("rate/timebase"), seq.findtext("rate/ntsc")) == ("24", "FALSE")
    sc = seq.find("media/video/format/samplecharacteristics")
    assert (sc.findtext("width"), sc.findtext("height"), sc.findtext("rate/timebase")) == ("640", "360", "24")
    files = {}
    for f in root.iter("file"):
        if f.find("pathurl") is None:
            continue
        path = media_path(otio.schema.ExternalReference(target_url=f.findtext("pathurl")))
        with av.open(path) as c:  # an independent probe of the real rate
            fps = Fraction(c.streams.video[0].average_rate)
        ntsc = fps.denominator == 1001
        base = round(fps * Fraction(1001, 1000)) if ntsc else int(fps)
        assert (f.findtext("rate/timebase"), f.findtext("rate/ntsc")) == (str(base), "TRUE" if ntsc else "FALSE"), path
        assert f.findtext("media/video/samplecharacteristics/rate/timebase") == str(base)
        files[f.get("id")] = (path, float(fps))
    assert {round(v[1], 2) for v in files.values()} == {24.0, 29.97, 25.0}
    clips = [c for c in seq.find("media/video/track").iter("clipitem")]
    otio_clips = [it for it in remake_track(small["tl"]) if isinstance(it, otio.schema.Clip)]
    assert len(clips) == len(otio_clips)
    for c, it in zip(clips, otio_clips):
        path, fps = files[c.find("file").get("id")]
        assert len(c.findall("rate")) == 1 and c.findtext("rate/timebase") == str(round(fps))
        start = it.source_range.start_time.to_seconds()
        assert int(c.findtext("in")) == int(np.floor(start * fps + 1e-6)), it.name
        span = int(c.findtext("out")) - int(c.findtext("in"))
        if it.effects:  # the hold: one source frame, slowed to fill its place, never more
            assert span == 1 and c.find("filter/effect/effectid").text == "timeremap"
        else:
            assert abs(span / fps - it.source_range.duration.to_seconds()) <= 1 / fps + 1e-6, it.name


def test_edl_source_ranges_match_the_timeline(small):
    try:
        import pycmx
    except ImportError:
        pycmx = None
    require("pycmx", pycmx is not None)
    with open(small["dir"] / "t.edl") as f:
        edl = pycmx.parse_cmx3600(f)
    edits = [e for ev in edl.events for e in ev.edits]
    clips = [it for it in remake_track(small["tl"]) if isinstance(it, otio.schema.Clip)]
    assert len(edits) == len(clips)
    rate = 24

    def frames(tc):
        h, m, s, f = (int(x) for x in tc.replace(";", ":").split(":"))
        return ((h * 60 + m) * 60 + s) * rate + f

    record = 0
    for e, it in zip(edits, clips):
        src = it.source_range
        assert frames(e.source_in) == src.start_time.value, it.name
        # EDL source timecodes count frames at the record rate (README): a hold reads one frame.
        assert frames(e.source_out) == src.start_time.value + (1 if it.effects else src.duration.value), it.name
        assert frames(e.record_in) == record
        record += src.duration.value
        assert frames(e.record_out) == record


def mono(path, seconds, rate=8000) -> np.ndarray:
    with av.open(str(path)) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=rate)
        chunks = [f.to_ndarray().ravel() for frame in c.decode(c.streams.audio[0]) for f in res.resample(frame)]
    return np.concatenate(chunks).astype(np.float32)[: int(rate * seconds)]


def late(container, packet, offset=1.4):
    """Mux `packet` `offset` seconds late, as ffmpeg's MPEG-TS muxing does."""
    shift = int(offset / packet.time_base)
    packet.pts = None if packet.pts is None else packet.pts + shift
    packet.dts = None if packet.dts is None else packet.dts + shift
    container.mux(packet)


def test_audio_stays_in_sync_when_the_source_starts_late(archive, tmp_path):
    """MPEG-TS from ffmpeg starts its streams at about 1.4 s (camera files: anywhere). The output's
    audio at video time t must be the source's audio at video time t."""
    src = archive / OTHER
    ts = tmp_path / "late.ts"
    with av.open(str(src)) as c, av.open(str(ts), "w", format="mpegts") as o:
        vin, ain = c.streams.video[0], c.streams.audio[0]
        vout = o.add_stream("libx264", rate=25, options={"bf": "0"})
        vout.width, vout.height, vout.pix_fmt = 320, 180, "yuv420p"
        aout = o.add_stream("aac", rate=ain.codec_context.sample_rate)
        for frame in c.decode(vin, ain):
            if frame.time is not None and frame.time > 4.0:
                continue
            if isinstance(frame, av.VideoFrame):
                frame = frame.reformat(320, 180, "yuv420p")
                frame.pict_type = av.video.frame.PictureType.NONE
            for p in (vout if isinstance(frame, av.VideoFrame) else aout).encode(frame):
                late(o, p)
        for s in (vout, aout):
            for p in s.encode(None):
                late(o, p)
    with av.open(str(ts)) as c:
        starts = [float(s.start_time * s.time_base) for s in (c.streams.video[0], c.streams.audio[0])]
        n = sum(1 for _ in c.decode(video=0))
    assert min(starts) > 0.5, starts  # what this test is about: streams that do not start at 0
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 320, 180, 25, audio_from=ts) as w:
        for _ in range(n):
            w.write(np.zeros((180, 320, 3), np.uint8))
    a, b = mono(src, 3.5), mono(out, 3.5)
    m = min(len(a), len(b))
    assert m > 8000 * 3
    a, b = a[:m] - a[:m].mean(), b[:m] - b[:m].mean()
    lags = range(-400, 401)  # +-50 ms at 8 kHz
    c = [np.dot(a[max(0, -lag): m - max(0, lag)], b[max(0, lag): m - max(0, -lag)]) for lag in lags]
    best = int(np.argmax(c))
    assert abs(lags[best]) <= 8 * 3, f"audio {lags[best] / 8:.1f} ms off the video"  # 3 ms: AAC re-encode jitter
    assert c[best] / np.sqrt(np.dot(a, a) * np.dot(b, b)) > 0.9


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_render_leaves_no_file(small, tmp_path, sig):
    out = tmp_path / "killed.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "rereel", "render", str(small["dir"] / "t.otio"), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_at_a_terminal)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".killed.mp4.*.partial.mp4")):
        assert proc.poll() is None and time.monotonic() < deadline, "the render never started its partial file"
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, "the render finished before the signal; the test needs a longer render"
    assert proc.returncode == 128 + sig, err[-1000:]  # as a shell reports a job stopped by the signal: 130, 143
    assert sorted(p.name for p in tmp_path.iterdir()) == [], err[-1000:]


def test_a_file_failing_mid_render_is_named_and_nothing_is_left(small, tmp_path):
    """An archive file that cannot be read when the render reaches it (its second segment; the
    frames are decoded in the render's prefetch thread, render/) stops the render with an error
    naming it: no output file, no rereel thread left running."""
    tl = small["tl"].deepcopy()
    clip = next(i for i in remake_track(tl) if isinstance(i, otio.schema.Clip)
                and media_path(i.media_reference).endswith(FIT_END))
    bad = tmp_path / f"damaged_{FIT_END}"
    bad.write_bytes(b"\0" * 65536)  # not a video any more: replaced after the timeline was made
    clip.media_reference = otio.schema.ExternalReference(target_url=str(bad))
    with pytest.raises(MediaError, match=bad.name):
        render_timeline(tl, [(tmp_path / "re.mp4", False), (tmp_path / "sbs.mp4", True)], fit="letterbox")
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name]
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rereel-")]


def test_choose_rebuilds_the_hold_once(small):
    from rereel.timeline import choose_suggestion

    tl = small["tl"].deepcopy()
    before = [(i.name, i.source_range, len(i.effects)) for i in remake_track(tl)]
    choose_suggestion(tl, 0, 0)  # the same suggestion again: the same clip and one hold, not two
    assert [(i.name, i.source_range, len(i.effects)) for i in remake_track(tl)] == before


def test_edl_reels_name_one_file_each(small, tmp_path):
    """Reels were the first 8 letters and digits of a file's name, shared by a collection's files
    (pd_pixwarp_a.m4v and pd_pixwarp_b.mp4 both `pdpixwar`): a conform by reel links the wrong media."""
    import pycmx

    tl = small["tl"].deepcopy()
    names = ["pd_pixwarp_roundhay_garden.m4v", "pd_pixwarp_nasa_cyclone.mp4", "pd_pixwarp_roundhay_garden.m4v"]
    clips = [it for it in remake_track(tl) if isinstance(it, otio.schema.Clip) and not it.effects]
    assert len(clips) == 3
    by_clip = {}
    for clip, name in zip(clips, names):
        clip.media_reference.target_url = (tmp_path / name).as_uri()
        by_clip[clip.name] = name
    for hold in (it for it in remake_track(tl) if it.effects):  # a hold shows its clip's file
        hold.media_reference.target_url = (tmp_path / by_clip[hold.name.removesuffix(" (hold)")]).as_uri()
    write_timeline(tl, tmp_path / "reels.edl")
    with open(tmp_path / "reels.edl") as f:
        edits = [e for ev in pycmx.parse_cmx3600(f).events for e in ev.edits]
    reels = {}
    for e in edits:
        reels.setdefault(e.source, set()).add(re.match(r"shot \d+: (\S+)", e.clip_name).group(1))  # its file
    assert all(len(files) == 1 for files in reels.values()), reels
    assert len(reels) == 2 and all(len(r) <= 8 for r in reels), reels


def test_an_editors_speed_of_zero_is_a_hold_and_a_speed_of_no_number_is_refused(small, tmp_path):
    """A LinearTimeWarp of speed 0 (what a hold is; rereel's own holds are FreezeFrames) made
    the EDL export a ZeroDivisionError; NaN rendered, then wrote garbage timecodes to the EDL
    and failed the FCP XML. A file holding no timeline ({}) was an AttributeError."""
    import pycmx

    tl = small["tl"].deepcopy()
    (_, _, short), _, _, (_, _, other) = items(tl)
    other.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.0))
    held = tmp_path / "held.otio"
    otio.adapters.write_to_file(tl, str(held))
    rereel("export", held, tmp_path / "held.edl", check=True)
    with open(tmp_path / "held.edl") as f:
        events = pycmx.parse_cmx3600(f).events
    assert len([e for ev in events for e in ev.edits]) == 4
    assert "M2" in (tmp_path / "held.edl").read_text() and "nan" not in (tmp_path / "held.edl").read_text()
    other.effects[:] = [otio.schema.LinearTimeWarp(time_scalar=float("nan"))]
    otio.adapters.write_to_file(tl, str(held))
    for args in (("render", held, "-o", tmp_path / "x.mp4"), ("export", held, tmp_path / "x.edl")):
        proc = rereel(*args)
        assert proc.returncode == 2 and "has a speed that is not a finite number" in proc.stderr, proc.stderr
    (tmp_path / "empty.otio").write_text("{}")
    proc = rereel("credits", tmp_path / "empty.otio")
    assert proc.returncode == 2 and "not a rereel remake timeline" in proc.stderr, proc.stderr


def _edited(tl, change):
    tl = tl.deepcopy()
    change(tl)
    return tl


def _set_in_point(tl, frames):
    clip = next(it for it in remake_track(tl) if isinstance(it, otio.schema.Clip))
    clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(frames, clip.source_range.start_time.rate),
                                                clip.source_range.duration)


def _set_duration(tl, frames):
    clip = next(it for it in remake_track(tl) if isinstance(it, otio.schema.Clip))
    clip.source_range = otio.opentime.TimeRange(clip.source_range.start_time,
                                                otio.opentime.RationalTime(frames, clip.source_range.duration.rate))


@pytest.mark.parametrize("change, message", [
    (lambda tl: tl.metadata["rereel"]["target"].pop("fps"), "frame rate in its metadata is None, not a positive number"),
    (lambda tl: tl.metadata["rereel"]["target"].__setitem__("fps", 0), "frame rate in its metadata is 0, not a positive"),
    (lambda tl: tl.metadata["rereel"]["target"].__setitem__("fps", "abc"), "frame rate in its metadata is 'abc'"),
    (lambda tl: tl.metadata["rereel"]["target"].pop("path"), "the target in its metadata has no path"),
    (lambda tl: tl.metadata["rereel"]["target"].__setitem__("frames", -5), "frames in its metadata is -5"),
    (lambda tl: tl.metadata["rereel"]["target"].pop("width"), "width in its metadata is None"),
    (lambda tl: tl.metadata["rereel"].__setitem__("target", "x") or tl.metadata.__setitem__("rereel", "target"),
     "not a rereel remake timeline"),
    (lambda tl: tl.tracks.clear(), "has no video track"),
    (lambda tl: remake_track(tl).clear(), "the remake track is empty"),
    (lambda tl: _set_duration(tl, -50), "has a negative duration"),
    (lambda tl: _set_in_point(tl, -100), "starts before its media"),
    (lambda tl: remake_track(tl)[0].metadata["rereel"].__setitem__("suggestions", "x"), "are not a list"),
    (lambda tl: remake_track(tl)[0].metadata["rereel"].__setitem__("suggestions", [{"foo": 1}]), "suggestion 1 of item"),
    (lambda tl: remake_track(tl)[0].metadata["rereel"]["suggestions"][0].pop("shot_id"), "or a shot id"),
], ids=["no fps", "fps 0", "fps text", "no path", "frames -5", "no width", "metadata text", "no tracks", "empty track",
        "negative duration", "negative in point", "suggestions text", "suggestion without fields", "suggestion without shot id"])
def test_a_hand_edited_timeline_that_rereel_cannot_read_is_refused_in_one_line(small, tmp_path, change, message):
    """Found by trying: each was a traceback (IndexError, KeyError, ZeroDivisionError) in choose,
    render and export, a 500 in the web editor, or worse, a render that went through with every
    cut after a negative-length clip early against the target's sound."""
    path = tmp_path / "edited.otio"
    otio.adapters.write_to_file(_edited(small["tl"], change), str(path))
    for args in (("choose", path, "1"), ("render", path, "-o", tmp_path / "x.mp4"), ("export", path, tmp_path / "x.edl")):
        proc = rereel(*args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.edl").exists()


def test_an_editors_dissolve_speed_change_trim_and_open_clip_are_read_as_editors_mean(small, tmp_path):
    """A timeline an editor changed: a dissolve, a clip at double speed, a trim that moves a cut,
    a clip with no source range. They were tracebacks (dissolve, no range), ignored (speed: 1x
    in the render, no speed in the XML) or undone (`choose` put the trimmed shot back to its
    old length, and every cut after it moved)."""
    import pycmx

    tl = small["tl"].deepcopy()
    track = remake_track(tl)
    (_, _, short), (_, _, hold), (_, _, fit), (_, _, other) = items(tl)
    frames = lambda item: round(item.source_range.duration.value)  # noqa: E731
    rt = lambda n: otio.opentime.RationalTime(n, 24)  # noqa: E731
    fit.source_range = otio.opentime.TimeRange(fit.source_range.start_time, rt(frames(fit) - 12))  # the cut 12 earlier
    other.source_range = otio.opentime.TimeRange(other.source_range.start_time, rt(frames(other) + 12))
    other.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    track.insert(2, otio.schema.Transition(transition_type="SMPTE_Dissolve", in_offset=rt(6), out_offset=rt(6)))
    edited = tmp_path / "edited.otio"
    otio.adapters.write_to_file(tl, str(edited))

    proc = rereel("render", edited, "-o", tmp_path / "edited.mp4", check=True)
    assert "1 transition (dissolve) on the remake track is rendered as cuts" in proc.stderr, proc.stderr
    with av.open(str(tmp_path / "edited.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 240
    # The double-speed clip shows the archive at twice the pace: its output frames match the
    # archive frames 2 apart (by an independent decode of the archive file).
    start = other.source_range.start_time.to_seconds()
    times, src = decode_gray(Path(media_path(other.media_reference)), (160, 90))
    _, out = decode_gray(tmp_path / "edited.mp4", (160, 90))
    k0 = 240 - frames(other)
    for j in (0, 8, 16):
        want = int(np.searchsorted(times, start + 2 * j / 24 + 1e-3, side="right")) - 1
        got = int(np.argmin(np.abs(src - out[k0 + j]).mean(axis=(1, 2))))
        assert abs(got - want) <= 1, (j, got, want)

    proc = rereel("export", edited, tmp_path / "edited.edl", check=True)
    assert "written to the EDL as cuts" in proc.stderr
    with open(tmp_path / "edited.edl") as f:
        edits = [e for ev in pycmx.parse_cmx3600(f).events for e in ev.edits]
    assert len(edits) == 4
    # The double-speed clip reads twice its record length of source (the adapter wrote half).
    fast = edits[3]
    assert frames24(fast.source_out) - frames24(fast.source_in) == 2 * (frames24(fast.record_out) - frames24(fast.record_in))
    proc = rereel("export", edited, tmp_path / "edited.xml", check=True)
    assert "written to the FCP XML as cuts" in proc.stderr
    assert not list(ET.parse(tmp_path / "edited.xml").iter("transitionitem"))  # a cut, as rendered
    speeds = [float(p.findtext("value")) for p in ET.parse(tmp_path / "edited.xml").iter("parameter")
              if p.findtext("parameterid") == "speed"]
    assert any(abs(s - 200) < 1 for s in speeds), speeds  # the double-speed clip (the hold's is far below 100)

    rereel("choose", edited, "2", "1", check=True)  # the same suggestion again, into the trimmed shot
    again = read_timeline(edited)
    assert sum(n for _, n, _ in items(again)) == 240
    assert [n for _, n, it in items(again) if it.metadata.get("rereel", {}).get("target_shot") == 1] == [122 - 12]

    # A clip without a source range plays its media's available range (OTIO's meaning); a
    # clip played backwards is refused, named.
    tl = small["tl"].deepcopy()
    first = remake_track(tl)[0]
    first.source_range = None
    otio.adapters.write_to_file(tl, str(tmp_path / "open.otio"))
    opened = remake_track(read_timeline(tmp_path / "open.otio"))[0]
    assert opened.source_range == opened.media_reference.available_range is not None
    tl = small["tl"].deepcopy()
    remake_track(tl)[0].effects.append(otio.schema.LinearTimeWarp(time_scalar=-1.0))
    otio.adapters.write_to_file(tl, str(tmp_path / "back.otio"))
    proc = rereel("render", tmp_path / "back.otio", "-o", tmp_path / "back.mp4")
    assert proc.returncode == 2 and "plays backwards (speed -1)" in proc.stderr and "\n" not in proc.stderr.strip()
    # A compound clip (a nested stack) is named, not rendered black; a generated clip (colour
    # bars) has no film to credit.
    tl = small["tl"].deepcopy()
    track = remake_track(tl)
    nested = otio.schema.Stack(name="compound")
    nested.append(otio.schema.Track())
    nested[0].append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(24))))
    track.append(nested)
    otio.adapters.write_to_file(tl, str(tmp_path / "nested.otio"))
    proc = rereel("render", tmp_path / "nested.otio", "-o", tmp_path / "nested.mp4")
    assert proc.returncode == 2 and "'compound'" in proc.stderr and "nested sequence" in proc.stderr, proc.stderr
    tl = small["tl"].deepcopy()
    remake_track(tl)[2].media_reference = otio.schema.GeneratorReference(generator_kind="SMPTEBars")
    otio.adapters.write_to_file(tl, str(tmp_path / "bars.otio"))
    proc = rereel("credits", tmp_path / "bars.otio", check=True)
    assert Path(media_path(fit.media_reference)).name not in proc.stdout  # the clip that became bars
    for args in (("render", tmp_path / "bars.otio", "-o", tmp_path / "bars.mp4"),  # black there, not a traceback
                 ("export", tmp_path / "bars.otio", tmp_path / "bars.edl"),
                 ("export", tmp_path / "bars.otio", tmp_path / "bars.xml")):
        rereel(*args, check=True)
    assert " BL " in (tmp_path / "bars.edl").read_text()


def frames24(tc: str) -> int:
    h, m, s, f = (int(x) for x in tc.replace(";", ":").split(":"))
    return ((h * 60 + m) * 60 + s) * 24 + f
