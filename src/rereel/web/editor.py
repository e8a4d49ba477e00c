"""Remake editor routes: choose a target, match it (a job), edit the remake (swap, lock, re-match, more
suggestions, fill or black out, split and join, undo and redo), render (a job), download."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from rereel.errors import MediaError, RereelError
from rereel.explore.pairs import timeline_pair
from rereel.library import Library
from rereel.match.choose import MatchOptions
from rereel.match.score import Weights
from rereel.media import VIDEO_EXTENSIONS, find_videos, probe
from rereel.credits import write_credits
from rereel.render import render_timeline
from rereel.pipeline import ANALYSIS, analysed_shots, load_analysis, more_suggestions, rematch, remake
from rereel.target_cache import save_analysis
from rereel.timeline import KEY
from rereel.timeline.edit import join, set_black, set_locked, shot_at_frame, shot_info, split
from rereel.web.app import not_found, state_of
from rereel.web.jobs import Job, StagesAdapter
from rereel.web.projects import RENDERS, TIMELINE, matched_with, project_meta
from rereel.web.security import inside, printable, refuse, save_upload

router = APIRouter()
MAX_TARGETS = 500  # listed for the picker (an API client may still post any path inside --allow)


class Choice(BaseModel):
    shot: int
    suggestion: int


class RenderRequest(BaseModel):
    side_by_side: bool = False


class Lock(BaseModel):
    locked: bool = True


class Rematch(BaseModel):
    seed: int = Field(0, ge=0, le=2**32 - 1)
    semantic: float = Field(Weights.semantic, ge=0, le=100)
    composition: float = Field(Weights.composition, ge=0, le=100)
    colour: float = Field(Weights.colour, ge=0, le=100)


class Split(BaseModel):
    frame: int  # the target frame the new shot starts on (the playhead's)


def _folder(request: Request, pid: str) -> Path:
    try:
        return state_of(request).projects.folder(pid)
    except KeyError:
        raise not_found(f"project {pid}") from None


@router.get("/api/targets")
def targets(request: Request):
    """Videos in the folders the server was told to allow (`--allow`), for the target picker."""
    allow = state_of(request).settings.allow
    # Only what a remake of it would accept: a link leading out of the folders is not offered.
    found = [p for p in find_videos([a for a in allow if a.is_dir()]) if inside(p, allow)][:MAX_TARGETS]
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
            target = save_upload(file, folder / "target", int(state.settings.max_upload_mb * 1e6), VIDEO_EXTENSIONS).absolute()
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
    name = state.projects.meta(pid)["name"]
    return state.jobs.start("remake", lambda job: _match(state, folder, target, name, suggestions, job), project=pid)


def _match(state, folder: Path, target: Path, name: str, suggestions: int, job: Job) -> dict:
    # Its own connection: the job thread must not hold the shared one (and its lock) for minutes.
    try:
        with Library(state.settings.library) as lib:
            result = remake(target, lib, [], timelines=[folder / TIMELINE], opts=MatchOptions(suggestions=suggestions),
                            stages=StagesAdapter(job), name=name if target.is_relative_to(folder) else None)
    except RereelError as e:
        if target.is_relative_to(folder) and str(target) in str(e):  # an upload: the user's name, not our copy's
            raise RereelError(str(e).replace(str(target), printable(name))) from None
        raise
    save_analysis(result.shots, folder / ANALYSIS)  # for matching again (split, join, re-match) without decoding
    thumbs = folder / "thumbs"
    thumbs.mkdir(exist_ok=True)
    for shot in result.shots:  # made in the analysis's own decode pass: the target is not read again
        (thumbs / f"{shot.idx}.jpg").write_bytes(shot.thumb)
    matched = sum(1 for m in result.matches if m.chosen is not None)
    # missing: archive videos moved or deleted since indexing, left out of the suggestions
    return {"shots": len(result.matches), "matched": matched, "missing": len(result.missing)}


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


def _idle(request: Request, pid: str):
    """The state, for an edit of project `pid`: refused while a job runs, or before it is matched."""
    state = state_of(request)
    folder = _folder(request, pid)
    if state.jobs.running(pid):
        raise refuse(409, f"project {pid} is busy (matching or rendering); edit it when that has finished")
    if not (folder / TIMELINE).exists():  # its first matching failed or was stopped: `retry` matches it
        raise refuse(409, f"project {pid} is not matched yet (its matching failed or was stopped); retry it, then edit")
    return state


def _seen(request: Request) -> str | None:
    """The timeline version the page showed when it asked for a change (If-Match: its
    `revision`); None from a client that sends none (the change is made on what is saved)."""
    tag = (request.headers.get("if-match") or "").strip().removeprefix("W/").strip('"')
    return tag if tag and tag != "*" else None  # "*": any version will do (HTTP's meaning)


def _done(state, pid: str, message: str) -> dict:
    return state.projects.describe(pid) | {"message": message}


@router.post("/api/projects/{pid}/choose")
def choose(request: Request, pid: str, choice: Choice):
    """Swap suggestion `suggestion` (0-based) into shot `shot` (0-based); on a black shot, this fills it."""
    state = _idle(request, pid)
    state.projects.choose(pid, choice.shot, choice.suggestion, _seen(request))
    return _done(state, pid, f"shot {choice.shot + 1}: suggestion {choice.suggestion + 1} swapped in")


@router.post("/api/projects/{pid}/undo")
def undo(request: Request, pid: str):
    state = _idle(request, pid)
    return _done(state, pid, f"undone: {state.projects.undo(pid, expected=_seen(request))}")


@router.post("/api/projects/{pid}/redo")
def redo(request: Request, pid: str):
    state = _idle(request, pid)
    return _done(state, pid, f"redone: {state.projects.undo(pid, forward=True, expected=_seen(request))}")


@router.post("/api/projects/{pid}/shots/{index}/lock")
def lock(request: Request, pid: str, index: int, body: Lock):
    state = _idle(request, pid)
    word = "lock" if body.locked else "unlock"
    state.projects.edit(pid, f"{word} shot {index + 1}", lambda tl: set_locked(tl, index, body.locked), _seen(request))
    return _done(state, pid, f"shot {index + 1} {word}ed" + (": re-matching leaves it as it is" if body.locked else ""))


@router.post("/api/projects/{pid}/shots/{index}/black")
def black(request: Request, pid: str, index: int):
    state = _idle(request, pid)
    state.projects.edit(pid, f"set shot {index + 1} to black", lambda tl: set_black(tl, index), _seen(request))
    return _done(state, pid, f"shot {index + 1} is black again; its suggestions stay")


def _analysis(state, pid: str):
    return load_analysis(state.projects.folder(pid) / ANALYSIS)


def _options(state, pid: str, tl=None, **kw) -> MatchOptions:
    """Matching options for project `pid`; with its timeline `tl`, the seed and weights it was last
    re-matched with, so that split pieces, joins and more suggestions rank as the rest did."""
    if tl is not None:
        last = matched_with(tl)
        kw.setdefault("seed", last.pop("seed"))
        if len(last) == 3 and "weights" not in kw:  # all three recorded
            kw["weights"] = Weights(**last)
    return MatchOptions(suggestions=int(state.projects.meta(pid).get("suggestions", 5)), **kw)


@router.post("/api/projects/{pid}/rematch")
def rematch_unlocked(request: Request, pid: str, body: Rematch):
    """Match every unlocked shot again, with this seed and these weights; locked shots keep their choice."""
    state = _idle(request, pid)
    weights = Weights(body.semantic, body.composition, body.colour)
    if sum(vars(weights).values()) <= 0:
        raise refuse(400, "weights: meaning, layout and colour are all 0; give at least one some weight")
    analysis = _analysis(state, pid)
    opts = _options(state, pid, seed=body.seed, weights=weights.normalised())

    def change(tl):
        shots = [i["target_shot"] for i in shot_info(tl) if not i.get("locked")]
        if not shots:
            raise RereelError("every shot is locked; unlock one to re-match it")
        with state.lock:  # the library's shared connection
            changed = rematch(tl, state.lib, analysis, shots, opts)
        meta = tl.metadata[KEY]
        meta["seed"], meta["weights"] = body.seed, vars(opts.weights)
        return changed

    changed = state.projects.edit(pid, f"re-match unlocked shots (seed {body.seed})", change, _seen(request))
    return _done(state, pid, f"re-matched {len(changed)} unlocked shots with seed {body.seed}")


@router.post("/api/projects/{pid}/shots/{index}/more")
def more(request: Request, pid: str, index: int):
    state = _idle(request, pid)
    analysis = _analysis(state, pid)

    def change(tl):
        if not 0 <= index < len(shot_info(tl)):
            raise RereelError(f"there is no shot {index + 1}: the remake has shots 1 to {len(shot_info(tl))}")
        with state.lock:
            return more_suggestions(tl, state.lib, analysis, index, _options(state, pid, tl))

    added = state.projects.edit(pid, f"more suggestions for shot {index + 1}", change, _seen(request))
    return _done(state, pid, f"shot {index + 1}: {added} more suggestions" if added
                 else f"shot {index + 1}: the archive has no other suggestions for it")


@router.post("/api/projects/{pid}/split")
def split_at(request: Request, pid: str, body: Split):
    """Cut the target shot under frame `frame` there; both pieces are matched, nothing else is."""
    state = _idle(request, pid)
    analysis = _analysis(state, pid)

    def change(tl):
        shot = shot_at_frame(tl, body.frame)
        pieces = split(tl, shot, body.frame)
        with state.lock:
            rematch(tl, state.lib, analysis, list(pieces), _options(state, pid, tl))
        return shot

    shot = state.projects.edit(pid, f"split at frame {body.frame}", change, _seen(request))
    return _done(state, pid, f"shot {shot + 1} split in two (shots {shot + 1} and {shot + 2}); the shots after it "
                             "are numbered one up")


@router.post("/api/projects/{pid}/shots/{index}/join")
def join_next(request: Request, pid: str, index: int):
    """Join shot `index` with the shot after it; the joined shot is matched, nothing else is."""
    state = _idle(request, pid)
    analysis = _analysis(state, pid)

    def change(tl):
        shot = join(tl, index)
        with state.lock:
            rematch(tl, state.lib, analysis, [shot], _options(state, pid, tl))

    state.projects.edit(pid, f"join shots {index + 1} and {index + 2}", change, _seen(request))
    return _done(state, pid, f"shots {index + 1} and {index + 2} joined; the shots after them are numbered one down")


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
    state = _idle(request, pid)
    folder = _folder(request, pid)
    tl, version = state.projects.snapshot(pid)  # between edits; an edit after it makes this render out of date
    out = folder / RENDERS[body.side_by_side]

    def work(job: Job) -> dict:
        job.stage_start("rendering (frames)", int(tl.metadata[KEY]["target"]["frames"]))
        render_timeline(tl, [(out, body.side_by_side)], fit=tl.metadata[KEY].get("fit", "cover"),
                        on_frame=lambda k, total: job.advance(k))
        if not body.side_by_side:  # the credits of this video, from the timeline it was rendered from
            write_credits(tl, out)
        state.projects.rendered(pid, out.name, version)
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


PLAYABLE = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogg": "video/ogg", ".ogv": "video/ogg",
            ".mov": "video/quicktime"}


@router.get("/api/projects/{pid}/target")
def target_media(request: Request, pid: str):
    """The project's target itself (byte ranges served), for the monitor's sound: the remake's
    soundtrack is the target's. Only containers a browser plays."""
    state = state_of(request)
    _folder(request, pid)
    target = Path(state.projects.meta(pid)["target"])
    kind = PLAYABLE.get(target.suffix.lower())
    if kind is None:
        raise refuse(404, f"{target.name}: a browser cannot play {target.suffix or 'this'} files; the monitor is silent")
    if not target.is_file():
        raise refuse(404, f"{target.name}: the target is gone")
    return FileResponse(target, media_type=kind)


