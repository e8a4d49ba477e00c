"""Archive browser routes: videos and shots, thumbnails and hover previews, groups, search."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path as PathParam, Query as QueryParam, Request, UploadFile
from fastapi.responses import FileResponse, Response

from rereel.errors import MediaError
from rereel.explore.footage import Footage, shot_footage
from rereel.explore.query import Query
from rereel.media.image import IMAGE_EXTENSIONS
from rereel.media.probe import displayed_size
from rereel.explore.similar import similar_shots
from rereel.web.app import finite, not_found, state_of
from rereel.web.security import printable, save_upload



def _watch(request: Request) -> None:
    state_of(request).watch()  # footage indexed since start-up: picked up in the background


router = APIRouter(dependencies=[Depends(_watch)])
# SQLite's integers are 64-bit: a larger id would raise OverflowError in the query, not "not found".
ROW_ID = {"ge": 0, "le": 2**63 - 1}
ShotId = Annotated[int, PathParam(**ROW_ID)]
IMMUTABLE = {"Cache-Control": "max-age=86400"}  # a shot's pixels never change under the same id

# Plain-language hints for scores, (strong from, fair from) per kind of score. Measured on the demo
# library (35 videos, 91 shots, effnet-lite0), by looking and by a proxy for "alike":
# - "example" (shot / image queries, centred cosines): among each shot's 12 nearest, a hit came
#   from the query's own video 94-100 % of the time at >= 0.5, 74 % at 0.3-0.5, <= 52 % below.
# - "words" (ImageNet class directions, plain inner products): the right footage for cockatoo,
#   tractor scored 0.21-0.23; wrong hits (fountain, bicycle -> Tears of Steel) 0.15-0.17; the
#   0.07-0.14 the issue saw were mostly chance. The fair band is the least sure.
# - "mirror" (plain cosines of one frame): a frame of an indexed video scored 0.81-0.95, frames of
#   the trailers the library does not hold 0.44-0.57.
# Word queries through another encoder (CLIP) are unmeasured: they get no hint rather than a guess.
MATCH_HINTS = {"example": (0.5, 0.3), "words": (0.2, 0.15), "mirror": (0.75, 0.6)}


def match_hint(score: float, kind: str | None) -> str | None:
    """'strong', 'fair' or 'weak' for a score of `kind` (MATCH_HINTS); None for a kind not measured."""
    if kind not in MATCH_HINTS:
        return None
    strong, fair = MATCH_HINTS[kind]
    return "strong" if score >= strong else "fair" if score >= fair else "weak"


def hit_json(f: Footage, score: float | None = None, *, fps: float | None = None, kind: str | None = None) -> dict:
    """A shot for the pages; `fps`, its video's rate, lets them write timecode as the editor does."""
    out = {"shot_id": f.shot_id, "video_id": f.video_id, "name": f.name, "start": round(f.start, 3),
           "end": round(f.end, 3), "fps": fps}
    if score is not None:
        out["score"] = round(score, 4)
        out["match"] = match_hint(score, kind)
    return out


def video_rates(catalog, video_ids) -> dict[int, float]:
    """{video id: frame rate} of the given videos (one query per video: a page shows a dozen)."""
    rates = {}
    for vid in set(video_ids):
        row = catalog.video(vid) if vid is not None else None
        if row is not None:
            rates[vid] = float(row["fps"])
    return rates


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
            {"id": v["id"], "name": v["name"], "duration": v["duration"],
             **dict(zip(("width", "height"), displayed_size(v["width"], v["height"], v["rotation"], v["sar"]))),
             "fps": v["fps"], "shots": v["shot_count"]}  # counted in the one query, not one query a video
            for v in state.lib.catalog.videos()
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
    fps = video["fps"]
    return {"video": {"id": video["id"], "name": video["name"], "duration": video["duration"], "fps": fps},
            "shots": [{"shot_id": s["id"], "video_id": video_id, "name": video["name"], "index": s["idx"],
                       "start": s["start"], "end": s["end"], "fps": fps} for s in shots]}


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
        rates = video_rates(state.lib.catalog, [footage.video_id, *(h.footage.video_id for h in hits)])
    return {"query": hit_json(footage, fps=rates.get(footage.video_id)),
            "hits": [hit_json(h.footage, h.score, fps=rates.get(h.footage.video_id), kind="example") for h in hits]}


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
            try:
                query = state.resolver.image(path)
            except MediaError as e:  # named as the person sent it, not by the server's temporary copy
                name = Path(file.filename or "").name or "the image"  # a name of '..' has no final part
                raise MediaError(printable(name), e.reason) from None
            query.description = file.filename or "image"
            return _results(state, query, top)


def _results(state, query: Query, top: int) -> dict:
    hits = similar_shots(state.lib, query, max(1, min(top, 100)))
    rates = video_rates(state.lib.catalog, [h.footage.video_id for h in hits])
    # Word scores are only measured for the default encoder's class directions (MATCH_HINTS).
    kind = "example" if query.kind != "words" else "words" if query.classes else None
    return {"query": query.description, "kind": query.kind,
            "classes": [c.name for c in query.classes] if query.classes else [],
            "hits": [hit_json(h.footage, h.score, fps=rates.get(h.footage.video_id), kind=kind) for h in hits]}


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
        rates = video_rates(lib.catalog, [f.video_id for g in groups for f in g.shown])
    return [{"group": g.number, "size": len(g.ordered), "shots": [hit_json(f, fps=rates.get(f.video_id)) for f in g.shown]}
            for g in groups]


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
