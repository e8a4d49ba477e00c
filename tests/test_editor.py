"""The remake editor's changes: timeline edits (lock, black, fill, split, join, undo history) on a
small hand-made timeline, then the web API on a real remake of a short target (the archive's
"Tears of Steel" clip at 320x180, five shots, then 1.5 s of black) against the web test library."""

from __future__ import annotations

import time
from pathlib import Path

import opentimelineio as otio
import pytest
from fastapi.testclient import TestClient

from rereel.errors import RereelError
from rereel.match.choose import Candidate, ShotMatch
from rereel.match.score import Placement
from rereel.timeline import KEY, build_timeline, remake_track
from rereel.timeline.edit import History, join, set_black, set_locked, set_suggestions, shot_info, split
from rereel.web.app import Settings, create_app

RATE = 24.0
TEARS = "ccby_zwm_tears_of_steel_10s.mp4"
BLACK_S = 1.5


def make_target(archive: Path, folder: Path) -> Path:
    """Tears of Steel (10 s, 24 fps) at 320x180, then 1.5 s of black: a target with a black shot."""
    import numpy as np

    from rereel.media import VideoWriter, decode_frames

    path = folder / "tears_then_black.mp4"
    with VideoWriter(path, 320, 180, 24, crf=23) as w:
        for f in decode_frames(archive / TEARS):
            w.write(f.rgb(320, 180))
        for _ in range(round(BLACK_S * 24)):
            w.write(np.zeros((180, 320, 3), np.uint8))
    return path


def when_matched(client: TestClient, started):
    """`started` (a project's creation), once its matching job is done."""
    assert started.status_code == 200, started.text
    deadline = time.time() + 300
    while (job := client.get(f"/api/jobs/{started.json()['job']}").json())["state"] not in ("done", "failed"):
        assert time.time() < deadline
        time.sleep(0.3)
    assert job["state"] == "done", job["error"]
    return started


def matched_copy(web_library: Path, archive: Path, tmp_path_factory) -> tuple[Path, str, Path]:
    """A fresh copy of a work folder holding one matched project on the target:
    (workdir, project id, target). The matching is done once a run (shared with
    test_editor_browser, on whichever worker); each caller edits its own copy."""
    import json
    import shutil

    from conftest import built_once

    def build(folder: Path) -> None:
        target = make_target(archive, folder)
        client = TestClient(create_app(Settings(library=web_library, workdir=folder / "work", allow=[folder],
                                                extra_hosts=("testserver",))))
        started = when_matched(client, client.post("/api/projects", data={"path": str(target), "suggestions": "3"}))
        (folder / "matched.json").write_text(json.dumps({"pid": started.json()["project"], "target": str(target)}))

    folder = built_once(tmp_path_factory, "matched", build)
    matched = json.loads((folder / "matched.json").read_text())
    work = tmp_path_factory.mktemp("work") / "work"
    shutil.copytree(folder / "work", work)
    return work, matched["pid"], Path(matched["target"])


def _cand(archive: Path, name: str, start: float, end: float, score: float) -> Candidate:
    p = Placement(score, start, end, True, score, score, score)
    return Candidate(hash(name) % 1000 + int(start), 1, str(archive / name), name, RATE, 20.0, p)


@pytest.fixture
def tl(archive):
    """Three target shots (2 s, 1 s black, 3 s) at 24 fps, two suggestions each."""
    bounds = [(0, 48), (48, 72), (72, 144)]
    matches = []
    for i, (a, b) in enumerate(bounds):
        cands = [_cand(archive, TEARS, 0.5 * i, 0.5 * i + 4, 0.8), _cand(archive, "cc0_mdn_flower_bloom.mp4", 1, 5, 0.6)]
        black = i == 1
        matches.append(ShotMatch(i, a, b, a / RATE, b / RATE, black, cands, None if black else cands[0]))
    return build_timeline("t", {"path": str(archive / TEARS), "fps": RATE, "width": 320, "height": 180,
                                "duration": 6.0, "frames": 144, "has_audio": False}, matches, {"library": None})


