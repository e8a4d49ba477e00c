"""Timelines for editing software: CMX 3600 EDL and FCP XML, through the OTIO adapters.

The .otio keeps every range in the target's rate (what `rereel render` and the MLT adapter
read). Editors want each file at its own rate, so the FCP XML is conformed after the adapter
has written it: every <file> gets its media's rate (timebase + NTSC flag: 29.97 is 30 NTSC,
23.976 is 24 NTSC), duration and sample characteristics, every clipitem its in/out in those
media frames, the sequence a <format>; DaVinci Resolve refuses or misreads files without them.
The adapter writes no clip effects, so a hold becomes a one-frame clipitem slowed with FCP's
Time Remap to fill its place, and a clip an editor sped up or slowed down its media frames
remapped the same way. CMX 3600 has one rate per EDL: source timecodes there count
frames at the record (target) rate, whatever the media's own rate. The EDL has an event for
every target shot, a black one as a BL (black) event, each under a comment "* shot N
HH:MM:SS:FF" in rereel's one numbering, and its timecodes are non-drop (FCM: NON-DROP FRAME)
like every timecode rereel shows, also at 29.97 where the adapter would write drop-frame.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
import xml.etree.ElementTree as ET

import opentimelineio as otio

from rereel.timeline import KEY, is_hold, media_path, remake_items, remake_track, shots, shows_file, speed, timecode, timecode_frame

EPS = 1e-6
EVENT = re.compile(r"^\d{3,}\s")
DROP_TC = re.compile(r"\b(\d\d):(\d\d):(\d\d);(\d\d)\b")
TIMECODE = re.compile(r"\b\d\d:\d\d:\d\d[:;]\d\d\b")


def _without_transitions(tl: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy of `tl` as rendered: its remake track cuts where an editor put a transition (see
    transitions), and a clip of no file (colour bars, a solid) is a gap, black."""
    tl = tl.deepcopy()
    track = remake_track(tl)
    for i in reversed(range(len(track))):
        item = track[i]
        if isinstance(item, otio.schema.Transition):
            del track[i]
        elif isinstance(item, otio.schema.Clip) and not shows_file(item):
            gap = otio.schema.Gap(source_range=item.source_range)
            gap.name, gap.metadata[KEY] = item.name, dict(item.metadata.get(KEY, {}))
            track[i] = gap
    return tl


def edl_timeline(tl: otio.schema.Timeline) -> otio.schema.Timeline:
    """EDLs hold one video track; the remake is the edit, the target stays in the .otio. A black
    shot (a Gap, which the adapter would drop) becomes a clip of the BL source, so it has an event."""
    edl = otio.schema.Timeline(name=tl.name)
    track = remake_track(_without_transitions(tl)).deepcopy()  # a dissolve: a cut (the CLI says so), as rendered
    reels: dict[str, str] = {}  # media path -> its reel, one reel a file
    for i, item in enumerate(track):
        if not shows_file(item):  # a gap, or a clip of no file: the BL source
            black = otio.schema.Clip(name=item.name, source_range=item.source_range,
                                     media_reference=otio.schema.GeneratorReference(generator_kind="black"))
            black.metadata["cmx_3600"] = {"reel": "BL"}
            track[i] = black
        else:
            if speed(item) == 0 and not any(isinstance(e, otio.schema.FreezeFrame) for e in item.effects):
                # An editor's speed of 0 is a hold, as OTIO's FreezeFrame is; the adapter writes
                # that one as M2 0.0 and divided by the other (a ZeroDivisionError).
                item.effects[:] = [otio.schema.FreezeFrame()]
            path = media_path(item.media_reference)
            if path not in reels:
                reels[path] = _reel(path, set(reels.values()))
            item.metadata["cmx_3600"] = dict(item.metadata.get("cmx_3600", {})) | {"reel": reels[path]}
    edl.tracks.append(track)
    return edl


REEL_LEN = 8  # CMX 3600's reel field


def _reel(path: str, taken: set[str]) -> str:
    """An 8-character reel for a media file, unlike the others': the adapter's own would be the
    name's first 8 letters and digits, which files of one collection share (pdpixwar for
    pd_pixwarp_*), and an editor conforming by reel would link the wrong footage."""
    base = re.sub(r"[^A-Za-z0-9]+", "", Path(path).stem)[:REEL_LEN] or "CLIP"
    reel, n = base, 1
    while reel in taken or reel in ("AX", "BL"):
        n += 1
        reel = f"{base[:REEL_LEN - len(str(n))]}{n}"
    return reel


