"""The remake on real footage: timing, audio, cuts, provenance of frames, editing, export.

The test library holds the whole sample archive plus the 480x270 Sintel trailer; remaking the
separate 320x180 encode of the same trailer must find the trailer's own segments.
"""

from __future__ import annotations


import json
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from rereel.library import Library
from rereel.library.catalog import Catalog
from rereel.match.choose import MatchOptions, match_shots, target_paths
from rereel.media import decode_frames, probe
from rereel.pipeline import remake
from rereel.timeline import KEY, media_path, read_timeline, remake_track
from test_library import rereel
from test_target_cuts import BARS, precision_recall


@pytest.fixture(scope="module")
def trailer_library(media, tmp_path_factory):
    lib = tmp_path_factory.mktemp("remake") / "library"
    # The archive less its long static clips and its costliest decodes (1080p), which add
    # seconds but little variety: the suite must fit its 15 minutes, and 27 films still give
    # every shot choices.
    slow = {"ccby_intel_one_by_one_person_walking.mp4", "ccby_intel_bottle_detection_hands.mp4",
            "ccby_intel_car_detection_topdown.mp4", "ccbysa_pixwarp_cymatics.mkv", "pd_nasa_apollo15_feather_hammer.mp4",
            "pd_pixwarp_aurora_shimmer.avi", "pd_muybridge_race_horse.mp4", "ccbysa_pixwarp_grass_timelapse.avi"}
    clips = sorted(p for p in (media / "archive").iterdir() if p.name not in slow)
    rereel("index", *clips, "--library", lib, check=True)
    # The trailer's second encode stands for "the film a trailer was cut from". It is cut with
    # the detector remake uses for targets, so the two encodes share their shots and the copy
    # test below measures matching, not two detectors' disagreement (test_own_footage covers
    # footage indexed with the archive's detector).
    rereel("index", media / "trailers" / "sintel_trailer_480x270.webm", "--detector", "target", "--library", lib,
           check=True)
    return lib


