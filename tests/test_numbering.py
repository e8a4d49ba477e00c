"""One numbering everywhere: shot N is the N-th target shot in time order, black ones included,
from 1, labelled with the timecode of its start at the target's rate (HH:MM:SS:FF, non-drop);
suggestions count from 1. The OTIO metadata, the EDL (read by pycmx, an independent parser) and
`rereel choose` must agree with numbers and timecodes worked out here from the clip times alone.

The timelines come from test_first_contact.sintel_timeline: five target shots whose indices are
not their positions (0, 1, 5, 6, 7), shot 2 black, shot 4 followed by a hold clip.
"""

from __future__ import annotations

import opentimelineio as otio
import pytest

from conftest import require_module
from test_first_contact import cli, sintel_timeline  # noqa: F401 (cli: a fixture)

KEY = "rereel"


def expected_shots(path):
    """[(number, timecode, first frame, frames, black)] from the .otio's item durations, summed
    here; a hold clip (metadata hold_of) belongs to the shot before it."""
    tl = otio.adapters.read_from_file(str(path))
    rate = float(tl.metadata[KEY]["target"]["fps"])
    nominal = round(rate)  # non-drop: 23.976 counts as 24, 29.97 as 30
    track = next(t for t in tl.video_tracks() if t.name == "remake")
    rows, k = [], 0
    for item in track:
        n = round(item.source_range.duration.rescaled_to(rate).value)
        if "hold_of" in item.metadata.get(KEY, {}):
            rows[-1][3] += n
        else:
            s, f = divmod(k, nominal)
            tc = f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"
            rows.append([len(rows) + 1, tc, k, n, isinstance(item, otio.schema.Gap)])
        k += n
    return rows, tl, track, rate


@pytest.fixture(scope="module", params=[("trailers/sintel_trailer_320x180.webm", (0, 30, 100, 101, 160, 240)),
                                        ("archive/pd_steamboat_willie_1928_extract.mp4", (0, 30, 100, 101, 160, 200))],
                ids=["24fps", "29.97fps"])
def made(request, tmp_path_factory):
    """A timeline at 24 fps with sound, and one at 29.97 (where the EDL adapter writes drop-frame),
    each within its target's frames."""
    folder = tmp_path_factory.mktemp("numbering")
    target, cuts = request.param
    path = sintel_timeline(folder, cuts=cuts, target=target)
    from rereel.timeline import read_timeline, write_timeline

    write_timeline(read_timeline(path), folder / "remake.edl")
    return folder, path


def test_otio_metadata_numbers_each_shot_in_time_order(made):
    _, path = made
    rows, tl, track, _ = expected_shots(path)
    assert [r[4] for r in rows] == [False, True, False, False, False]  # the black shot is counted
    firsts = [it for it in track if "hold_of" not in it.metadata.get(KEY, {})]
    assert len(firsts) == len(rows) == 5 and len(track) == 6  # shot 4 has its hold
    for (number, tc, *_), item in zip(rows, firsts):
        info = item.metadata[KEY]
        assert (info["number"], info["timecode"]) == (number, tc), item.name
        assert item.name.startswith(f"shot {number}")
    assert [it.metadata[KEY]["target_shot"] for it in firsts] == [0, 1, 5, 6, 7]  # numbers are positions


def test_edl_has_an_event_per_shot_with_its_number_and_timecode(made):
    pycmx = require_module("pycmx", "the independent EDL parser")
    folder, path = made
    rows, _, _, _ = expected_shots(path)
    text = (folder / "remake.edl").read_text()
    assert "FCM: NON-DROP FRAME" in text and ";" not in text  # non-drop, also at 29.97
    with open(folder / "remake.edl") as f:
        events = list(pycmx.parse_cmx3600(f).events)
    assert len(events) == 6  # five shots, the black one included, and shot 4's hold
    seen = []
    for event in events:
        (edit,) = event.edits
        remarks = [st.text for st in event.statements if type(st).__name__ == "StmtRemark" and st.text.startswith("shot ")]
        assert len(remarks) == 1, remarks
        words = remarks[0].split()
        if words[2] == "hold":
            assert int(words[1]) == seen[-1][0]  # the hold belongs to the shot before it
            continue
        number, tc = int(words[1]), words[2]
        assert edit.record_in == tc, (remarks, edit.record_in)  # the label is where the shot starts
        seen.append((number, tc, edit.black))
    assert seen == [(n, tc, black) for n, tc, _, _, black in rows]


def test_choose_takes_the_same_numbers_and_timecodes(made, tmp_path, cli):
    _, original = made
    path = tmp_path / "my edits" / "edit.otio"  # a space: the hint below is a command to paste
    path.parent.mkdir()
    path.write_text(original.read_text())
    rows, _, _, rate = expected_shots(path)
    number, tc, first, frames, _ = rows[3]
    # A timecode inside shot 4 (not its start) names shot 4; its suggestions are listed from 1.
    s, f = divmod(first + frames // 2, round(rate))
    inside = f"00:00:{s:02d}:{f:02d}"
    listed = cli("choose", path, inside)
    assert listed.returncode == 0, listed.stderr
    assert f"shot {number} ({tc})" in listed.stdout and "* 1. " in listed.stdout and "  3. " in listed.stdout
    assert f"`rereel choose '{path}' {number} N`" in listed.stdout, listed.stdout
    done = cli("choose", path, number, 2)
    assert done.returncode == 0, done.stderr
    _, tl, track, _ = expected_shots(path)
    item = next(it for it in track if it.metadata[KEY].get("number") == number)
    info = item.metadata[KEY]
    assert info["chosen"] == 1 and otio.url_utils.filepath_from_url(item.media_reference.target_url) == info["suggestions"][1]["path"]
    black_n, black_tc = rows[1][:2]
    proc = cli("choose", path, black_n, 1)
    assert proc.returncode == 2
    assert f"shot {black_n} ({black_tc}) is black in the target" in proc.stderr, proc.stderr