def bounds(tl):
    return [(i["target_shot"], i["target_start_frame"], i["target_end_frame"]) for i in shot_info(tl)]


def test_split_and_join_renumber_in_time_order(tl):
    assert split(tl, 2, 100) == (2, 3)
    assert bounds(tl) == [(0, 0, 48), (1, 48, 72), (2, 72, 100), (3, 100, 144)]
    pieces = shot_info(tl)[2:]
    assert all(len(p["suggestions"]) == 0 and p["chosen"] is None for p in pieces)  # to be matched
    assert shot_info(tl)[0]["chosen"] == 0  # the others keep their choice
    assert join(tl, 1) == 1
    assert bounds(tl) == [(0, 0, 48), (1, 48, 100), (2, 100, 144)]
    assert shot_info(tl)[1]["black"] is False  # only one of the two was black
    frames = sum(round(i.source_range.duration.value) for i in remake_track(tl))
    assert frames == 144  # the cut list still covers the target, frame for frame


def test_split_refuses_a_cut_outside_or_too_close(tl):
    with pytest.raises(RereelError, match="shot 1 runs from frame 0 to 47"):
        split(tl, 0, 60)
    with pytest.raises(RereelError, match="shorter than"):
        split(tl, 0, 2)
    with pytest.raises(RereelError, match="no shot after it"):
        join(tl, 2)
    with pytest.raises(RereelError, match="there is no shot 9: the remake has shots 1 to 3"):
        set_locked(tl, 8, True)
    set_locked(tl, 1, True)
    with pytest.raises(RereelError, match="shot 2 is locked; unlock it to join it"):
        join(tl, 0)
    with pytest.raises(RereelError, match="shot 2 is locked; unlock it to split it"):
        split(tl, 1, 60)


def test_fill_a_black_shot_then_black_again(tl):
    black = shot_info(tl)[1]
    assert black["black"] and black["chosen"] is None and len(black["suggestions"]) == 2
    set_suggestions(tl, 1, list(black["suggestions"]), 1)
    item = [i for i in remake_track(tl) if i.metadata[KEY].get("target_shot") == 1][0]
    assert isinstance(item, otio.schema.Clip) and item.metadata[KEY]["chosen"] == 1
    set_black(tl, 1)
    item = [i for i in remake_track(tl) if i.metadata[KEY].get("target_shot") == 1][0]
    assert isinstance(item, otio.schema.Gap) and len(item.metadata[KEY]["suggestions"]) == 2


def test_history_undoes_and_redoes_in_order(tl):
    h = History()
    h.record("lock shot 1", tl.deepcopy())
    set_locked(tl, 0, True)
    h.record("split", tl.deepcopy())
    split(tl, 2, 100)
    label, back = h.step_back(tl)
    assert label == "split" and len(shot_info(back)) == 3 and shot_info(back)[0]["locked"]
    label, back = h.step_back(back)
    assert label == "lock shot 1" and not shot_info(back)[0].get("locked")
    label, again = h.step_forward(back)
    assert label == "lock shot 1" and shot_info(again)[0]["locked"]
    h2 = History.from_dict(h.to_dict())  # as saved with the project
    label, again = h2.step_forward(again)
    assert label == "split" and len(shot_info(again)) == 4
    with pytest.raises(RereelError, match="nothing to redo"):
        h2.step_forward(again)


# -- the API, on a real remake ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def editor(web_library, archive, tmp_path_factory):
    work, pid, target = matched_copy(web_library, archive, tmp_path_factory)
    settings = Settings(library=web_library, workdir=work, extra_hosts=("testserver",), allow=[target.parent])
    return TestClient(create_app(settings)), pid


def post(client, url, body=None, status=200):
    r = client.post(url, json=body or {})
    assert r.status_code == status, r.text
    return r.json()


