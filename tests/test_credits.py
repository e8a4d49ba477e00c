"""Credits of a remake: every archive film used, its time ranges, licence and credit line.

Expected licences and credits come from the footage's own SOURCES.json, read here; expected
time ranges from the timeline's clips, read here with OpenTimelineIO.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import opentimelineio as otio
import pytest

from rereel.credits import credits_path, credits_text, lookup, write_credits
from rereel.timeline import KEY, media_path, read_timeline, remake_track
from test_library import rereel

# Small clips, CC BY, CC BY-SA, CC0 and public domain; the target is an 8 s rapid-cut montage.
CLIPS = ["ccby_intel_asl_sign_book.mkv", "ccby_zwm_caminandes_llama_drama_10s.mp4",
         "ccbysa_pixwarp_train_window.mov", "cc0_mdn_stream_of_water.mp4",
         "pd_pixwarp_roundhay_garden_scene_1888.m4v"]
TARGET = "pd_pixwarp_nasa_we_are_going.mov"


@pytest.fixture(scope="module")
def manifest(media) -> dict[str, dict]:
    return {Path(e["file"]).name: e for e in json.loads((media / "SOURCES.json").read_text())["files"]}


@pytest.fixture(scope="module")
def remade(archive, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("credits")
    rereel("index", *[archive / n for n in CLIPS], "--library", tmp / "library", check=True)
    # The content detector: credits follow whatever the timeline uses; TransNetV2 only adds time.
    rereel("remake", archive / TARGET, "--detector", "content", "-o", tmp / "remake.mp4",
           "--timeline", tmp / "remake.otio", "--library", tmp / "library", check=True)
    return tmp / "remake.otio"


def used(tl) -> dict[str, list[tuple[float, float]]]:
    """file name -> source ranges (seconds) of its clips (holds included), as the timeline states them."""
    out: dict[str, list] = {}
    for item in remake_track(tl):
        if isinstance(item, otio.schema.Clip):
            r = item.source_range
            start = r.start_time.to_seconds()
            # A FreezeFrame clip (a hold) shows its range's first frame only, whatever its length.
            end = start + 1 / r.duration.rate if item.effects else r.end_time_exclusive().to_seconds()
            out.setdefault(Path(media_path(item.media_reference)).name, []).append((start, end))
    return out


def printed_ranges(text: str, name: str) -> list[tuple[float, float]]:
    block = text.split(f"\n{name}\n", 1)[1]
    line = next(l for l in block.splitlines() if l.strip().startswith("used:"))
    sec = lambda m, s: int(m) * 60 + float(s)  # noqa: E731
    return [(sec(a, b), sec(c, d)) for a, b, c, d in re.findall(r"(\d+):([\d.]+)-(\d+):([\d.]+)", line)]


def test_credits_name_every_cc_by_film_used(remade, manifest):
    tl = read_timeline(remade)
    films = used(tl)
    by = [n for n in films if n.startswith(("ccby_", "ccbysa_"))]
    assert by, f"the remake should use some CC BY footage: {sorted(films)}"
    proc = rereel("credits", remade, check=True)
    text = proc.stdout
    for name, ranges in films.items():
        entry = manifest[name]
        assert f"\n{name}\n" in text
        assert f"licence: {entry['licence']}" in text.split(f"\n{name}\n", 1)[1].split("\n\n")[0]
        if name in by:
            assert entry["credit"] in text, name
        shown = printed_ranges(text, name)
        for a, b in ranges:  # every clip lies inside a printed range (to the printed 0.01 s)
            assert any(s - 0.01 <= a and b <= e + 0.01 for s, e in shown), (name, (a, b), shown)
    assert TARGET in text  # the target: its picture is not in the remake, but its name is credited


def test_write_credits_beside_the_video(remade, tmp_path):
    video = tmp_path / "out" / "remake.mp4"
    path = write_credits(remade, video)
    assert path == tmp_path / "out" / "remake.credits.txt" == credits_path(video)
    assert path.read_text() == credits_text(read_timeline(remade))
    assert [p.name for p in path.parent.iterdir()] == ["remake.credits.txt"], "no temporary file left"


def one_clip_timeline(path: Path) -> otio.schema.Timeline:
    tl = otio.schema.Timeline(name="t")
    tl.metadata[KEY] = {"target": {"path": "/nowhere/target.mp4", "fps": 24.0}}
    track = otio.schema.Track(name="remake")
    rng = otio.opentime.TimeRange(otio.opentime.RationalTime(24, 24), otio.opentime.RationalTime(48, 24))
    clip = otio.schema.Clip(name="c", source_range=rng)
    clip.media_reference = otio.schema.ExternalReference(target_url=path.resolve().as_uri())
    hold = otio.schema.Clip(name="h", source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(71, 24), otio.opentime.RationalTime(30, 24)))
    hold.media_reference = otio.schema.ExternalReference(target_url=path.resolve().as_uri())
    hold.effects.append(otio.schema.FreezeFrame())
    hold.metadata[KEY] = {"hold_of": 0}
    track.extend([clip, hold])
    tl.tracks.append(track)
    return tl


def test_hold_joins_its_clips_range(tmp_path, archive):
    film = tmp_path / "mine.mp4"
    shutil.copy(archive / "cc0_mdn_stream_of_water.mp4", film)
    text = credits_text(one_clip_timeline(film))
    # 1 s to 3 s, then a hold of frame 71 (2.958 s) for 1.25 s: one range, 3.25 s on screen
    assert "used: 0:01.00-0:03.00 (3.2 s on screen)" in text


def test_user_footage_credits_json_and_sidecar(tmp_path, archive):
    own = tmp_path / "own"
    (own / "sub").mkdir(parents=True)
    a, b = own / "sub" / "a.mp4", own / "b.mp4"
    shutil.copy(archive / "cc0_mdn_stream_of_water.mp4", a)
    shutil.copy(archive / "cc0_mdn_stream_of_water.mp4", b)
    (own / "credits.json").write_text(json.dumps({"files": [
        {"file": "sub/a.mp4", "licence": "CC BY 4.0", "credit": "A by Ann"},
        {"file": "b.mp4", "licence": "CC BY 4.0", "credit": "B by Bo"}]}))
    (own / "b.mp4.credits.json").write_text(json.dumps({"licence": "CC BY-SA 4.0", "credit": "B by Bo, really"}))
    assert lookup(a)["credit"] == "A by Ann" and lookup(a)["found_in"] == str(own / "credits.json")
    assert lookup(b)["licence"] == "CC BY-SA 4.0", "a sidecar beside the file wins"


def test_sample_name_with_other_content_is_not_credited_as_the_sample(tmp_path, archive, manifest):
    fake = tmp_path / "ccby_zwm_caminandes_llama_drama_10s.mp4"
    shutil.copy(archive / "cc0_mdn_stream_of_water.mp4", fake)  # the name of a sample, other bytes
    assert lookup(fake)["licence"] == "unknown"
    real = tmp_path / "x" / "ccby_zwm_caminandes_llama_drama_10s.mp4"
    real.parent.mkdir()
    shutil.copy(archive / real.name, real)
    assert lookup(real)["credit"] == manifest[real.name]["credit"]
    assert "unknown" in credits_text(one_clip_timeline(fake))


def test_not_a_timeline(tmp_path):
    bad = tmp_path / "x.otio"
    bad.write_text("{")
    proc = rereel("credits", bad)
    assert proc.returncode == 2 and str(bad) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