@router.get("/api/projects/{pid}/shots/{index}/thumb.jpg")
def target_thumb(request: Request, pid: str, index: int):
    """The analysis's thumbnail of a target shot; a shot made by a split or a join has none, so its
    middle frame is decoded (and cached)."""
    state = state_of(request)
    folder = _folder(request, pid)
    tl = state.projects.timeline(pid) if (folder / TIMELINE).exists() else None  # kept: OTIO frees items with it
    infos = shot_info(tl) if tl is not None else []
    if not 0 <= index < len(infos):
        raise not_found(f"thumbnail of target shot {index + 1}")
    info = {k: infos[index][k] for k in ("target_start_frame", "target_end_frame", "target_start", "target_end")}
    analysed = folder / "thumbs"
    if (folder / ANALYSIS).exists():
        for s in analysed_shots(folder / ANALYSIS):
            if (s["start_frame"], s["end_frame"]) == (info["target_start_frame"], info["target_end_frame"]):
                return FileResponse(analysed / f"{s['idx']}.jpg", media_type="image/jpeg")
    elif (analysed / f"{index}.jpg").exists():  # a project from before the editor could cut
        return FileResponse(analysed / f"{index}.jpg", media_type="image/jpeg")
    target = Path(tl.metadata[KEY]["target"]["path"])
    mid = (float(info["target_start"]) + float(info["target_end"])) / 2
    try:
        return Response(state.previews.frame(target, mid, width=320), media_type="image/jpeg")
    except (FileNotFoundError, RereelError) as e:
        raise refuse(404, f"thumbnail of shot {index + 1}: {e}") from None


@router.get("/api/projects/{pid}/shots/{index}/preview.mp4")
def pair_preview(request: Request, pid: str, index: int):
    """The target shot (left) beside its chosen archive segment (right), as long as the target shot."""
    state = state_of(request)
    _folder(request, pid)
    pair = timeline_pair(state.projects.timeline(pid), index)
    if pair is None:
        raise not_found(f"target shot {index + 1} of project {pid}")
    shot, match = pair  # a short archive piece is held in the remake; the preview just ends sooner
    # As long as the target shot, however long: the program monitor plays these one after another.
    seconds = min(600.0, max(30.0, shot.end - shot.start + 1.0))  # a long take, within reason
    try:
        return FileResponse(state.previews.clip(shot, pair=match, width=320, seconds=seconds), media_type="video/mp4")
    except RereelError as e:
        raise refuse(404, str(e)) from None