@pytest.fixture(scope="module")
def remade(trailer_library, media, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    target = media / "trailers" / "sintel_trailer_320x180.webm"
    proc = rereel("remake", target, "-o", out / "remake.mp4", "--side-by-side-out", out / "sbs.mp4",
                  "--timeline", out / "remake.otio", "--timeline", out / "remake.edl", "--timeline", out / "remake.xml",
                  "--library", trailer_library, check=True)
    return {"dir": out, "target": target, "stdout": proc.stdout, "tl": read_timeline(out / "remake.otio")}


def items(tl):
    """(first output frame, frames, item) for each item of the remake track, holds included."""
    k, rows = 0, []
    rate = tl.metadata[KEY]["target"]["fps"]
    for item in remake_track(tl):
        n = round(item.source_range.duration.rescaled_to(rate).value)
        rows.append((k, n, item))
        k += n
    return rows


def clips(tl):
    """(first output frame, frames, item) per target shot: a short segment's hold clip counts
    with the segment it holds."""
    rows = []
    for k, n, item in items(tl):
        if "hold_of" in item.metadata.get(KEY, {}):
            k0, n0, first = rows[-1]
            rows[-1] = (k0, n0 + n, first)
        else:
            rows.append((k, n, item))
    return rows


def archive_frame(path, t, w, h):
    """The frame on screen at `t` seconds (from the first frame) of `path`, scaled to cover w x h
    and centre-cropped as the remake does; decoded here with PyAV, not by the renderer."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        first = s.start_time or 0
        c.seek(max(0, int((t - 1) / s.time_base)) + first, stream=s, backward=True)
        shown = None
        for f in c.decode(s):
            if float((f.pts - first) * s.time_base) > t + 1e-4:
                break
            shown = f
    scale = max(w / shown.width, h / shown.height)
    sw, sh = max(w, round(shown.width * scale)), max(h, round(shown.height * scale))
    rgb = shown.reformat(sw, sh, "rgb24").to_ndarray()
    x, y = (sw - w) // 2, (sh - h) // 2
    return rgb[y : y + h, x : x + w]


def source_time(tl, k):
    """(archive path, seconds) output frame k shows, or None for black, read off the timeline."""
    rate = tl.metadata[KEY]["target"]["fps"]
    for first, n, item in items(tl):
        if first <= k < first + n:
            if not isinstance(item, otio.schema.Clip):
                return None
            offset = 0 if item.effects else (k - first) / rate  # a hold shows its first frame throughout
            return media_path(item.media_reference), item.source_range.start_time.to_seconds() + offset
    raise IndexError(k)


def small(rgb):
    return rgb[::4, ::4].astype(np.float32)


def test_second_encode_matches_its_own_segments(remade):
    tl = remade["tl"]
    hits = total = 0
    for _, _, item in clips(tl):
        info = item.metadata[KEY]
        if info["black"]:
            continue
        total += 1
        src = media_path(item.media_reference)
        if src.endswith("sintel_trailer_480x270.webm") and abs(info["start"] - info["target_start"]) < 0.5:
            hits += 1
    assert total >= 8
    assert hits >= 0.75 * total, f"{hits}/{total} shots matched their own segment"


def test_duration_fps_size_and_frame_count(remade):
    target = probe(remade["target"])
    out = probe(remade["dir"] / "remake.mp4")
    assert abs(out.duration - target.duration) <= 1 / target.fps + 1e-6
    assert abs(out.fps - target.fps) < 1e-3 and (out.width, out.height) == (target.width, target.height)
    n_target = sum(1 for _ in decode_frames(remade["target"]))
    assert sum(1 for _ in decode_frames(remade["dir"] / "remake.mp4")) == n_target
    sbs = probe(remade["dir"] / "sbs.mp4")
    assert (sbs.width, sbs.height) == (2 * target.width, target.height)


def mono(path, rate=8000, seconds=30):
    """Mono samples at their presentation times, counted from the first video frame (the
    origin of both files' pictures), silence where there is no audio: a source whose audio
    starts late (Sintel's Vorbis at 19 ms) is then compared as a viewer hears it."""
    signal = np.zeros(rate * seconds, np.float32)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        origin = float(v.start_time * v.time_base) if v.start_time is not None else 0.0
        res = av.AudioResampler(format="s16", layout="mono", rate=rate)
        at = None  # sample position of the next resampled output: from the first packet's time on
        for frame in c.decode(c.streams.audio[0]):
            if at is None:
                at = round((float(frame.pts * frame.time_base) - origin) * rate)
            for f in res.resample(frame):
                x = f.to_ndarray().ravel().astype(np.float32)
                lo, hi = max(0, at), min(len(signal), at + len(x))
                if hi > lo:
                    signal[lo:hi] = x[lo - at : hi - at]
                at += len(x)
            if at > len(signal):
                break
    return signal


@pytest.mark.parametrize("name", ["remake.mp4", "sbs.mp4"])
def test_audio_is_the_targets_in_sync(remade, name):
    a, b = mono(remade["target"]), mono(remade["dir"] / name)
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    lags = range(-80, 81)  # +-10 ms at 8 kHz
    corr = [np.dot(a[max(0, -l): n - max(0, l)], b[max(0, l): n - max(0, -l)]) for l in lags]
    best = int(np.argmax(corr))
    assert abs(lags[best]) <= 8, f"audio offset {lags[best] / 8:.1f} ms"  # within 1 ms
    assert corr[best] / np.sqrt(np.dot(a, a) * np.dot(b, b)) > 0.95


def expected_frame(tl, k, w, h):
    """What output frame k must show according to the timeline (black for a gap)."""
    src = source_time(tl, k)
    return np.zeros((h, w, 3), np.uint8) if src is None else archive_frame(*src, w, h)


def test_cuts_land_on_the_targets_cut_frames(remade):
    tl = remade["tl"]
    # The cuts made by eye on the 480x270 encode (test_target_cuts' list) hold for this one:
    # the two encodes have the same 1253 frames. One timeline item per target shot, cut where
    # the trailer cuts, as well as the target detector does (its bars, test_target_cuts).
    truth = json.loads((Path(__file__).parent / "data" / "cuts_sintel_trailer.json").read_text())
    rows = clips(tl)
    boundaries = [k for k, _, _ in rows[1:]]
    assert rows[-1][0] + rows[-1][1] == truth["frames"]
    precision, recall = precision_recall(boundaries, truth)
    assert precision >= BARS["sintel_trailer"][0] and recall >= BARS["sintel_trailer"][1], (boundaries, precision, recall)

    out = remade["dir"] / "remake.mp4"
    w, h = probe(out).display_size
    around = {b + d for b in boundaries for d in (-1, 0)}
    got = {f.index: f.rgb(w, h) for f in decode_frames(out) if f.index in around}
    sharp = 0
    for b in boundaries:
        before, after = expected_frame(tl, b - 1, w, h), expected_frame(tl, b, w, h)
        d = lambda x, y: np.abs(small(x) - small(y)).mean()  # noqa: E731
        assert d(got[b - 1], before) < 12 and d(got[b], after) < 12, b
        if d(before, after) > 30:  # a visible cut: the output must switch exactly here, not a frame off
            assert d(got[b - 1], after) > 20 and d(got[b], before) > 20, b
            sharp += 1
    assert sharp >= 3  # this trailer cuts mostly through black, so few boundaries are visible


def test_frames_come_from_the_clip_the_timeline_names(remade):
    tl = remade["tl"]
    w, h = probe(remade["dir"] / "remake.mp4").display_size
    wanted = {k + n // 2: item for k, n, item in clips(tl)}
    got = {f.index: f.rgb(w, h) for f in decode_frames(remade["dir"] / "remake.mp4") if f.index in wanted}
    checked = 0
    for k, item in wanted.items():
        if item.metadata[KEY]["black"]:
            assert got[k].mean() < 3
            continue
        assert np.abs(small(got[k]) - small(expected_frame(tl, k, w, h))).mean() < 12, item.name
        checked += 1
    assert checked >= 8


def test_side_by_side_is_target_left_remake_right(remade):
    tl = remade["tl"]
    w, h = probe(remade["dir"] / "remake.mp4").display_size
    wanted = {k + n // 2 for k, n, _ in clips(tl)}
    sbs = {f.index: f.rgb(2 * w, h) for f in decode_frames(remade["dir"] / "sbs.mp4") if f.index in wanted}
    target = {f.index: f.rgb(w, h) for f in decode_frames(remade["target"]) if f.index in wanted}
    remake_frames = {f.index: f.rgb(w, h) for f in decode_frames(remade["dir"] / "remake.mp4") if f.index in wanted}
    for k in sorted(wanted):
        left, right = sbs[k][:, :w], sbs[k][:, w:]
        assert np.abs(small(left) - small(target[k])).mean() < 12, k
        assert np.abs(small(right) - small(remake_frames[k])).mean() < 12, k


def gray_frames(path, size=(80, 45)):
    with av.open(str(path)) as c:
        return np.stack([f.reformat(*size, format="gray").to_ndarray().astype(np.float32)
                         for f in c.decode(c.streams.video[0])])


def test_no_cut_inside_a_target_shot(remade, trailer_library):
    """Every frame a target shot shows comes from the one archive shot the timeline chose.

    Each output frame is matched (80x45 grey, PyAV) against the chosen file's frames from a
    second before the archive shot to a second after. It passes if some frame inside the shot
    is at least as close as any frame outside, within 1 grey level: a cut through black (or a
    still) has identical frames on both sides, which show nothing of another shot; a frame
    from the neighbouring shot would differ by far more (cuts are where frames change).
    Each frame's mean is taken out first: in a fade the frames differ mostly in brightness, and
    H.264 shifts a dark frame's level by a grey level or two, which is not another shot.
    """
    tl = remade["tl"]
    out = gray_frames(remade["dir"] / "remake.mp4")
    cat = Catalog(trailer_library / "catalog.sqlite")
    decoded, checked = {}, 0
    try:
        for k, n, item in clips(tl):
            info = item.metadata[KEY]
            if info["black"]:
                continue
            shot = cat.shot(info["shot_id"])
            path = shot["path"]
            assert media_path(item.media_reference) == path
            if path not in decoded:
                decoded[path] = gray_frames(path)
            src = decoded[path]
            fps = shot["fps"]
            lo, hi = max(0, shot["start_frame"] - round(fps)), min(len(src), shot["end_frame"] + round(fps))
            inside = np.arange(lo, hi)
            inside = (inside >= shot["start_frame"]) & (inside < shot["end_frame"])
            for j in range(k, k + n):
                a = src[lo:hi] - src[lo:hi].mean(axis=(1, 2), keepdims=True)
                d = np.abs(a - (out[j] - out[j].mean())).mean(axis=(1, 2))
                d_in, d_out = d[inside].min(), d[~inside].min() if (~inside).any() else np.inf
                assert d_in <= d_out + 1.0, f"output frame {j} ({item.name}) looks like a frame outside its archive shot"
            checked += 1
    finally:
        cat.close()
    assert checked >= 8


def test_timeline_structure_and_exports(remade):
    tl = remade["tl"]
    assert [t.name for t in tl.tracks] == ["remake", "target", "target audio"]
    for _, _, item in clips(tl):
        info = item.metadata[KEY]
        assert {"target_shot", "score", "suggestions"} <= info.keys()
        if not info["black"]:
            assert 1 <= len(info["suggestions"]) <= 5
            assert {"path", "start", "end", "score"} <= info["suggestions"][0].keys()
    edl = (remade["dir"] / "remake.edl").read_text()
    assert edl.startswith("TITLE:") and "001  " in edl and "sintel_trailer_480x270.webm" in edl
    for name, adapter in (("remake.edl", "cmx_3600"), ("remake.xml", "fcp_xml")):
        back = otio.adapters.read_from_file(str(remade["dir"] / name), adapter_name=adapter)
        assert len(back.video_tracks()[0]) >= len(clips(tl)) - 2


def test_swap_a_suggestion_and_render(remade, tmp_path):
    tl_path = tmp_path / "edited.otio"
    tl_path.write_text((remade["dir"] / "remake.otio").read_text())
    tl = read_timeline(tl_path)
    k, n, item = next((k, n, it) for k, n, it in clips(tl) if len(it.metadata[KEY]["suggestions"]) >= 2)
    shot = item.metadata[KEY]["target_shot"]
    alt = item.metadata[KEY]["suggestions"][1]
    # `choose` counts shots and suggestions from 1, as the page and the EDL do.
    rereel("choose", tl_path, item.metadata[KEY]["number"], 2, check=True)
    edited = read_timeline(tl_path)
    new_item = next(it for it in remake_track(edited) if it.metadata[KEY]["target_shot"] == shot)
    assert media_path(new_item.media_reference) == alt["path"] and new_item.metadata[KEY]["chosen"] == 1
    out = tmp_path / "edited.mp4"
    rereel("render", tl_path, "-o", out, check=True)
    w, h = probe(out).display_size
    frame = next(f.rgb(w, h) for f in decode_frames(out) if f.index == k + n // 2)
    expected = expected_frame(edited, k + n // 2, w, h)
    assert np.abs(small(frame) - small(expected)).mean() < 12


def test_variety_and_determinism(trailer_library, media):
    # The 480x270 trailer is in this library; remaking that very file excludes it, so the
    # archive alone must supply the shots.
    target = media / "trailers" / "sintel_trailer_480x270.webm"
    with Library(trailer_library) as lib:
        first = remake(target, lib, [], opts=MatchOptions(seed=7))
        # The target is analysed once; matching again from its shots is what a second remake does.
        runs = [first.matches] + [match_shots(first.shots, lib, MatchOptions(seed=seed), exclude_paths=target_paths(target))
                                  for seed in (7, 8)]
    chosen = [[(m.chosen.shot_id, round(m.chosen.placement.start, 3)) if m.chosen else None for m in run] for run in runs]
    assert chosen[0] == chosen[1], "same seed, same remake"
    picked = [m.chosen for m in runs[0] if m.chosen]
    assert all("sintel" not in c.path for c in picked)
    shown = sorted((c.shot_id, c.placement.start, c.placement.end) for c in picked)
    overlaps = [(a, b) for a, b in zip(shown, shown[1:]) if a[0] == b[0] and a[2] - b[1] > 0.1]
    assert not overlaps, "no archive footage shown twice"
    assert len({c.video_id for c in picked}) >= len(picked) // 2
    assert all(c.placement.long_enough for c in picked)


def test_silent_target_gives_silent_remake_and_its_analysis_is_reused(trailer_library, archive, tmp_path, monkeypatch):
    target = archive / "pd_pixwarp_nasa_we_are_going.mov"  # no audio track
    cache = tmp_path / "analyses"
    monkeypatch.setenv("REREEL_ANALYSIS_CACHE", str(cache))

    def cuts(name):
        return [(it.name, it.source_range) for it in remake_track(read_timeline(tmp_path / name))]

    with Library(trailer_library) as lib:  # the timeline only: analysed, then cached
        remake(target, lib, [], timelines=[tmp_path / "a.otio"])
    [entry] = cache.glob("*.npz")
    first = entry.stat().st_ino
    # The command line with --reanalyse analyses it again (the entry is written anew), to the
    # same remake; silent, as its target.
    out = tmp_path / "silent.mp4"
    rereel("remake", target, "-o", out, "--timeline", tmp_path / "b.otio", "--library", trailer_library, "--reanalyse",
           check=True)
    info = probe(out)
    assert not info.has_audio and abs(info.duration - probe(target).duration) < 0.05
    second = entry.stat().st_ino
    assert second != first and cuts("b.otio") == cuts("a.otio") and len(list(cache.glob("*.npz"))) == 1
    # Without it, the cached analysis is read (the entry is left as it was), to the same remake.
    with Library(trailer_library) as lib:
        remake(target, lib, [], timelines=[tmp_path / "c.otio"])
        assert entry.stat().st_ino == second and cuts("c.otio") == cuts("a.otio")
        # A damaged entry (empty, as a crash can leave one) is analysed again, not a failed remake;
        # so is a cache folder that cannot be made (here under a file): no caching, same remake.
        entry.write_bytes(b"")
        remake(target, lib, [], timelines=[tmp_path / "d.otio"])
        assert entry.stat().st_size > 0 and cuts("d.otio") == cuts("a.otio")
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv("REREEL_ANALYSIS_CACHE", str(tmp_path / "a-file" / "analyses"))
        remake(target, lib, [], timelines=[tmp_path / "e.otio"])
        assert cuts("e.otio") == cuts("a.otio")


def test_bad_inputs(trailer_library, media, tmp_path):
    out = tmp_path / "x.mp4"
    proc = rereel("remake", media / "odd" / "audio_only_apollo15_opus.mp4", "-o", out, "--library", trailer_library)
    assert proc.returncode == 2 and "audio only" in proc.stderr
    empty = tmp_path / "empty_lib"
    Library(empty, create=True).close()
    proc = rereel("remake", media / "trailers" / "sintel_trailer_320x180.webm", "-o", out, "--library", empty)
    assert proc.returncode == 2 and "empty" in proc.stderr
    proc = rereel("render", tmp_path / "nothing.otio", "-o", out)
    assert proc.returncode == 2 and "no such timeline" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial.mp4"))


def test_summary_is_printed(remade):
    assert "target shots" in remade["stdout"] and "remake.mp4" in remade["stdout"]


def test_black_shots_are_offered_footage_that_shows_something(remade):
    """A black target shot's suggestions (to fill it in the editor) were black archive shots
    first, "strong match" at 0.9 or more: filling black with black."""
    offered = 0
    for _, _, item in clips(remade["tl"]):
        info = item.metadata[KEY]
        if not info["black"]:
            continue
        for s in info["suggestions"]:
            times = (s["start"] + 0.05, (s["start"] + s["end"]) / 2, s["end"] - 0.05)
            brightest = max(archive_frame(s["path"], t, 160, 90).max() for t in times)  # decoded here, by PyAV
            assert brightest > 40, (info["target_shot"], s)  # something visible, not black frames
            offered += 1
    assert offered >= 3
