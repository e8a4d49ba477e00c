"""Remake projects of the web editor: one folder each, the OTIO timeline the single source of truth.

    WORK/projects/<id>/project.json     name, target path, created (written once)
                      target.<ext>      an uploaded target (a target chosen by path stays where it is)
                      remake.otio       the timeline: every change is written here at once (atomically)
                      history.json      the undo and redo steps: (what changed, its timeline in history/)
                      history/<hash>.otio  the timeline before (undo) or after (redo) each change
                      analysis.npz      the target's analysed features, to match again without decoding it
                      thumbs/<n>.jpg    the target's shots, from the analysis's own decode pass
                      remake.mp4, remake_side_by_side.mp4   renders
                      renders.json      the timeline version each render was made from ("out of date")

Because edits live in remake.otio (and their history in history.json), they survive a restart,
and the same file opens in an editor or in `rereel render`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import opentimelineio as otio

from rereel.errors import RereelError
from rereel.credits import write_credits
from rereel.outputs import write_text
from rereel.timeline import KEY, choose_suggestion, editing, read_timeline, shot_items, write_timeline
from rereel.timeline import timecode as frame_timecode
from rereel.timeline.edit import History

PROJECT_ID = re.compile(r"^[0-9a-f]{12}$")
TIMELINE = "remake.otio"
HISTORY = "history.json"
RENDERS = {False: "remake.mp4", True: "remake_side_by_side.mp4"}
# remake.credits.txt: the licences and credit lines of the footage used (CC BY needs them).
RENDERED = "renders.json"  # each render's timeline version (Projects.rendered)
DOWNLOADS = {"remake.mp4", "remake_side_by_side.mp4", "remake.otio", "remake.edl", "remake.xml", "remake.credits.txt"}


class StaleEdit(RereelError):
    """A change asked for against a version of the timeline that is no longer the one saved."""


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
        write_text(folder / "project.json", json.dumps(meta, indent=2))

    def meta(self, pid: str) -> dict:
        path = self.folder(pid) / "project.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as e:  # damaged on disk (a hand edit, a full disk): said, not a 500
            raise RereelError(f"{path}: the project's record cannot be read ({e}); delete the project and "
                              "start it again") from None
        if not _is_record(meta):
            raise RereelError(f"{path}: the project's record is not one rereel wrote (no name and target path in it); "
                              "delete the project and start it again")
        return meta

    def all(self) -> list[dict]:
        out = []
        for f in sorted(self.root.glob("*/project.json"), key=lambda p: p.stat().st_mtime, reverse=True):
            try:
                meta = json.loads(f.read_text())
            except (OSError, ValueError):
                continue  # a half-made project (its creation failed): not listed
            if not _is_record(meta):
                continue  # damaged: its own page says so (`meta`)
            meta["ready"] = (f.parent / TIMELINE).exists()
            out.append(meta)
        return out

    # -- the timeline ------------------------------------------------------------------------
    def timeline(self, pid: str) -> otio.schema.Timeline:
        path = self.folder(pid) / TIMELINE
        if not path.exists():
            raise RereelError(f"project {pid}: the remake has not finished matching yet")
        return read_timeline(path)

    def snapshot(self, pid: str) -> tuple[otio.schema.Timeline, int]:
        """The timeline and its version (its file's mtime in ns), read between edits: what a render
        is made from, recorded with it (`rendered`) so the page can say when it is out of date."""
        with self._lock:
            version = (self.folder(pid) / TIMELINE).stat().st_mtime_ns
            return self.timeline(pid), version

    def rendered(self, pid: str, name: str, version: int) -> None:
        """Record that render `name` was made from timeline `version` (see `snapshot`)."""
        with self._lock:
            path = self.folder(pid) / RENDERED
            record = _read_json(path)
            record[name] = version
            write_text(path, json.dumps(record))

    def choose(self, pid: str, shot: int, suggestion: int, expected: str | None = None) -> otio.schema.Timeline:
        def swap(tl):
            info = _shot(tl, shot)
            count = len(info.get("suggestions") or [])
            if count == 0:
                why = "is black in the target and " if info.get("black") else ""
                raise RereelError(f"shot {shot + 1} {why}has no suggestions yet; ask for more suggestions to fill it")
            if not 0 <= suggestion < count:
                raise RereelError(f"shot {shot + 1} has suggestions 1 to {count}; there is no number {suggestion + 1}")
            choose_suggestion(tl, shot, suggestion)
            return tl
        return self.edit(pid, f"swap suggestion {suggestion + 1} into shot {shot + 1}", swap, expected)

    # -- changes and their history -----------------------------------------------------------------
    @contextmanager
    def _editing(self, pid: str, expected: str | None):
        """The project's timeline held for one change (against this app's other threads and other
        processes: `rereel choose` on the same file), and refused as stale when it is no longer
        the version `expected` (the `revision` the page showed) that the change was asked of."""
        path = self.folder(pid) / TIMELINE
        if not path.exists():
            raise RereelError(f"project {pid}: the remake has not finished matching yet")
        with self._lock, editing(path):
            if expected is not None and _revision(path.parent) != expected:
                raise StaleEdit(f"project {pid}: the remake was changed elsewhere (another tab, or `rereel choose`) "
                                "since this view of it; look at it as it is now, then make the change again")
            yield

    def edit(self, pid: str, label: str, change, expected: str | None = None):
        """Apply `change(timeline)` and save it, with the timeline before it on the undo list.
        A change that raises saves nothing. `expected`: see `_editing`."""
        with self._editing(pid, expected):
            tl = self.timeline(pid)
            history = self.history(pid)
            before = tl.deepcopy()
            result = change(tl)
            history.record(label, before)
            write_timeline(tl, self.folder(pid) / TIMELINE)
            self._save_history(pid, history)
            return result

    # history.json lists (label, file) per step; each timeline is a file of its own in history/,
    # named by its content and written once, so a change writes one timeline, not the history.
    def history(self, pid: str) -> History:
        folder = self.folder(pid)
        path = folder / HISTORY
        if not path.exists():
            return History()
        try:
            index = json.loads(path.read_text())
            read = lambda steps: [(label, (folder / "history" / name).read_text()) for label, name in steps]  # noqa: E731
            return History(read(index.get("undo", [])), read(index.get("redo", [])))
        except (OSError, ValueError) as e:
            raise RereelError(f"{path}: the undo history cannot be read ({e})") from None

    def _save_history(self, pid: str, history: History) -> None:
        folder = self.folder(pid)
        steps = folder / "history"
        steps.mkdir(exist_ok=True)

        def store(entries):
            out = []
            for label, text in entries:
                name = hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + ".otio"
                if not (steps / name).exists():
                    write_text(steps / name, text)
                out.append([label, name])
            return out

        index = {"undo": store(history.undo), "redo": store(history.redo)}
        write_text(folder / HISTORY, json.dumps(index))
        used = {name for _, name in index["undo"] + index["redo"]}
        for old in steps.glob("*.otio"):  # steps dropped off the end, or redo steps a change replaced
            if old.name not in used:
                old.unlink(missing_ok=True)

    def undo(self, pid: str, forward: bool = False, expected: str | None = None) -> str:
        """Undo (or redo) the last change; returns what it was. `expected`: see `_editing`."""
        with self._editing(pid, expected):
            history = self.history(pid)
            now = self.timeline(pid)
            label, tl = history.step_forward(now) if forward else history.step_back(now)
            write_timeline(tl, self.folder(pid) / TIMELINE)
            self._save_history(pid, history)
            return label

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
        # Before the timeline is read: a change in between makes the revision older than what is
        # shown, so the page's next edit is refused and it reloads (never the other way round).
        out["revision"] = _revision(folder)
        tl = self.timeline(pid)
        target = tl.metadata[KEY]["target"]
        out["target"] = {k: target[k] for k in ("fps", "width", "height", "duration", "frames", "has_audio")}
        stat = (folder / TIMELINE).stat()
        out["timeline_mtime"] = stat.st_mtime
        made_from = _read_json(folder / RENDERED)
        for r in out["renders"].values():  # edited since: the page says so
            version = made_from.get(r["file"])
            # A render made before renders were recorded: by the files' times.
            r["stale"] = version != stat.st_mtime_ns if isinstance(version, int) else r["mtime"] < stat.st_mtime
        index = json.loads((folder / HISTORY).read_text()) if (folder / HISTORY).exists() else {}
        undo, redo = index.get("undo") or [], index.get("redo") or []  # the labels only, not the timelines
        out["history"] = {"undo": undo[-1][0] if undo else None, "redo": redo[-1][0] if redo else None}
        out["editable"] = (folder / "analysis.npz").exists()  # matching again needs the analysis
        out["matched_with"] = matched_with(tl)  # the page's re-match fields start from them
        for item in shot_items(tl):  # hold clips belong to the shot before them
            info = dict(item.metadata.get(KEY, {}))
            suggestions = [
                {"shot_id": s["shot_id"], "name": Path(s["path"]).name, "start": s["start"], "end": s["end"],
                 "score": s["score"]} for s in info.get("suggestions") or []]
            out["shots"].append({
                "index": info.get("target_shot"), "number": info.get("target_shot", 0) + 1,
                "start": info.get("target_start"), "end": info.get("target_end"),
                "start_frame": info.get("target_start_frame"), "end_frame": info.get("target_end_frame"),
                "timecode": frame_timecode(info.get("target_start_frame", 0), float(target["fps"])),
                "black": bool(info.get("black")), "chosen": info.get("chosen"), "score": info.get("score"),
                "shot_id": info.get("shot_id"), "suggestions": suggestions, "locked": bool(info.get("locked")),
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
            # Credits describe the video offered beside them: a render writes its own (editor.render),
            # which an edit since does not change; with no render, those of the timeline as it stands.
            video = folder / "remake.mp4"
            with self._lock:
                stale = not path.exists() or path.stat().st_mtime < otio_path.stat().st_mtime
                if name.endswith(".credits.txt"):
                    if stale and not video.exists():
                        write_credits(self.timeline(pid), video)
                elif stale:
                    write_timeline(self.timeline(pid), path)
        if not path.exists():
            raise KeyError(name)
        return path


def timecode(seconds: float, fps: float) -> str:
    """HH:MM:SS:FF of the frame at `seconds`, non-drop at the (rounded) rate, for times that are
    not shot starts. The same as the shots' labels (rereel.timeline.timecode, OTIO's) up to 24 h,
    where OTIO's wrap to 00 and these count on."""
    rate = max(1, round(fps))
    frames = round(seconds * fps)
    f, s = frames % rate, frames // rate
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def _shot(tl, shot: int) -> dict:
    for item in shot_items(tl):
        info = item.metadata.get(KEY, {})
        if info.get("target_shot") == shot:
            return info
    raise RereelError(f"there is no shot {shot + 1}: the remake has shots 1 to {len(shot_items(tl))}")