def test_edits_are_undone_and_redone_across_a_restart(editor, web_library):
    client, pid = editor
    p = client.get(f"/api/projects/{pid}").json()
    assert p["editable"] and [s["number"] for s in p["shots"]] == list(range(1, len(p["shots"]) + 1))
    shot = next(s for s in p["shots"] if len(s["suggestions"]) >= 2)
    before = shot["shot_id"]
    swapped = post(client, f"/api/projects/{pid}/choose", {"shot": shot["index"], "suggestion": 1})
    assert swapped["history"]["undo"] == f"swap suggestion 2 into shot {shot['number']}"
    # A new app on the same work folder: the history is the project's, not the process's.
    again = TestClient(create_app(client.app.state.rereel.settings))
    undone = post(again, f"/api/projects/{pid}/undo")
    assert undone["shots"][shot["index"]]["shot_id"] == before and undone["history"]["redo"]
    redone = post(again, f"/api/projects/{pid}/redo")
    assert redone["shots"][shot["index"]]["chosen"] == 1
    post(again, f"/api/projects/{pid}/undo")
    assert post(client, f"/api/projects/{pid}/redo")["shots"][shot["index"]]["chosen"] == 1
    # The monitor's sound is the target itself, served in byte ranges (what a browser seeks with).
    part = client.get(f"/api/projects/{pid}/target", headers={"Range": "bytes=0-99"})
    target = Path(client.app.state.rereel.projects.meta(pid)["target"])
    assert part.status_code == 206 and part.content == target.read_bytes()[:100]


def test_rematch_keeps_locked_shots_and_split_join_touch_only_their_shots(editor):
    client, pid = editor
    p = client.get(f"/api/projects/{pid}").json()
    first = p["shots"][0]
    post(client, f"/api/projects/{pid}/choose", {"shot": 0, "suggestion": len(first["suggestions"]) - 1})
    locked = post(client, f"/api/projects/{pid}/shots/0/lock", {"locked": True})["shots"][0]
    assert locked["locked"]
    assert p["shots"][1]["chosen"] is not None and not p["shots"][1]["black"]
    post(client, f"/api/projects/{pid}/shots/1/black")  # the user wants this one dark
    rem = post(client, f"/api/projects/{pid}/rematch", {"seed": 7, "semantic": 0.2, "composition": 0.6, "colour": 0.2})
    assert rem["shots"][0]["shot_id"] == locked["shot_id"] and rem["shots"][0]["chosen"] == locked["chosen"]
    assert rem["shots"][1]["chosen"] is None and rem["shots"][1]["suggestions"]  # stays black, can be filled
    assert all(s["chosen"] == 0 for s in rem["shots"][2:] if not s["black"])  # matched again: the new best

    longest = max(rem["shots"], key=lambda s: s["end_frame"] - s["start_frame"])
    cut = (longest["start_frame"] + longest["end_frame"]) // 2
    others = {s["start_frame"]: s["shot_id"] for s in rem["shots"] if s["index"] != longest["index"]}
    cut_up = post(client, f"/api/projects/{pid}/split", {"frame": cut})
    assert len(cut_up["shots"]) == len(rem["shots"]) + 1
    assert [s["number"] for s in cut_up["shots"]] == list(range(1, len(cut_up["shots"]) + 1))
    pieces = [s for s in cut_up["shots"] if s["start_frame"] in (longest["start_frame"], cut)]
    assert [(s["start_frame"], s["end_frame"]) for s in pieces] == [(longest["start_frame"], cut), (cut, longest["end_frame"])]
    assert all(s["suggestions"] for s in pieces)  # both pieces matched
    assert {s["start_frame"]: s["shot_id"] for s in cut_up["shots"] if s not in pieces} == others  # nothing else
    assert client.get(f"/api/projects/{pid}/shots/{pieces[1]['index']}/thumb.jpg").headers["content-type"] == "image/jpeg"

    joined = post(client, f"/api/projects/{pid}/shots/{pieces[0]['index']}/join")
    assert [(s["start_frame"], s["end_frame"]) for s in joined["shots"]] == \
        [(s["start_frame"], s["end_frame"]) for s in rem["shots"]]
    assert joined["shots"][0]["locked"] and joined["shots"][0]["shot_id"] == locked["shot_id"]


