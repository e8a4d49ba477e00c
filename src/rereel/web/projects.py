"""Remake projects of the web editor: one folder each, the OTIO timeline the single source of truth.

    WORK/projects/<id>/project.json     name, target path, created (written once)
                      target.<ext>      an uploaded target (a target chosen by path stays where it is)
                      remake.otio       the timeline: every swap is written here at once (atomically)
                      thumbs/<n>.jpg    the target's shots, from the analysis's own decode pass
                      remake.mp4, remake_side_by_side.mp4   renders

Because edits live in remake.otio, they survive a restart, and the same file opens in an editor
or in `rereel render`.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
from pathlib import Path

import opentimelineio as otio

from rereel.errors import RereelError
from rereel.credits import write_credits
from rereel.timeline import KEY, choose_suggestion, read_timeline, shot_items, write_timeline

PROJECT_ID = re.compile(r"^[0-9a-f]{12}$")
TIMELINE = "remake.otio"
RENDERS = {False: "remake.mp4", True: "remake_side_by_side.mp4"}
# remake.credits.txt: the licences and credit lines of the footage used (CC BY needs them).
DOWNLOADS = {"remake.mp4", "remake_side_by_side.mp4", "remake.otio", "remake.edl", "remake.xml", "remake.credits.txt"}


class Projects:
    def __init__(self, root: Path):
        self.root = root / "projects"
        self.root.mkdir(parents=True, exist_ok=True)
        # Read-modify-write of a timeline: two quick clicks must not lose one of the swaps.
        self._lock = threading.Lock()

    def folder(self, pid: str) -> Path:
        """The project's folder; ids are checked against their pattern, so no path can be smuggled in."""
        if not PROJECT_ID.match(pid) or not (self.root / pid / "project.json").exists():
            raise KeyError(pid)
        return self.root / pid

    def create(self) -> tuple[str, Path]:
        pid = secrets.token_hex(6)
        folder = self.root / pid
        folder.mkdir(parents=True)
        return pid, folder

    def delete(self, pid: str) -> None:
        """The project's folder and everything in it (an uploaded target included; a target
        picked by path is not the project's and stays)."""
        folder = self.folder(pid)
        with self._lock:
            shutil.rmtree(folder)

    def save_meta(self, folder: Path, meta: dict) -> None:
        tmp = folder / "project.json.partial"
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(folder / "project.json")

    def meta(self, pid: str) -> dict:
        return json.loads((self.folder(pid) / "project.json").read_text())

    def all(self) -> list[dict]:
        out = []
        for f in sorted(self.root.glob("*/project.json"), key=lambda p: p.stat().st_mtime, reverse=True):
            try:
                meta = json.loads(f.read_text())
            except (OSError, ValueError):
                continue  # a half-made project (its creation failed): not listed
            meta["ready"] = (f.parent / TIMELINE).exists()
            out.append(meta)
        return out

    # -- the timeline ------------------------------------------------------------------------
    def timeline(self, pid: str) -> otio.schema.Timeline:
        path = self.folder(pid) / TIMELINE
        if not path.exists():
            raise RereelError(f"project {pid}: the remake has not finished matching yet")
        return read_timeline(path)

    def choose(self, pid: str, shot: int, suggestion: int) -> otio.schema.Timeline:
        with self._lock:
            tl = self.timeline(pid)
            choose_suggestion(tl, shot, suggestion)
            write_timeline(tl, self.folder(pid) / TIMELINE)
            return tl

    def describe(self, pid: str) -> dict:
        """The editor's view of a project: per target shot, its timecode, choice and suggestions."""
        meta = self.meta(pid)
        folder = self.folder(pid)
        out = {**meta, "ready": (folder / TIMELINE).exists(), "shots": [], "renders": {}}
        for sbs, name in RENDERS.items():
            if (folder / name).exists():
                out["renders"]["side_by_side" if sbs else "standalone"] = {
                    "file": name, "mtime": (folder / name).stat().st_mtime}
        if not out["ready"]:
            return out
        tl = self.timeline(pid)
        target = tl.metadata[KEY]["target"]
        out["target"] = {k: target[k] for k in ("fps", "width", "height", "duration", "frames", "has_audio")}
        out["timeline_mtime"] = (folder / TIMELINE).stat().st_mtime
        for item in shot_items(tl):  # hold clips belong to the shot before them
            info = dict(item.metadata.get(KEY, {}))
            suggestions = [
                {"shot_id": s["shot_id"], "name": Path(s["path"]).name, "start": s["start"], "end": s["end"],
                 "score": s["score"]} for s in info.get("suggestions") or []]
            out["shots"].append({
                "index": info.get("target_shot"), "start": info.get("target_start"), "end": info.get("target_end"),
                "timecode": timecode(info.get("target_start", 0.0), float(target["fps"])),
                "black": bool(info.get("black")), "chosen": info.get("chosen"), "score": info.get("score"),
                "shot_id": info.get("shot_id"), "suggestions": suggestions,
            })
        return out

    def download(self, pid: str, name: str) -> Path:
        """A file offered for download; EDL, FCP XML and credits are written from the timeline as asked."""
        if name not in DOWNLOADS:
            raise KeyError(name)
        folder = self.folder(pid)
        path = folder / name
        if name.endswith((".edl", ".xml", ".credits.txt")):
            otio_path = folder / TIMELINE
            with self._lock:
                if not path.exists() or path.stat().st_mtime < otio_path.stat().st_mtime:
                    if name.endswith(".credits.txt"):
                        write_credits(self.timeline(pid), folder / "remake.mp4")
                    else:
                        write_timeline(self.timeline(pid), path)
        if not path.exists():
            raise KeyError(name)
        return path


def timecode(seconds: float, fps: float) -> str:
    """HH:MM:SS:FF at the target's (rounded) frame rate, as editors show it."""
    rate = max(1, round(fps))
    frames = round(seconds * fps)
    f, s = frames % rate, frames // rate
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def project_meta(pid: str, name: str, target: Path, uploaded: bool, suggestions: int) -> dict:
    return {"id": pid, "name": name, "target": str(target), "uploaded": uploaded, "suggestions": suggestions,
            "created": time.time()}
