"""Remake editor routes: choose a target, match it (a job), swap suggestions, render (a job), download."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from rereel.errors import MediaError, RereelError
from rereel.explore.pairs import timeline_pair
from rereel.library import Library
from rereel.match.choose import MatchOptions
from rereel.media import VIDEO_EXTENSIONS, find_videos, probe
from rereel.render import render_timeline
from rereel.pipeline import remake
from rereel.timeline import KEY
from rereel.web.app import not_found, state_of
from rereel.web.jobs import Job, StagesAdapter
from rereel.web.projects import RENDERS, TIMELINE, project_meta
from rereel.web.security import inside, printable, refuse, save_upload

router = APIRouter()
MAX_TARGETS = 500  # listed for the picker (an API client may still post any path inside --allow)


class Choice(BaseModel):
    shot: int
    suggestion: int


class RenderRequest(BaseModel):
    side_by_side: bool = False


def _folder(request: Request, pid: str) -> Path:
    try:
        return state_of(request).projects.folder(pid)
    except KeyError:
        raise not_found(f"project {pid}") from None


@router.get("/api/targets")
def targets(request: Request):
    """Videos in the folders the server was told to allow (`--allow`), for the target picker."""
    allow = state_of(request).settings.allow
    found = find_videos([a for a in allow if a.is_dir()])[:MAX_TARGETS]
    return {"allow": [str(a) for a in allow], "videos": [str(p) for p in found]}


@router.post("/api/projects")
def create_project(request: Request, file: UploadFile | None = None, path: str | None = Form(None),
                   suggestions: int = Form(5)):
    """Start a remake of an uploaded video, or of a video inside an allowed folder."""
    state = state_of(request)
    if (file is None) == (path is None):
        raise refuse(400, "send either a video file or a path (one of the two)")
    if not 1 <= suggestions <= 20:
        raise refuse(400, f"suggestions {suggestions}: between 1 and 20")
    pid, folder = state.projects.create()
    try:
        if file is not None:
            target = save_upload(file, folder / "target", int(state.settings.max_upload_mb * 1e6), VIDEO_EXTENSIONS)
            name = Path(file.filename or "upload").name
        else:
            if "\0" in path:  # no file name holds one; the OS calls would raise ValueError
                raise refuse(400, f"{path!r}: a path cannot hold a NUL byte")
            target = Path(path)
            if not state.settings.allow or not inside(target, state.settings.allow):
                raise refuse(403, f"{path}: not inside a folder this server allows (start it with --allow FOLDER)")
            if not target.is_file():
                raise refuse(404, f"{path}: no such file")
            target, name = target.resolve(), target.name
        try:
            probe(target)  # not a video: one line now, not a failed job later
        except MediaError as e:
            raise refuse(400, f"{printable(name)}: {e.reason}") from None  # the user's name for it, not our folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    state.projects.save_meta(folder, project_meta(pid, name, target, file is not None, suggestions))
    try:
        job = _start_match(state, pid, folder, target, suggestions)
    except RereelError:  # too many jobs running: no project left behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"project": pid, "job": job.id}


@router.post("/api/projects/{pid}/retry")
def retry(request: Request, pid: str):
    """Match a project again whose matching failed (or never finished: a restart stops its job)."""
    state = state_of(request)
    folder = _folder(request, pid)
    if state.jobs.running(pid):
        raise refuse(409, f"project {pid} is busy; wait for its job to finish")
    if (folder / TIMELINE).exists():
        raise refuse(409, f"project {pid} is already matched; nothing to retry")
    meta = state.projects.meta(pid)
    target = Path(meta["target"])
    if not target.is_file():
        raise refuse(404, f"{meta['name']}: the target is gone ({target}: no such file)")
    job = _start_match(state, pid, folder, target, int(meta.get("suggestions", 5)))
    return {"project": pid, "job": job.id}


def _start_match(state, pid: str, folder: Path, target: Path, suggestions: int) -> Job:
    return state.jobs.start("remake", lambda job: _match(state, folder, target, suggestions, job), project=pid)


def _match(state, folder: Path, target: Path, suggestions: int, job: Job) -> dict:
    # Its own connection: the job thread must not hold the shared one (and its lock) for minutes.
    with Library(state.settings.library) as lib:
        result = remake(target, lib, [], timelines=[folder / TIMELINE], opts=MatchOptions(suggestions=suggestions),
                        stages=StagesAdapter(job))
    thumbs = folder / "thumbs"
    thumbs.mkdir(exist_ok=True)
    for shot in result.shots:  # made in the analysis's own decode pass: the target is not read again
        (thumbs / f"{shot.idx}.jpg").write_bytes(shot.thumb)
    matched = sum(1 for m in result.matches if m.chosen is not None)
    return {"shots": len(result.matches), "matched": matched}


@router.get("/api/projects")
def projects(request: Request):
    return {"projects": state_of(request).projects.all()}


@router.get("/api/projects/{pid}")
def project(request: Request, pid: str):
    state = state_of(request)
    _folder(request, pid)
    out = state.projects.describe(pid)
    job = state.jobs.running(pid)
    out["job"] = job.to_dict() if job else None
    failed = state.jobs.latest(pid, "remake")
    # Why the last matching failed, for the page's retry; unknown after a restart (jobs live in memory).
    out["match_error"] = failed.error if failed and failed.state == "failed" and not out["ready"] else None
    return out


@router.post("/api/projects/{pid}/choose")
def choose(request: Request, pid: str, choice: Choice):
    state = state_of(request)
    _folder(request, pid)
    if state.jobs.running(pid):
        raise refuse(409, f"project {pid} is busy (matching or rendering); swap when it has finished")
    state.projects.choose(pid, choice.shot, choice.suggestion)
    return state.projects.describe(pid)


@router.post("/api/projects/{pid}/delete")
def delete(request: Request, pid: str):
    state = state_of(request)
    _folder(request, pid)
    if state.jobs.running(pid):
        raise refuse(409, f"project {pid} is busy; delete it when its job has finished")
    state.projects.delete(pid)
    return {"deleted": pid}


@router.post("/api/projects/{pid}/render")
def render(request: Request, pid: str, body: RenderRequest):
    state = state_of(request)
    folder = _folder(request, pid)
    if state.jobs.running(pid):
        raise refuse(409, f"project {pid} is busy; wait for its job to finish")
    tl = state.projects.timeline(pid)
    out = folder / RENDERS[body.side_by_side]

    def work(job: Job) -> dict:
        job.stage_start("rendering (frames)", int(tl.metadata[KEY]["target"]["frames"]))
        render_timeline(tl, [(out, body.side_by_side)], fit=tl.metadata[KEY].get("fit", "cover"),
                        on_frame=lambda k, total: job.advance(k))
        return {"file": out.name}

    job = state.jobs.start("render", work, project=pid)
    return {"project": pid, "job": job.id}


@router.get("/api/jobs/{job_id}")
def job_status(request: Request, job_id: str):
    job = state_of(request).jobs.get(job_id)
    if job is None:
        raise not_found(f"job {job_id}")
    return job.to_dict()


@router.get("/api/projects/{pid}/files/{name}")
def download(request: Request, pid: str, name: str, download: bool = False):
    _folder(request, pid)
    try:
        path = state_of(request).projects.download(pid, name)
    except KeyError:
        raise not_found(f"{name} of project {pid}") from None
    media = {".mp4": "video/mp4", ".otio": "application/json", ".edl": "text/plain", ".xml": "application/xml",
             ".txt": "text/plain; charset=utf-8"}
    return FileResponse(path, media_type=media[path.suffix], filename=name if download else None,
                        headers={"Cache-Control": "no-cache"})


@router.get("/api/projects/{pid}/shots/{index}/thumb.jpg")
def target_thumb(request: Request, pid: str, index: int):
    path = _folder(request, pid) / "thumbs" / f"{index}.jpg"
    if not path.exists():
        raise not_found(f"thumbnail of target shot {index}")
    return FileResponse(path, media_type="image/jpeg")


@router.get("/api/projects/{pid}/shots/{index}/preview.mp4")
def pair_preview(request: Request, pid: str, index: int):
    """The target shot (left) beside its chosen archive segment (right), as long as the target shot."""
    state = state_of(request)
    _folder(request, pid)
    pair = timeline_pair(state.projects.timeline(pid), index)
    if pair is None:
        raise not_found(f"target shot {index} of project {pid}")
    shot, match = pair  # a short archive piece is held in the remake; the preview just ends sooner
    try:
        return FileResponse(state.previews.clip(shot, pair=match, width=320, seconds=30.0), media_type="video/mp4")
    except RereelError as e:
        raise refuse(404, str(e)) from None