def test_more_suggestions_black_and_errors_say_why(editor):
    client, pid = editor
    p = client.get(f"/api/projects/{pid}").json()
    shot = p["shots"][-1]
    more = post(client, f"/api/projects/{pid}/shots/{shot['index']}/more")
    assert len(more["shots"][-1]["suggestions"]) > len(shot["suggestions"]) or "no other" in more["message"]
    assert more["shots"][-1]["shot_id"] == shot["shot_id"]  # what is on screen stays
    black = post(client, f"/api/projects/{pid}/shots/{shot['index']}/black")["shots"][-1]
    assert black["chosen"] is None and black["suggestions"]
    filled = post(client, f"/api/projects/{pid}/choose", {"shot": shot["index"], "suggestion": 0})["shots"][-1]
    assert filled["chosen"] == 0
    n = len(p["shots"])
    err = post(client, f"/api/projects/{pid}/choose", {"shot": shot["index"], "suggestion": 99}, status=400)
    assert err["detail"] == f"shot {n} has suggestions 1 to {len(filled['suggestions'])}; there is no number 100"
    err = post(client, f"/api/projects/{pid}/split", {"frame": shot["start_frame"] + 1}, status=400)
    assert "too short to match" in err["detail"] or "shorter than" in err["detail"]
    err = post(client, f"/api/projects/{pid}/shots/{n - 1}/join", status=400)
    assert err["detail"] == f"shot {n} has no shot after it to join with (the remake has {n} shots)"


