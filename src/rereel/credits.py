"""Credits of a remake: each archive film it uses, the time ranges used, licence and credit line.

Where a film's licence comes from, first found wins:
1. a sidecar beside the file, `NAME.EXT.credits.json`: {"licence": "...", "credit": "...", "source": "..."};
2. a `credits.json` in the file's folder or any folder above it:
   {"files": [{"file": "path relative to that folder", "licence": "...", "credit": "...",
               "source": "...", "sha256": "optional"}]}
   (the same shape as the sample footage's SOURCES.json, which is read the same way);
3. the packaged sample manifest (data/sources.json), matched by file name and then by size and
   sha256, so a user's own file that shares a sample's name is not credited as the sample.
A film none of these covers is listed with licence "unknown", so a remake never silently omits one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rereel.errors import RereelError
from rereel.outputs import write_text
from rereel.sample_footage import manifest, sha256_file

SIDECAR = ".credits.json"
FOLDER_FILES = ("credits.json", "SOURCES.json")


@dataclass
class Film:
    path: str
    licence: str = "unknown"
    credit: str = ""
    source: str = ""
    found_in: str = ""  # where the licence came from, for the reader to check
    ranges: list[tuple[float, float]] = field(default_factory=list)  # source seconds, merged
    seconds: float = 0.0  # time on screen in the remake, holds included


def _entry_fields(entry: dict) -> dict:
    return {"licence": str(entry.get("licence") or "unknown"), "credit": str(entry.get("credit") or ""),
            "source": str(entry.get("source") if isinstance(entry.get("source"), str) else entry.get("url") or "")}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RereelError(f"{path}: cannot read credits ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise RereelError(f"{path}: credits must be a JSON object")
    return data


@lru_cache(maxsize=4096)
def _sha(path: str, size: int, mtime: float) -> str:  # size and mtime in the key: a changed file is hashed again
    return sha256_file(Path(path))


def _same_content(p: Path, entry: dict) -> bool:
    st = p.stat()
    return st.st_size == entry.get("size", st.st_size) and (
        "sha256" not in entry or _sha(str(p), st.st_size, st.st_mtime) == entry["sha256"])


def lookup(path: str | Path) -> dict:
    """Licence, credit, source and found_in for one media file (see the module's docstring)."""
    p = Path(path)
    side = p.with_name(p.name + SIDECAR)
    if side.is_file():
        return _entry_fields(_read_json(side)) | {"found_in": str(side)}
    present = p.is_file()
    for folder in p.parents:
        for name in FOLDER_FILES:
            cj = folder / name
            if not cj.is_file():
                continue
            files = _read_json(cj).get("files", [])
            for entry in files if isinstance(files, list) else []:
                if isinstance(entry, dict) and entry.get("file") and folder / entry["file"] == p:
                    if present and not _same_content(p, entry):
                        continue  # a stale entry for other bytes under this name
                    return _entry_fields(entry) | {"found_in": str(cj)}
    for entry in manifest():
        if Path(entry["file"]).name != p.name:
            continue
        if not present:  # a moved file: the name is all there is to go on; say so
            return _entry_fields(entry) | {"found_in": "sample manifest, by name only (file not found)"}
        if _same_content(p, entry):
            return _entry_fields(entry) | {"found_in": "sample manifest (sha256 matches)"}
    return {"licence": "unknown", "credit": "", "source": "",
            "found_in": f"nothing: add {p.name}{SIDECAR} beside it, or a credits.json in its folder"}


def _merge(ranges: list[tuple[float, float]], slack: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + slack:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def timeline_films(tl) -> list[Film]:
    """The archive films on a remake timeline's remake track, in order of first use."""
    from rereel.timeline import is_freeze, media_path, remake_items, shows_file, speed

    films: dict[str, Film] = {}
    rate = 24.0
    for item in remake_items(tl):
        if not shows_file(item):
            continue  # a gap, or a clip of no file (a generator, a missing reference): black, no film
        path = media_path(item.media_reference)
        film = films.get(path) or films.setdefault(path, Film(path=path, **lookup(path)))
        sr = item.source_range
        rate = sr.duration.rate
        start = sr.start_time.to_seconds()
        film.seconds += sr.duration.to_seconds()
        # A hold (FreezeFrame) shows one source frame for its whole duration: that frame is what
        # it takes from the film; its screen time counts for the same film.
        end = start + 1 / rate if is_freeze(item) else start + speed(item) * sr.duration.to_seconds()
        film.ranges.append((start, end))
    for film in films.values():
        film.ranges = _merge(film.ranges, slack=1.5 / rate)  # abutting clips and their holds are one range
    return list(films.values())


def _clock(s: float) -> str:
    m, s = divmod(max(0.0, s), 60)
    return f"{int(m)}:{s:05.2f}"


def credits_text(tl) -> str:
    """The credits as plain text: what `rereel credits` prints and OUT.credits.txt holds."""
    films = timeline_films(tl)
    target = dict(tl.metadata.get("rereel", {}).get("target", {}))  # OTIO's AnyDictionary, not a dict
    lines = [f"Credits for {tl.name or 'this remake'}", ""]
    lines.append("Archive footage used (time ranges in each film):" if films else "No archive footage used.")
    for f in films:
        lines += ["", Path(f.path).name,
                  "  used: " + ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in f.ranges)
                  + f" ({f.seconds:.1f} s on screen)",
                  f"  licence: {f.licence}"]
        if f.credit:
            lines.append(f"  credit: {f.credit}")
        if f.source:
            lines.append(f"  source: {f.source}")
        lines.append(f"  licence from: {f.found_in}")
    if target.get("path"):
        # The remake keeps the target's soundtrack (and a side-by-side shows its picture).
        t = lookup(target["path"])
        if target.get("name") and t["licence"] == "unknown":  # an upload, kept under another name: no sidecar can be added
            t["found_in"] = "nothing: an uploaded video, whose licence rereel cannot know; credit it as its licence asks"
        lines += ["", "Target (its soundtrack is in the remake; its picture in a side-by-side):" if target.get("has_audio")
                  else "Target (its picture is in a side-by-side):",
                  target.get("name") or Path(target["path"]).name, f"  licence: {t['licence']}"]
        if t["credit"]:
            lines.append(f"  credit: {t['credit']}")
        lines.append(f"  licence from: {t['found_in']}")
    if any(f.licence == "unknown" for f in films):
        lines += ["", "Some footage has no known licence: check it before publishing."]
    lines += ["", "CC BY and CC BY-SA material must be credited wherever the result is published; "
                  "a work using CC BY-SA material is shared under CC BY-SA."]
    return "\n".join(lines) + "\n"


def credits_path(video: str | Path) -> Path:
    """OUT.mp4 -> OUT.credits.txt, beside it."""
    video = Path(video)
    return video.with_name(f"{video.stem}.credits.txt")


def write_credits(timeline, video: str | Path, text: str | None = None) -> Path:
    """Write VIDEO's credits (OUT.credits.txt beside OUT.mp4) atomically; `timeline` is an OTIO
    Timeline or the path of a .otio file. `text`: credits_text(timeline) when the caller has it
    already (one timeline, several videos). Returns the path written."""
    if text is None:
        if not hasattr(timeline, "tracks"):
            from rereel.timeline import read_timeline

            timeline = read_timeline(Path(timeline))
        text = credits_text(timeline)
    return write_text(credits_path(video), text)
