"""The web app's HTTP and WebSocket API, through FastAPI's test client, on a library of real clips."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from rereel.errors import RereelError
from rereel.media import decode_frames, probe
from rereel.timeline import KEY, read_timeline, remake_track
from rereel.web.app import Settings, create_app

FLOWER = "cc0_mdn_flower_bloom.mp4"
TARGET = "sintel_trailer_320x180.webm"


def make_client(library: Path, workdir: Path, **kw) -> TestClient:
    settings = Settings(library=library, workdir=workdir, extra_hosts=("testserver",), **kw)
    return TestClient(create_app(settings))


def frame_jpeg(path: Path, t: float, width: int = 320) -> bytes:
    for f in decode_frames(path, start=t):
        rgb = f.rgb(width, round(width * f.frame.height / f.frame.width) // 2 * 2)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=85)
        return buf.getvalue()
    raise AssertionError(f"no frame at {t} in {path}")


@pytest.fixture(scope="module")
def client(web_library, media, tmp_path_factory):
    return make_client(web_library, tmp_path_factory.mktemp("work"), allow=[media / "trailers"])


@pytest.fixture(scope="module")
def shots(client):
    lib = client.get("/api/library").json()
    out = {}
    for v in lib["videos"]:
        out[v["name"]] = client.get(f"/api/videos/{v['id']}/shots").json()["shots"]
    return out


def wait_job(client: TestClient, job_id: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["state"] != "failed", job["error"]
        if job["state"] == "done":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


# -- archive browser ----------------------------------------------------------------------------
def test_library_lists_videos_shots_thumbnails_and_playable_previews(client, shots):
    assert set(shots) >= {FLOWER, "cc0_mdn_stream_of_water.mp4"}
    shot = shots[FLOWER][0]
    thumb = client.get(f"/api/shots/{shot['shot_id']}/thumb.jpg")
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    preview = client.get(f"/api/shots/{shot['shot_id']}/preview.mp4")
    assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(preview.content)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.width == 320
        frames = sum(1 for _ in c.decode(stream))
    assert frames >= min(shot["end"] - shot["start"], 8.0) * 20  # the shot (capped at 8 s) at 24 fps


def test_similar_and_searches_find_the_right_footage(client, shots, archive):
    flower = shots[FLOWER][0]["shot_id"]
    data = client.get(f"/api/shots/{flower}/similar?top=5").json()
    assert data["query"]["shot_id"] == flower and flower not in [h["shot_id"] for h in data["hits"]]
    assert len(data["hits"]) == 5 and data["hits"][0]["score"] >= data["hits"][-1]["score"]
    # An image: a frame of the peony clip finds the peony clip first.
    peony = archive / "ccby_pixwarp_peony_timelapse.avi"
    up = client.post("/api/search", files={"file": ("peony.jpg", frame_jpeg(peony, 3.0), "image/jpeg")}).json()
    assert up["hits"][0]["name"] == peony.name
    words = client.get("/api/search", params={"q": "flower"}).json()
    assert words["kind"] == "words" and words["classes"] and words["hits"]


def test_clusters_are_grids_of_at_most_nine(client):
    groups = client.get("/api/clusters").json()["groups"]
    assert len(groups) >= 2 and all(1 <= len(g["shots"]) <= 9 for g in groups)
    assert sum(g["size"] for g in groups) == client.get("/api/library").json()["shots"]


def test_frame_of_an_indexed_video_only(client, shots):
    shot = shots[FLOWER][0]["shot_id"]
    assert client.get(f"/api/frame?shot={shot}&t=1.0").headers["content-type"] == "image/jpeg"
    assert client.get("/api/frame?shot=99999&t=1.0").status_code == 404
    assert client.get("/api/shots/99999/preview.mp4").status_code == 404


# -- security -----------------------------------------------------------------------------------
def test_foreign_host_headers_are_refused_on_loopback(client):
    assert client.get("/api/library", headers={"host": "rebind.example.com"}).status_code == 400
    assert client.get("/api/library", headers={"host": "127.0.0.1:8000"}).status_code == 200


@pytest.mark.parametrize("url", [
    "/api/projects/..%2F..%2Fcatalog.sqlite",
    "/api/projects/aaaaaaaaaaaa/files/..%2F..%2F..%2Fcatalog.sqlite",
    "/api/projects/aaaaaaaaaaaa/files/catalog.sqlite",
    "/api/gifs/..%2Fprojects",
    "/static/..%2F..%2F..%2Fcatalog.sqlite",
])
def test_no_path_leaves_the_served_folders(client, url):
    r = client.get(url)
    assert r.status_code == 404 and b"SQLite" not in r.content


def test_targets_only_from_allowed_folders(client, archive, media):
    listed = client.get("/api/targets").json()["videos"]
    assert str(media / "trailers" / TARGET) in listed and not any("archive" in p for p in listed)
    for path in (archive / FLOWER, media / "trailers" / ".." / "archive" / FLOWER):
        r = client.post("/api/projects", data={"path": str(path)})
        assert r.status_code == 403 and "not inside a folder" in r.json()["detail"]


def test_targets_listed_are_those_a_remake_accepts(web_library, tmp_path, media):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape.webm").symlink_to(media / "trailers" / TARGET)  # a link leading out of the folder
    c = make_client(web_library, tmp_path / "work", allow=[allowed])
    assert c.get("/api/targets").json()["videos"] == []
    assert c.post("/api/projects", data={"path": str(allowed / "escape.webm")}).status_code == 403


def test_an_image_query_is_named_as_sent_and_a_huge_one_refused(client, monkeypatch):
    r = client.post("/api/search", files={"file": ("x.png", b"not an image", "image/png")})
    assert r.status_code == 400 and r.json()["detail"] == "x.png: not a readable image"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as a 400-megapixel PNG is, at 1/400000 the cost
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "PNG")
    r = client.post("/api/search", files={"file": ("huge.png", buf.getvalue(), "image/png")})
    assert r.status_code == 400 and r.json()["detail"].startswith("huge.png: cannot read the image"), r.text


def test_a_caption_longer_than_a_meme_is_refused_at_once(client, shots, archive):
    frames = [("frames", (f"f{i}.jpg", frame_jpeg(archive / "cc0_mdn_stream_of_water.mp4", 1 + i / 10), "image/jpeg"))
              for i in range(2)]
    r = client.post("/api/mirror/gif", files=frames, data={"shot": str(shots[FLOWER][0]["shot_id"]), "t": "1.0",
                                                          "caption": "x" * 121})
    assert r.status_code == 400 and "at most 120" in r.json()["detail"]  # it took the server minutes before


def test_a_sliver_of_a_webcam_frame_is_refused_for_a_gif(client, shots):
    buf = io.BytesIO()
    Image.new("RGB", (4, 1000)).save(buf, format="JPEG")  # a GIF 60000 px high: a 500 from the decoder before
    frames = [("frames", (f"s{i}.jpg", buf.getvalue(), "image/jpeg")) for i in range(2)]
    r = client.post("/api/mirror/gif", files=frames, data={"shot": str(shots[FLOWER][0]["shot_id"]), "t": "1.0"})
    assert r.status_code == 400 and "s0.jpg" in r.json()["detail"] and "4:1" in r.json()["detail"], r.text


def test_uploads_are_capped_in_type_and_size(web_library, tmp_path, archive):
    c = make_client(web_library, tmp_path, max_upload_mb=1.0, max_image_mb=1.0)
    before = set((tmp_path / "projects").iterdir())
    r = c.post("/api/projects", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and "notes.txt" in r.json()["detail"]
    # Over the cap while copying (1.5 MB), and refused from its Content-Length before reading (3 MB).
    for size in (1_500_000, 3_000_000):
        r = c.post("/api/projects", files={"file": ("big.avi", b"\0" * size, "video/x-msvideo")})
        assert r.status_code == 413 and "cap" in r.json()["detail"]
    r = c.post("/api/projects", files={"file": ("fake.mp4", b"not a video at all" * 100, "video/mp4")})
    assert r.status_code == 400 and "fake" in r.json()["detail"]
    assert set((tmp_path / "projects").iterdir()) == before  # nothing left behind
    r = c.post("/api/search", files={"file": ("x.gif.exe", b"MZ", "application/octet-stream")})
    assert r.status_code == 415


def test_a_token_is_needed_beyond_loopback(web_library, tmp_path):
    with pytest.raises(RereelError, match="token"):
        create_app(Settings(library=web_library, workdir=tmp_path, host="0.0.0.0"))
    c = TestClient(create_app(Settings(library=web_library, workdir=tmp_path, host="0.0.0.0", token="s3cret")))
    assert c.get("/api/library").status_code == 401
    assert c.get("/api/library", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/library", headers={"authorization": "Bearer s3cret"}).status_code == 200
    first = c.get("/?token=s3cret")  # the printed URL: sets the cookie the pages then use
    assert first.status_code == 200 and "rereel_token" in first.headers["set-cookie"]
    assert c.get("/api/library").status_code == 200


def test_posts_from_another_site_or_without_a_length_are_refused(client, media):
    data = {"path": str(media / "trailers" / TARGET)}
    r = client.post("/api/projects", data=data, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/api/projects", data=data, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403

    def chunks():
        yield b"x" * 1000

    r = client.post("/api/search", content=chunks(), headers={"content-type": "Multipart/form-data; boundary=x"})
    assert r.status_code == 411


def test_a_post_without_a_body_is_taken(client):
    """`curl -X POST .../undo` sends neither a length nor a transfer encoding: HTTP/1.1's way of
    saying there is no body. It was refused as if chunked (411)."""
    request = client.build_request("POST", "/api/projects/000000000000/undo")
    del request.headers["content-length"]
    r = client.send(request)
    assert r.status_code == 404 and "project 000000000000" in r.json()["detail"], r.text  # past the guard


def test_websockets_from_another_origin_are_refused(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/ws/mirror", headers={"origin": "http://evil.example"}) as ws:
            ws.receive_json()


# -- remake editor ------------------------------------------------------------------------------
def test_remake_swap_render_download_and_restart(client, web_library, media, tmp_path_factory):
    target = media / "trailers" / TARGET
    started = client.post("/api/projects", data={"path": str(target), "suggestions": "4"})
    assert started.status_code == 200, started.text
    pid = started.json()["project"]
    job = wait_job(client, started.json()["job"])
    assert job["result"]["shots"] >= 10
    p = client.get(f"/api/projects/{pid}").json()
    assert p["ready"] and p["name"] == TARGET
    # What it was matched with, for the page's re-match fields (the seed box said 1; it was 0).
    assert p["matched_with"]["seed"] == 0 and abs(sum(p["matched_with"][k] for k in ("semantic", "composition", "colour")) - 1) < 1e-6
    shot = next(s for s in p["shots"] if not s["black"] and len(s["suggestions"]) >= 2)
    assert shot["chosen"] == 0 and shot["timecode"].count(":") == 3
    assert client.get(f"/api/projects/{pid}/shots/{shot['index']}/thumb.jpg").headers["content-type"] == "image/jpeg"

    swapped = client.post(f"/api/projects/{pid}/choose", json={"shot": shot["index"], "suggestion": 1}).json()
    new = next(s for s in swapped["shots"] if s["index"] == shot["index"])
    assert new["chosen"] == 1 and new["shot_id"] == shot["suggestions"][1]["shot_id"]
    pair = client.get(f"/api/projects/{pid}/shots/{shot['index']}/preview.mp4")
    with av.open(io.BytesIO(pair.content)) as c:
        assert c.streams.video[0].width == 640  # target | match

    # Swaps of several shots at once (quick clicks) are all kept: none is lost to another's write.
    from concurrent.futures import ThreadPoolExecutor

    others = [s for s in p["shots"] if len(s["suggestions"]) >= 3 and s["index"] != shot["index"]][:4]
    projects = client.app.state.rereel.projects
    with ThreadPoolExecutor(len(others)) as pool:
        list(pool.map(lambda s: projects.choose(pid, s["index"], 2), others))
    after = {s["index"]: s["chosen"] for s in client.get(f"/api/projects/{pid}").json()["shots"]}
    assert all(after[s["index"]] == 2 for s in others) and after[shot["index"]] == 1

    # A restart: a new app on the same work folder sees the swap (it lives in remake.otio).
    again = make_client(web_library, client.app.state.rereel.settings.workdir)
    assert next(s for s in again.get(f"/api/projects/{pid}").json()["shots"] if s["index"] == shot["index"])["chosen"] == 1

    job = wait_job(again, again.post(f"/api/projects/{pid}/render", json={"side_by_side": False}).json()["job"])
    mp4 = again.get(f"/api/projects/{pid}/files/{job['result']['file']}?download=true")
    assert mp4.status_code == 200 and "attachment" in mp4.headers["content-disposition"]
    out = tmp_path_factory.mktemp("dl") / "remake.mp4"
    out.write_bytes(mp4.content)
    info, tinfo = probe(out), probe(target)
    assert abs(info.duration - tinfo.duration) < 0.1 and info.has_audio

    otio_file = tmp_path_factory.mktemp("dl") / "remake.otio"
    otio_file.write_bytes(again.get(f"/api/projects/{pid}/files/remake.otio").content)
    tl = read_timeline(otio_file)  # kept in a name: OTIO frees a track's items with their timeline
    item = next(i for i in remake_track(tl) if i.metadata[KEY].get("target_shot") == shot["index"])
    assert item.metadata[KEY]["shot_id"] == shot["suggestions"][1]["shot_id"]
    edl = again.get(f"/api/projects/{pid}/files/remake.edl").text
    assert "FCM" in edl or "TITLE" in edl
    assert Path(shot["suggestions"][1]["name"]).stem[:20] in edl or shot["suggestions"][1]["name"] in edl
    # The credits download names the swapped-in film with its licence from the footage's manifest.
    credits = again.get(f"/api/projects/{pid}/files/remake.credits.txt")
    assert credits.status_code == 200, credits.text
    block = credits.text.split(shot["suggestions"][1]["name"] + "\n", 1)[1].split("\n\n")[0]
    manifest = json.loads((media / "SOURCES.json").read_text())["files"]
    entry = next(e for e in manifest if Path(e["file"]).name == shot["suggestions"][1]["name"])
    assert entry["licence"] in block, block
    # An edit after the render leaves the credits of the video offered beside them (they were
    # rebuilt from the edited timeline, naming films the MP4 does not show).
    from rereel.credits import credits_text

    assert again.get(f"/api/projects/{pid}").json()["renders"]["standalone"]["stale"] is False
    again.post(f"/api/projects/{pid}/choose", json={"shot": shot["index"], "suggestion": 0})
    assert again.get(f"/api/projects/{pid}").json()["renders"]["standalone"]["stale"] is True  # edited since
    # A render that finished after an edit it did not see (started from the timeline before it)
    # is out of date too: the render records the timeline it was made from, not just its time.
    import os

    video = client.app.state.rereel.settings.workdir / "projects" / pid / "remake.mp4"
    os.utime(video, (time.time() + 5, time.time() + 5))
    assert again.get(f"/api/projects/{pid}").json()["renders"]["standalone"]["stale"] is True
    edited = credits_text(again.app.state.rereel.projects.timeline(pid))
    assert edited != credits.text  # the edit changes what the credits of a new render would say
    assert again.get(f"/api/projects/{pid}/files/remake.credits.txt").text == credits.text

    assert again.post(f"/api/projects/{pid}/delete", json={}).json() == {"deleted": pid}
    assert again.get(f"/api/projects/{pid}").status_code == 404 and target.exists()  # the target was not ours


def test_a_job_error_is_one_line(client, tmp_path, media):
    r = client.post("/api/projects/aaaaaaaaaaaa/render", json={"side_by_side": False})
    assert r.status_code == 404
    r = client.post("/api/projects", data={"path": str(media / "trailers" / "missing.webm")})
    assert r.status_code in (403, 404) and "\n" not in r.json()["detail"]


# -- webcam mirror and GIF ------------------------------------------------------------------------
def test_mirror_socket_finds_the_clip_a_frame_comes_from(client, archive):
    with client.websocket_connect("/ws/mirror") as ws:
        ws.send_bytes(frame_jpeg(archive / FLOWER, 3.0))
        m = ws.receive_json()
        assert m["name"] == FLOWER, m
        assert m["embed_ms"] > 0 and m["server_ms"] >= m["embed_ms"] and m["frame"].startswith("/api/frame?")
        assert client.get(m["frame"]).headers["content-type"] == "image/jpeg"
        ws.send_bytes(b"this is not a jpeg")
        assert "error" in ws.receive_json()
        ws.send_bytes(frame_jpeg(archive / FLOWER, 3.5))  # the connection survives a bad frame
        assert ws.receive_json()["name"] == FLOWER


def test_capture_makes_a_side_by_side_reaction_gif(client, shots, archive):
    frames = [("frames", (f"f{i}.jpg", frame_jpeg(archive / "cc0_mdn_stream_of_water.mp4", 1 + i / 10), "image/jpeg"))
              for i in range(12)]
    shot = shots[FLOWER][0]["shot_id"]
    r = client.post("/api/mirror/gif", files=frames, data={"shot": str(shot), "t": "1.0", "fps": "10", "caption": "me too"})
    assert r.status_code == 200, r.text
    data = r.json()
    gif = Image.open(io.BytesIO(client.get(data["gif"]).content))
    assert gif.format == "GIF" and gif.n_frames == 12 and data["width"] >= 2 * 0.9 * 240 * 0.5


# -- learning to see, live ------------------------------------------------------------------------
def test_see_socket_runs_the_chosen_model(web_library, see_models, tmp_path, archive):
    c = make_client(web_library, tmp_path, models=[see_models])
    [listed] = c.get("/api/see/models").json()["models"]
    assert listed == {"name": "flowers", "size": 64, "recipe": "degrade", "step": 20}, listed  # the fixture's (step was null)
    with c.websocket_connect("/ws/see") as ws:
        ws.send_bytes(frame_jpeg(archive / FLOWER, 1.0))
        assert "model first" in ws.receive_json()["error"]
        ws.send_text(json.dumps({"model": "nope"}))
        refused = ws.receive_json()  # a control message's answer says so, and names the model asked for
        assert "nope" in refused["error"] and refused["control"] and refused["asked"] == "nope", refused
        ws.send_text(json.dumps({"model": "flowers", "smooth": 0.3}))
        assert ws.receive_json() == {"model": "flowers", "smooth": 0.3, "control": True}
        ws.send_bytes(frame_jpeg(archive / FLOWER, 1.0))
        meta = ws.receive_json()
        assert "control" not in meta  # a frame's answer
        image = Image.open(io.BytesIO(ws.receive_bytes()))
        assert meta["model"] == "flowers" and meta["server_ms"] > 0
        assert image.format == "JPEG" and min(image.size) == 64 and np.asarray(image).std() > 1


# -- hostile requests: a clear 4xx, never a 500 -----------------------------------------------------
@pytest.mark.parametrize("body", ['{"shot": NaN, "suggestion": 1}', '{"shot": 1e400, "suggestion": 0}',
                                  '{"shot": Infinity, "suggestion": -Infinity}'])
def test_numbers_json_cannot_carry_are_a_422_naming_the_field(client, body):
    r = client.post("/api/projects/aaaaaaaaaaaa/choose", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "shot"] and "finite" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize("t", ["inf", "-inf", "nan", "1e308", "100000"])
def test_a_frame_time_outside_the_video_is_refused(client, shots, t):
    r = client.get(f"/api/frame?shot={shots[FLOWER][0]['shot_id']}&t={t}")
    assert r.status_code == 400 and r.json()["detail"].startswith("t=")


@pytest.mark.parametrize("url", ["/api/shots/99999999999999999999999/thumb.jpg", "/api/videos/-1/shots",
                                 "/api/frame?shot=99999999999999999999999&t=1"])
def test_ids_beyond_sqlite_integers_are_refused(client, url):
    assert client.get(url).status_code == 422


def test_a_path_with_a_nul_byte_is_refused(client, media):
    r = client.post("/api/projects", data={"path": f"{media}/trailers/a\0b.webm"})
    assert r.status_code == 400 and "NUL" in r.json()["detail"]


def test_text_on_the_mirror_socket_gets_an_error_and_the_socket_lives(client, archive):
    with client.websocket_connect("/ws/mirror") as ws:
        ws.send_text("hello")
        assert "binary JPEG" in ws.receive_json()["error"]
        ws.send_bytes(frame_jpeg(archive / FLOWER, 3.0))
        assert ws.receive_json()["name"] == FLOWER


@pytest.mark.parametrize("message, problem", [
    ('{"smooth": "abc"}', "smooth 'abc'"), ('{"smooth": NaN}', "smooth nan"), ('{"smooth": null}', "smooth None"),
    ('{"smooth": true}', "smooth True"), ('[0.5]', "JSON object"), ('{"model": [1]}', "model [1]"), ("{", "JSON"),
])
def test_see_control_messages_that_are_not_understood_change_nothing(client, message, problem):
    with client.websocket_connect("/ws/see") as ws:
        ws.send_text(message)
        assert problem in ws.receive_json()["error"]
        ws.send_text(json.dumps({"smooth": 0.2}))  # the socket is still there, the value still 0..0.95
        assert ws.receive_json() == {"model": None, "smooth": 0.2, "control": True}


# -- retrying a failed remake -----------------------------------------------------------------------
def test_a_failed_remake_can_be_retried(web_library, archive, tmp_path, monkeypatch):
    import rereel.web.editor as editor

    real, calls = editor.remake, []

    def fail_once(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RereelError("simulated failure: the disk filled up")
        return real(*args, **kw)

    monkeypatch.setattr(editor, "remake", fail_once)
    c = make_client(web_library, tmp_path, allow=[archive])
    started = c.post("/api/projects", data={"path": str(archive / "ccby_zwm_tears_of_steel_10s.mp4")}).json()
    pid, deadline = started["project"], time.time() + 60
    while c.get(f"/api/jobs/{started['job']}").json()["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    p = c.get(f"/api/projects/{pid}").json()
    assert not p["ready"] and p["job"] is None and "disk filled up" in p["match_error"]
    # Edits and renders wait for a matching: they said "keeps no analysis... start a new remake".
    for path, body in (("rematch", {"seed": 1}), ("split", {"frame": 10}), ("render", {"side_by_side": False}),
                       ("shots/0/more", {})):
        r = c.post(f"/api/projects/{pid}/{path}", json=body)
        assert r.status_code == 409 and "not matched yet" in r.json()["detail"] and "retry" in r.json()["detail"], r.text

    retried = c.post(f"/api/projects/{pid}/retry", json={})
    assert retried.status_code == 200, retried.text
    wait_job(c, retried.json()["job"])
    p = c.get(f"/api/projects/{pid}").json()
    assert p["ready"] and len(p["shots"]) >= 2 and p["match_error"] is None and len(calls) == 2
    again = c.post(f"/api/projects/{pid}/retry", json={})
    assert again.status_code == 409 and "already matched" in again.json()["detail"]
    assert c.post("/api/projects/aaaaaaaaaaaa/retry", json={}).status_code == 404


# -- footage indexed while the server runs --------------------------------------------------------
def test_footage_indexed_while_serving_shows_without_a_restart(web_library, archive, tmp_path):
    import shutil
    import subprocess
    import sys

    lib = tmp_path / "library"
    shutil.copytree(web_library, lib)  # the session's library stays as the other tests know it
    c = make_client(lib, tmp_path / "work", watch_seconds=0.2)
    new = archive / "pd_muybridge_buffalo_running.mp4"
    assert new.name not in [v["name"] for v in c.get("/api/library").json()["videos"]]
    before = sum(g["size"] for g in c.get("/api/clusters").json()["groups"])
    with c.websocket_connect("/ws/mirror") as ws:  # opened before: its session must move to the new index
        ws.send_bytes(frame_jpeg(new, 5.0))
        assert ws.receive_json()["name"] != new.name
        proc = subprocess.run([sys.executable, "-m", "rereel", "index", str(new), "--library", str(lib)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        videos = c.get("/api/library").json()["videos"]
        vid = next(v["id"] for v in videos if v["name"] == new.name)
        shot = c.get(f"/api/videos/{vid}/shots").json()["shots"][0]["shot_id"]
        total = c.get("/api/library").json()["shots"]
        deadline, seen = time.time() + 120, {}
        while time.time() < deadline and len(seen) < 3:
            time.sleep(0.5)
            similar = c.get(f"/api/shots/{shot}/similar?top=3")
            assert similar.status_code in (200, 400), similar.text  # 400 "try again" until the index is rebuilt
            if similar.status_code == 200:
                seen["similar"] = True
            if sum(g["size"] for g in c.get("/api/clusters").json()["groups"]) == total:
                seen["clusters"] = True
            ws.send_bytes(frame_jpeg(new, 5.0))
            if ws.receive_json().get("name") == new.name:
                seen["mirror"] = True
        assert seen == {"similar": True, "clusters": True, "mirror": True}, seen
    assert total > before
    up = c.post("/api/search", files={"file": ("b.jpg", frame_jpeg(new, 3.0), "image/jpeg")}).json()
    assert up["hits"][0]["name"] == new.name


# -- stopping the server ----------------------------------------------------------------------------
def test_a_server_stopped_mid_render_stops_its_job_and_leaves_no_partial_file(web_library, media, tmp_path):
    """`kill` during a render: the job stops, its partial file is removed, the server exits 0. (It
    aborted, exit 134, or left `.remake.mp4.PID.partial.mp4`.) A restart removes what a server
    killed outright left (a dead pid's partial file), and keeps a live process's."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from browser import free_port

    work = tmp_path / "work"
    old = work / "projects" / "0123456789ab"
    old.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = old / f".remake.mp4.{int(gone.stdout)}.partial.mp4"  # that process has exited
    live = old / f".remake.mp4.{os.getpid()}.partial.mp4"  # this one has not
    recent = old / f".remake.otio.{int(gone.stdout)}.1.tmp"  # written a moment ago: maybe another machine's
    for f in (dead, live, recent):
        f.write_bytes(b"x")
    hour_ago = time.time() - 3600
    for f in (dead, live):
        os.utime(f, (hour_ago, hour_ago))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        proc = subprocess.Popen([sys.executable, "-m", "rereel", "serve", "--library", str(web_library),
                                 "--port", str(port), "--workdir", str(work), "--allow", str(media / "trailers")],
                                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def call(path: str, data: bytes | None = None, kind: str = "application/json") -> dict:
            req = urllib.request.Request(base + path, data=data, headers={"Content-Type": kind} if data else {})
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)

        deadline = time.time() + 60
        while True:
            try:
                call("/api/health")
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, log.read_text()
                time.sleep(0.2)
        assert not dead.exists() and live.exists() and recent.exists()

        form = f"--b\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n{media / 'trailers' / TARGET}\r\n--b--\r\n"
        started = call("/api/projects", form.encode(), "multipart/form-data; boundary=b")
        pid, deadline = started["project"], time.time() + 300
        while (job := call(f"/api/jobs/{started['job']}"))["state"] == "running" and time.time() < deadline:
            time.sleep(0.3)
        assert job["state"] == "done", job
        render = call(f"/api/projects/{pid}/render", b'{"side_by_side": false}')["job"]
        while (job := call(f"/api/jobs/{render}"))["done"] < 10 and job["state"] == "running" and time.time() < deadline:
            time.sleep(0.1)
        assert job["state"] == "running", job  # stopped mid-render, not after it
        folder = work / "projects" / pid
        assert any(p.name.endswith(".partial.mp4") for p in folder.iterdir())  # the render is writing
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    said = log.read_text()
    assert "stopping 1 running job (render)" in said and "FATAL" not in said and "terminate" not in said, said
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert not (folder / "remake.mp4").exists()  # a render stopped half way is no render


def test_a_failed_match_of_an_upload_names_the_upload(client, media):
    """An upload that fails part way (here cut in half: it probes, then ends early) is named as the
    user sent it; the error named the server's copy (WORKDIR/projects/ID/target.webm)."""
    data = (media / "trailers" / TARGET).read_bytes()
    r = client.post("/api/projects", files={"file": ("my trailer.webm", data[: len(data) // 2], "video/webm")})
    assert r.status_code == 200, r.text
    deadline = time.time() + 120
    while (job := client.get(f"/api/jobs/{r.json()['job']}").json())["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert job["state"] == "failed" and job["error"].startswith("my trailer.webm: "), job
    assert "projects" not in job["error"] and "target.webm" not in job["error"], job