def timecode_rate_problem(rate: float, suffix: str) -> str | None:
    """Why a timeline file ending in `suffix` cannot be written at `rate`, or None: a CMX 3600 EDL,
    and the FCP XML the OTIO adapter writes, count SMPTE timecode, which exists for 23.976, 24, 25,
    29.97, 30, 48, 50, 59.94 and 60 fps, not for 10, 12.5 or 15 (webcams, GIFs)."""
    if suffix.lower() not in (".edl", ".xml"):
        return None
    try:
        otio.opentime.to_timecode(otio.opentime.RationalTime(1, rate), rate)
        return None
    except ValueError:
        what = "a CMX 3600 EDL" if suffix.lower() == ".edl" else "FCP XML"
        return (f"{what} counts SMPTE timecode, which has no {rate:g} fps (the target's rate); "
                "keep the timeline as OpenTimelineIO (.otio)")


def edl_text(tl: otio.schema.Timeline) -> str:
    """The CMX 3600 EDL: the adapter's, with each event labelled by its shot, timecodes non-drop."""
    from rereel.errors import RereelError

    rate = float(tl.metadata[KEY]["target"]["fps"])
    problem = timecode_rate_problem(rate, ".edl")
    if problem:
        raise RereelError(problem)
    text = otio.adapters.write_to_string(edl_timeline(tl), adapter_name="cmx_3600")
    # The adapter writes 29.97 and 59.94 drop-frame (HH:MM:SS;FF); rereel counts non-drop.
    text = DROP_TC.sub(lambda m: timecode(round(otio.opentime.from_timecode(m.group(0), rate).value), rate), text)
    numbered = iter(shots(tl))  # in track order, as the events are
    labels, speeds = [], []  # one per item, in event order
    current = None
    for item in remake_items(tl):
        speeds.append(speed(item))
        if is_hold(item):
            labels.append(f"* shot {current.number} hold" if current else None)
        else:
            current = next(numbered)
            labels.append(f"* shot {current.number} {current.timecode}")
    lines, events = [], 0
    for line in text.splitlines():
        if line.startswith("TITLE:"):
            lines += [line, "FCM: NON-DROP FRAME"]
            continue
        if EVENT.match(line) and events < len(speeds) and speeds[events] not in (0, 1):
            line = _source_out_at_speed(line, speeds[events], rate)
        lines.append(line)
        if EVENT.match(line):
            if events < len(labels) and labels[events]:
                lines.append(labels[events])
            events += 1
    if events != len(labels):
        raise RereelError(f"EDL: the adapter wrote {events} events for {len(labels)} timeline items; not written")
    return "\n".join(lines) + "\n"


def _source_out_at_speed(line: str, pace: float, rate: float) -> str:
    """An event of a clip at another speed with the source out CMX means (and OTIO's own reader
    reads): source in + record length x speed. The adapter divides by the speed instead, so a
    clip at 2x named half its source frames, and one at 0.5x twice as many."""
    stamps = TIMECODE.findall(line)
    if len(stamps) != 4:
        return line
    src_in, src_out, rec_in, rec_out = (timecode_frame(t, rate) for t in stamps)
    if None in (src_in, src_out, rec_in, rec_out):
        return line
    want = timecode(src_in + round((rec_out - rec_in) * pace), rate)
    at = line.index(stamps[1], line.index(stamps[0]) + len(stamps[0]))
    return line[:at] + want + line[at + len(stamps[1]):]


def _rate(parent: ET.Element, fps: float) -> ET.Element:
    base = round(fps)
    r = ET.SubElement(parent, "rate")
    ET.SubElement(r, "timebase").text = str(base)
    ET.SubElement(r, "ntsc").text = "TRUE" if abs(fps - base) > 1e-3 else "FALSE"
    return r


def _set_rate(parent: ET.Element, fps: float) -> None:
    """Replace every <rate> child (the adapter writes clipitems' twice) with one at `fps`."""
    old = parent.findall("rate")
    at = list(parent).index(old[0]) if old else len(parent)
    for r in old:
        parent.remove(r)
    r = _rate(parent, fps)
    parent.remove(r)
    parent.insert(at, r)


def _text(parent: ET.Element, tag: str, value) -> None:
    e = parent.find(tag)
    if e is None:
        e = ET.SubElement(parent, tag)
    e.text = str(value)


def _characteristics(parent: ET.Element, fps: float, size: tuple[int, int] | None) -> None:
    sc = ET.SubElement(parent, "samplecharacteristics")
    _rate(sc, fps)
    if size:
        ET.SubElement(sc, "width").text = str(size[0])
        ET.SubElement(sc, "height").text = str(size[1])
    ET.SubElement(sc, "anamorphic").text = "FALSE"
    ET.SubElement(sc, "pixelaspectratio").text = "square"
    ET.SubElement(sc, "fielddominance").text = "none"