def project_meta(pid: str, name: str, target: Path, uploaded: bool, suggestions: int) -> dict:
    return {"id": pid, "name": name, "target": str(target), "uploaded": uploaded, "suggestions": suggestions,
            "created": time.time()}


def matched_with(tl: otio.schema.Timeline) -> dict:
    """The seed and weights (those recorded) the timeline's shots were last matched with."""
    meta = tl.metadata[KEY]
    weights = meta.get("weights") if hasattr(meta.get("weights"), "get") else {}  # OTIO's AnyDictionary, not a dict
    return {"seed": int(meta.get("seed") or 0),
            **{k: float(weights[k]) for k in ("semantic", "composition", "colour") if k in weights}}


def _revision(folder: Path) -> str:
    """The version of a project's remake, by the content of its timeline and undo history: what
    the page showing it sends back with a change, so that a change made meanwhile elsewhere
    (another tab, `rereel choose`) is not overwritten by one aimed at shots that have moved, and
    an undo undoes the step the page names."""
    digest = hashlib.blake2b((folder / TIMELINE).read_bytes(), digest_size=8)
    if (folder / HISTORY).exists():
        digest.update((folder / HISTORY).read_bytes())
    return digest.hexdigest()


def _is_record(meta) -> bool:
    """Whether `meta` is a project record as `project_meta` writes it, as far as it is read."""
    return (isinstance(meta, dict) and isinstance(meta.get("target"), str) and isinstance(meta.get("name"), str)
            and isinstance(meta.get("suggestions", 5), int))


def _read_json(path: Path) -> dict:
    """A small JSON record of ours; an empty one when missing or unreadable (it is only a hint)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