def test_an_edit_aimed_at_a_remake_changed_elsewhere_is_refused(editor, tmp_path):
    """Found by trying two tabs: tab A showed the remake, tab B split a shot (the shots after it
    numbered one up), then tab A's swap into "its" shot 5 changed another shot. A page sends
    the revision it shows (If-Match); one changed since, here or by `rereel choose`, is a 409."""
    import os
    import subprocess
    import sys

    client, pid = editor
    tab_a = client.get(f"/api/projects/{pid}").json()
    seen = {"If-Match": f'"{tab_a["revision"]}"'}
    longest = max(tab_a["shots"], key=lambda s: s["end_frame"] - s["start_frame"])
    cut = (longest["start_frame"] + longest["end_frame"]) // 2
    tab_b = client.post(f"/api/projects/{pid}/split", json={"frame": cut}, headers=seen)  # B showed the same version
    assert tab_b.status_code == 200, tab_b.text
    after_split = tab_b.json()
    assert after_split["revision"] != tab_a["revision"]
    last = tab_a["shots"][-1]
    for url, body in ((f"/api/projects/{pid}/choose", {"shot": last["index"], "suggestion": 0}),
                      (f"/api/projects/{pid}/shots/{last['index']}/black", {}), (f"/api/projects/{pid}/undo", {})):
        r = client.post(url, json=body, headers=seen)
        assert r.status_code == 409 and "changed elsewhere" in r.json()["detail"], (url, r.text)
    now = client.get(f"/api/projects/{pid}").json()
    assert now["revision"] == after_split["revision"] and now["shots"] == after_split["shots"]  # nothing changed

    # `rereel choose` on the project's timeline file is a change elsewhere too
    timeline = client.app.state.rereel.projects.folder(pid) / "remake.otio"
    shot = next(s for s in now["shots"] if len(s["suggestions"]) >= 2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    subprocess.run([sys.executable, "-m", "rereel", "choose", timeline, str(shot["number"]), "2"], check=True,
                   capture_output=True, env=env)
    r = client.post(f"/api/projects/{pid}/shots/{shot['index']}/lock", json={"locked": True},
                    headers={"If-Match": f'"{now["revision"]}"'})
    assert r.status_code == 409, r.text
    fresh = client.get(f"/api/projects/{pid}").json()
    assert fresh["shots"][shot["index"]]["chosen"] == 1
    # a client that sends no revision edits what is saved, as before
    assert post(client, f"/api/projects/{pid}/shots/{shot['index']}/lock", {"locked": True})["shots"][shot["index"]]["locked"]


def test_a_damaged_project_record_is_said_not_a_server_error(web_library, archive, tmp_path_factory):
    """Found by trying: a truncated project.json gave 500s on the project's page, its target and
    every edit; the list of projects skips it, and deleting it still works."""
    work, pid, target = matched_copy(web_library, archive, tmp_path_factory)
    client = TestClient(create_app(Settings(library=web_library, workdir=work, extra_hosts=("testserver",),
                                            allow=[target.parent])))
    record = work / "projects" / pid / "project.json"
    record.write_text('{"id": "x"')
    for r in (client.get(f"/api/projects/{pid}"), client.get(f"/api/projects/{pid}/target"),
              client.post(f"/api/projects/{pid}/choose", json={"shot": 0, "suggestion": 0})):
        assert r.status_code == 400 and "project.json: the project's record cannot be read" in r.json()["detail"], r.text
    assert pid not in [p["id"] for p in client.get("/api/projects").json()["projects"]]
    for damaged in ("[]", "null", '{"target": "/x.mp4"}'):  # JSON, but no record: the list was a 500
        record.write_text(damaged)
        assert client.get("/api/projects").status_code == 200
        assert client.get(f"/api/projects/{pid}").status_code == 400
    assert client.post(f"/api/projects/{pid}/delete", json={}).status_code == 200 and not record.exists()


def test_matching_again_needs_no_target_file(web_library, archive, tmp_path_factory):
    """Found by trying: with the target moved away, re-match, split, join and more suggestions were
    500s (the target's fingerprint was taken from the file again); the timeline records it."""
    from rereel.timeline import read_timeline, write_timeline

    work, pid, target = matched_copy(web_library, archive, tmp_path_factory)
    client = TestClient(create_app(Settings(library=web_library, workdir=work, extra_hosts=("testserver",),
                                            allow=[target.parent])))
    path = work / "projects" / pid / "remake.otio"
    tl = read_timeline(path)
    tl.metadata[KEY]["target"]["path"] = str(target.parent / "moved away.mp4")  # as after `mv`
    write_timeline(tl, path)
    p = client.get(f"/api/projects/{pid}").json()
    longest = max(p["shots"], key=lambda s: s["end_frame"] - s["start_frame"])
    post(client, f"/api/projects/{pid}/rematch", {"seed": 3})
    split_up = post(client, f"/api/projects/{pid}/split", {"frame": (longest["start_frame"] + longest["end_frame"]) // 2})
    post(client, f"/api/projects/{pid}/shots/{longest['index']}/join")
    post(client, f"/api/projects/{pid}/shots/0/more")
    assert len(split_up["shots"]) == len(p["shots"]) + 1


def test_an_uploaded_target_is_named_as_the_user_sent_it(web_library, archive, tmp_path_factory, tmp_path):
    """Found by trying: the credits, the EDL's title and the OTIO's name called an upload by the
    server's copy, "target", and the credits asked for a licence file beside that copy."""
    work, _, target = matched_copy(web_library, archive, tmp_path_factory)
    client = TestClient(create_app(Settings(library=web_library, workdir=work, extra_hosts=("testserver",))))
    name = "Tëars – copy.mp4"
    started = when_matched(client, client.post("/api/projects", files={"file": (name, target.read_bytes(), "video/mp4")}))
    pid = started.json()["project"]
    credits = client.get(f"/api/projects/{pid}/files/remake.credits.txt").text
    assert credits.startswith("Credits for Tëars – copy remade\n") and f"\n{name}\n" in credits, credits
    assert "target.mp4" not in credits and "an uploaded video" in credits, credits
    assert "TITLE: Tëars – copy remade" in client.get(f"/api/projects/{pid}/files/remake.edl").text
    otio_json = client.get(f"/api/projects/{pid}/files/remake.otio").text
    assert '"name": "Tëars – copy remade"' in otio_json and "target.mp4\"" not in otio_json.replace("/target.mp4", "")
    xml = client.get(f"/api/projects/{pid}/files/remake.xml").text
    assert "<name>Tëars – copy.mp4</name>" in xml  # its clips; the <file> is the server's copy, target.mp4
