"""Live webcam routes: the mirror (camera frame -> nearest archive frame) and learning to see.

Both speak the same WebSocket rhythm: the page sends one JPEG, waits for the answer, then sends
the next. So frames go at the rate the server keeps up with, and latency never piles up in
queues. The model work runs in a worker thread (`asyncio.to_thread`), keeping the event loop free.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import time
from pathlib import Path

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from PIL import Image

from rereel.errors import RereelError
from rereel.explore.footage import Footage, decode_footage
from rereel.explore.gif import MAX_RATE, check_caption, make_gif
from rereel.explore.pairs import MATCH_FIT, side_by_side
from rereel.web.app import finite, not_found, state_of
from rereel.web.archive import ROW_ID, match_hint
from rereel.web.mirror import decode_jpeg
from rereel.media.image import even, jpeg
from rereel.web.security import printable, refuse

router = APIRouter()
GIF_NAME = re.compile(r"^reaction-[0-9a-f]{12}\.gif$")
MAX_GIF_FRAMES = 72  # six seconds at 12 fps
MAX_FRAME_BYTES = 2_000_000  # one webcam JPEG


# -- mirror -----------------------------------------------------------------------------------
@router.websocket("/ws/mirror")
async def mirror_socket(ws: WebSocket):
    state = state_of(ws)
    await ws.accept()
    try:
        try:
            mirror = await asyncio.to_thread(state.mirror)
        except RereelError as e:  # say why, rather than close with a bare 1011 the page retries forever
            await ws.send_json({"error": str(e), "fatal": True})
            await ws.close(code=1011)
            return
        session = mirror.session()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:  # a text message: say what is expected, and keep the connection
                await ws.send_json({"error": "the mirror takes webcam frames as binary JPEG messages, not text"})
                continue
            if len(data) > MAX_FRAME_BYTES:
                await ws.send_json({"error": f"frame of {len(data)} bytes is over {MAX_FRAME_BYTES}"})
                continue
            try:
                m = await asyncio.to_thread(_mirror_match, state, session, data)
            except RereelError as e:
                await ws.send_json({"error": str(e)})
                continue
            await ws.send_json(m)
    except WebSocketDisconnect:
        pass


def _mirror_match(state, session, data: bytes) -> dict:
    t0 = time.perf_counter()
    rgb = decode_jpeg(data)
    state.watch()
    with state.mirror_lock:  # the mirror's catalog connection (frame refinement and names)
        session.mirror = state.current_mirror()  # rebuilt when footage was indexed meanwhile
        m = session.match(rgb)
        row = session.mirror.catalog.shot(m.shot_id)
    t = float(m.time if m.time is not None else row["start"])
    # server_ms is this frame's whole stay in the worker (JPEG decode + embed + search + names);
    # the page measures its round trip around it, so the two are comparable frame by frame.
    return {"shot_id": m.shot_id, "video_id": row["video_id"], "name": row["name"], "time": round(t, 3),
            "fps": float(row["fps"]), "score": round(float(m.score), 4), "match": match_hint(float(m.score), "mirror"),
            "switched": bool(getattr(m, "switched", True)),
            "embed_ms": round(m.embed_ms, 2), "search_ms": round(m.search_ms, 2),
            "server_ms": round((time.perf_counter() - t0) * 1000, 2),
            "frame": f"/api/frame?shot={m.shot_id}&t={t:.2f}"}


@router.post("/api/mirror/gif")
def mirror_gif(request: Request, frames: list[UploadFile] = File(...), shot: int = Form(..., **ROW_ID), t: float = Form(...),
               fps: float = Form(10.0), caption: str | None = Form(None)):
    """A reaction GIF: the captured webcam frames beside the archive footage they matched, same length."""
    state = state_of(request)
    check_caption(caption)  # a 400 before any work: a long one cost minutes a frame to lay out
    if not 2 <= len(frames) <= MAX_GIF_FRAMES:
        raise refuse(400, f"send between 2 and {MAX_GIF_FRAMES} frames (got {len(frames)})")
    fps = min(max(finite("fps", fps, 0.0, 1000.0), 1.0), MAX_RATE)
    cam, w, h = [], 240, 0
    for f in frames:
        data = f.file.read(MAX_FRAME_BYTES + 1)
        if len(data) > MAX_FRAME_BYTES:
            raise refuse(413, f"{f.filename}: frame over {MAX_FRAME_BYTES} bytes")
        rgb = decode_jpeg(data)
        if max(rgb.shape[:2]) > 4 * min(rgb.shape[:2]):  # as the see socket: a sliver makes no GIF (60000 px high)
            raise refuse(400, f"{printable(f.filename or 'frame')}: webcam frame {rgb.shape[1]}x{rgb.shape[0]}: "
                              "sides more than 4:1 apart are refused")
        h = h or even(240 * rgb.shape[0] / rgb.shape[1])
        # Each frame shrunk as soon as it is decoded: 72 full-size frames would take gigabytes.
        cam.append(np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR)))
    cam = np.stack(cam)
    with state.lock:
        row = state.lib.catalog.shot(shot)
        video = row and state.lib.catalog.video(row["video_id"])
    if row is None:
        raise not_found(f"shot {shot}")
    t = finite("t", t, 0.0, float(video["duration"]))
    seconds = len(cam) / fps
    archive = decode_footage(Footage(Path(row["path"]), t, t + seconds, row["name"], shot),
                             fps, w, h, MATCH_FIT, seconds)
    pair = side_by_side(cam, archive)
    name = f"reaction-{secrets.token_hex(6)}.gif"
    result = make_gif(pair, fps, state.gifs / name, width=pair.shape[2], max_bytes=5_000_000, caption=caption or None)
    return {"gif": f"/api/gifs/{name}", "bytes": result.bytes, "width": result.width, "height": result.height,
            "frames": result.frames}


@router.get("/api/gifs/{name}")
def gif(request: Request, name: str):
    path = state_of(request).gifs / name
    if not GIF_NAME.match(name) or not path.exists():
        raise not_found(name)
    return FileResponse(path, media_type="image/gif")


# -- learning to see --------------------------------------------------------------------------
def see_models(folders: list[Path]) -> dict[str, Path]:
    """Trained learning-to-see models in the `--models` folders (a model folder, or folders of them)."""
    found: dict[str, Path] = {}
    for folder in folders:
        for cfg in [folder / "config.json", *sorted(folder.glob("*/config.json"))]:
            try:
                kind = json.loads(cfg.read_text()).get("kind")
            except (OSError, ValueError):
                continue
            if kind == "see" and (cfg.parent / "checkpoint.pt").exists():
                found.setdefault(cfg.parent.name, cfg.parent)
    return found


@router.get("/api/see/models")
def models(request: Request):
    found = see_models(state_of(request).settings.models)
    out = []
    for name, path in found.items():
        cfg = json.loads((path / "config.json").read_text())
        out.append({"name": name, "size": cfg.get("size"), "recipe": cfg.get("recipe"), "step": cfg.get("step")})
    # The folders searched and the library let the page's hint give the real commands when none is found.
    settings = state_of(request).settings
    return {"models": out, "folders": [str(f) for f in settings.models], "library": str(settings.library)}


@router.websocket("/ws/see")
async def see_socket(ws: WebSocket):
    """Text messages set {"model": name, "smooth": 0..0.95}, each answered by one JSON line marked
    "control" (the model and smoothing in use, or an "error", with the model "asked" for when it
    could not be loaded); each JPEG gets a JSON line, then the JPEG seen."""
    from rereel.learn.see import Seer

    state = state_of(ws)
    await ws.accept()
    seer, model, smooth = None, None, 0.5
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is not None:
                # Answers to control messages say so: a page tells them from a frame's answers.
                try:
                    wanted, smooth = see_control(message["text"], smooth)
                except RereelError as e:  # a bad control message changes nothing; the socket stays
                    await ws.send_json({"error": str(e), "control": True})
                    continue
                if wanted and wanted != model:
                    path = see_models(state.settings.models).get(wanted)
                    if path is None:
                        await ws.send_json({"error": f"no model named {wanted!r}", "control": True, "asked": wanted})
                        continue
                    try:
                        seer, model = await asyncio.to_thread(Seer, path, smooth), wanted
                    except RereelError as e:
                        await ws.send_json({"error": str(e), "control": True, "asked": wanted})
                        continue
                if seer is not None:
                    seer.smooth = smooth
                await ws.send_json({"model": model, "smooth": smooth, "control": True})
                continue
            data = message.get("bytes") or b""
            if seer is None:
                await ws.send_json({"error": "choose a model first"})
                continue
            if len(data) > MAX_FRAME_BYTES:
                await ws.send_json({"error": f"frame of {len(data)} bytes is over {MAX_FRAME_BYTES}"})
                continue
            try:
                out, ms = await asyncio.to_thread(_see, seer, data)
            except RereelError as e:
                await ws.send_json({"error": str(e)})
                continue
            await ws.send_json({"model": model, "server_ms": round(ms, 2)})
            await ws.send_bytes(out)
    except WebSocketDisconnect:
        pass


def see_control(text: str, smooth: float) -> tuple[str | None, float]:
    """(model name or None, smoothing) from a control message such as {"model": "flowers", "smooth": 0.3};
    `smooth` is the current value, kept when the message has none. Raises RereelError, naming the problem."""
    try:
        ask = json.loads(text)
    except ValueError:
        raise RereelError("control messages are JSON, e.g. {\"model\": \"NAME\", \"smooth\": 0.5}") from None
    if not isinstance(ask, dict):
        raise RereelError(f"control message: expected a JSON object, got {type(ask).__name__}")
    model, value = ask.get("model"), ask.get("smooth", smooth)
    if model is not None and not isinstance(model, str):
        raise RereelError(f"model {model!r}: expected a model name (text)")
    # bool is an int to Python, and NaN passes min() and max(): both refused by name.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RereelError(f"smooth {value!r}: expected a number from 0 to 0.95")
    return model or None, min(max(float(value), 0.0), 0.95)


def _see(seer, data: bytes) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    rgb = decode_jpeg(data)
    h, w = rgb.shape[:2]
    if max(h, w) > 4 * min(h, w):  # the model runs at its size on the short side: a sliver would be huge
        raise RereelError(f"webcam frame {w}x{h}: sides more than 4:1 apart are refused")
    out = jpeg(seer.see(rgb), quality=80)
    return out, (time.perf_counter() - t0) * 1000