def _media_size(path: str) -> tuple[int, int] | None:
    from rereel.errors import RereelError
    from rereel.media import probe

    try:
        return probe(path).display_size
    except RereelError:
        return None  # a missing file still exports; the editor relinks it


def _conform_file(file_e: ET.Element, ref, fps: float) -> None:
    _set_rate(file_e, fps)
    avail = ref.available_range
    _text(file_e, "duration", round(avail.duration.to_seconds() * fps))
    tc = file_e.find("timecode")
    if tc is not None:
        _set_rate(tc, fps)
    media = file_e.find("media")
    if media is None:
        media = ET.SubElement(file_e, "media")
    video = media.find("video")
    if video is None:
        video = ET.SubElement(media, "video")
    if video.find("samplecharacteristics") is None:
        _characteristics(video, fps, _media_size(media_path(ref)))


def _time_remap(clip_e: ET.Element, speed: float) -> None:
    """FCP 7's constant-speed Time Remap, frame blending off (a hold shows one frame, unblended)."""
    effect = ET.SubElement(ET.SubElement(clip_e, "filter"), "effect")
    for tag, text in (("name", "Time Remap"), ("effectid", "timeremap"), ("effectcategory", "motion"),
                      ("effecttype", "motion"), ("mediatype", "video")):
        ET.SubElement(effect, tag).text = text
    for pid, value in (("variablespeed", "0"), ("speed", f"{speed:.4f}"), ("reverse", "FALSE"),
                       ("frameblending", "FALSE")):
        p = ET.SubElement(effect, "parameter")
        ET.SubElement(p, "parameterid").text = pid
        ET.SubElement(p, "name").text = pid
        ET.SubElement(p, "value").text = value


def _conform_clip(clip_e: ET.Element, clip: otio.schema.Clip, rate: float, files: dict) -> None:
    ref = clip.media_reference
    fps = float(ref.metadata.get(KEY, {}).get("fps") or rate)
    file_e = clip_e.find("file")
    if file_e is not None and file_e.find("pathurl") is not None and id(file_e) not in files:
        files[id(file_e)] = True
        _conform_file(file_e, ref, fps)
    first = clip.source_range.start_time.rescaled_to(rate).value
    n = round(clip.source_range.duration.rescaled_to(rate).value)
    pace = speed(clip)  # 0: a hold
    # The media frame on screen at each output frame's time (floor), as rereel renders it.
    m_in = math.floor(first / rate * fps + EPS)
    if pace == 0:
        m_out = m_in + 1
    elif pace == 1:
        m_out = math.floor((first + n - 1) / rate * fps + EPS) + 1
    else:  # the media the clip plays through at its speed: FCP's remap is then that speed exactly
        m_out = m_in + max(1, round(pace * n / rate * fps))
    _set_rate(clip_e, fps)
    _text(clip_e, "duration", m_out - m_in)
    _text(clip_e, "in", m_in)
    _text(clip_e, "out", m_out)
    if pace != 1:  # a hold, or an editor's speed change: those media frames fill the clip's place
        _time_remap(clip_e, 100.0 * ((m_out - m_in) / fps) / (n / rate))


def fcp_timeline(tl: otio.schema.Timeline) -> str:
    from rereel.errors import RereelError

    rate = float(tl.metadata[KEY]["target"]["fps"])
    problem = timecode_rate_problem(rate, ".xml")
    if problem:
        raise RereelError(problem)
    target = tl.metadata[KEY]["target"]
    tl = _without_transitions(tl)  # cut, as rendered: the clips' in/out below are their own, without handles
    root = ET.fromstring(otio.adapters.write_to_string(tl, adapter_name="fcp_xml"))
    seq = root.find(".//sequence")
    _set_rate(seq, rate)
    fmt = seq.find("media/video/format")
    if fmt is not None and fmt.find("samplecharacteristics") is None:
        _characteristics(fmt, rate, (int(target["width"]), int(target["height"])))
    files: dict = {}
    for kind, tracks in (("video", tl.video_tracks()), ("audio", tl.audio_tracks())):
        elements = seq.findall(f"media/{kind}/track")
        if len(elements) != len(tracks):
            raise ValueError(f"FCP XML: {len(elements)} {kind} tracks written for {len(tracks)}")
        for track_e, track in zip(elements, tracks):
            clip_es = track_e.findall("clipitem")
            clips = [it for it in track if isinstance(it, otio.schema.Clip)]
            if len(clip_es) != len(clips):
                raise ValueError(f"FCP XML: {len(clip_es)} clipitems written for {len(clips)} clips")
            for clip_e, clip in zip(clip_es, clips):
                _conform_clip(clip_e, clip, rate, files)
    ET.indent(root, "  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + ET.tostring(root, "unicode") + "\n"
