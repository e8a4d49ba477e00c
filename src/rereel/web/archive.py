"""Archive browser routes: videos and shots, thumbnails and hover previews, groups, search."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path as PathParam, Query as QueryParam, Request, UploadFile
from fastapi.responses import FileResponse, Response

from rereel.explore.footage import Footage, shot_footage
from rereel.explore.query import Query
from rereel.media.image import IMAGE_EXTENSIONS
from rereel.explore.similar import similar_shots
from rereel.web.app import finite, not_found, state_of
from rereel.web.security import save_upload



def _watch(request: Request) -> None:
    state_of(request).watch()  # footage indexed since start-up: picked up in the background


router = APIRouter(dependencies=[Depends(_watch)])
# SQLite's integers are 64-bit: a larger id would raise OverflowError in the query, not "not found".
ROW_ID = {"ge": 0, "le": 2**63 - 1}
ShotId = Annotated[int, PathParam(**ROW_ID)]
IMMUTABLE = {"Cache-Control": "max-age=86400"}  # a shot's pixels never change under the same id


def hit_json(f: Footage, score: float | None = None) -> dict:
    out = {"shot_id": f.shot_id, "video_id": f.video_id, "name": f.name, "start": round(f.start, 3),
           "end": round(f.end, 3)}
    if score is not None:
        out["score"] = round(score, 4)
    return out


def _footage(request: Request, shot_id: int) -> Footage:
    state = state_of(request)
    with state.lock:
        if state.lib.catalog.shot(shot_id) is None:
            raise not_found(f"shot {shot_id}")
        return shot_footage(state.lib.catalog, shot_id)


@router.get("/api/library")
def library(request: Request):
    state = state_of(request)
    with state.lock:
        videos = [
            {"id": v["id"], "name": v["name"], "duration": v["duration"], "width": v["width"], "height": v["height"],
             "shots": n}
            for v, n in ((v, len(state.lib.catalog.shots(v["id"]))) for v in state.lib.catalog.videos())
        ]
        return {**state.lib.info(), "videos": videos}


@router.get("/api/videos/{video_id}/shots")
def video_shots(request: Request, video_id: Annotated[int, PathParam(**ROW_ID)]):
    state = state_of(request)
    with state.lock:
        video = state.lib.catalog.video(video_id)
        if video is None:
            raise not_found(f"video {video_id}")
        shots = state.lib.catalog.shots(video_id)
    return {"video": {"id": video["id"], "name": video["name"], "duration": video["duration"]},
            "shots": [{"shot_id": s["id"], "video_id": video_id, "name": video["name"], "index": s["idx"],
                       "start": s["start"], "end": s["end"]} for s in shots]}


@router.get("/api/shots/{shot_id}/thumb.jpg")
def thumbnail(request: Request, shot_id: ShotId):
    state = state_of(request)
    with state.lock:
        data = state.lib.catalog.thumbnail(shot_id)
    if data is None:
        raise not_found(f"shot {shot_id}")
    return Response(data, media_type="image/jpeg", headers=IMMUTABLE)


@router.get("/api/shots/{shot_id}/preview.mp4")
def preview(request: Request, shot_id: ShotId):
    footage = _footage(request, shot_id)
    return FileResponse(state_of(request).previews.clip(footage), media_type="video/mp4", headers=IMMUTABLE)


@router.get("/api/shots/{shot_id}/similar")
def similar(request: Request, shot_id: ShotId, top: int = 12):
    state = state_of(request)
    footage = _footage(request, shot_id)
    with state.lock:
        hits = similar_shots(state.lib, state.resolver.shot(shot_id), max(1, min(top, 100)))
    return {"query": hit_json(footage), "hits": [hit_json(h.footage, h.score) for h in hits]}


@router.get("/api/search")
def search_words(request: Request, q: str, top: int = 12):
    state = state_of(request)
    with state.lock:
        query = state.resolver.words(q)
        return _results(state, query, top)


@router.post("/api/search")
def search_image(request: Request, file: UploadFile = File(...), top: int = 12):
    state = state_of(request)
    with tempfile.TemporaryDirectory(dir=state.settings.workdir) as tmp:
        path = save_upload(file, Path(tmp) / "query", int(state.settings.max_image_mb * 1e6), IMAGE_EXTENSIONS)
        with state.lock:
            query = state.resolver.image(path)
            query.description = file.filename or "image"
            return _results(state, query, top)


def _results(state, query: Query, top: int) -> dict:
    hits = similar_shots(state.lib, query, max(1, min(top, 100)))
    return {"query": query.description, "kind": query.kind,
            "classes": [c.name for c in query.classes] if query.classes else [],
            "hits": [hit_json(h.footage, h.score) for h in hits]}


@router.get("/api/clusters")
def clusters(request: Request):
    """Groups of like shots, each shown as the 3x3 nearest its centre (as `rereel clusters` draws them)."""
    return {"groups": state_of(request).clusters()}


def compute_clusters(library: Path) -> list[dict]:
    """Group the library's shots. Run once per server in a thread of its own, with its own connection:
    choosing the number of groups takes tens of seconds on two cores, and the pages must not wait on it."""
    from rereel.explore.clustering import library_groups
    from rereel.library import Library

    with Library(library) as lib:
        _, groups = library_groups(lib.catalog)
    return [{"group": g.number, "size": len(g.ordered), "shots": [hit_json(f) for f in g.shown]} for g in groups]


@router.get("/api/frame")
def frame(request: Request, shot: Annotated[int, QueryParam(**ROW_ID)], t: float, w: int = 480):
    """A still of an indexed video at t seconds (the mirror's match): only videos the library holds."""
    footage = _footage(request, shot)
    with state_of(request).lock:
        duration = float(state_of(request).lib.catalog.video(footage.video_id)["duration"])
    finite("t", t, 0.0, duration)
    try:
        data = state_of(request).previews.frame(footage.path, t, max(64, min(w, 1280)))
    except FileNotFoundError as e:
        raise not_found(str(e)) from None
    return Response(data, media_type="image/jpeg", headers=IMMUTABLE)
