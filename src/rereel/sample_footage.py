"""Sample footage by download: every manifest entry with a `url`, checked against its sha256.

The manifest (data/sources.json, a copy of shared/media/SOURCES.json) pins each file to a public
URL at a fixed commit, with its sha256, size, licence and credit line. Derived files have no
`url` (re-creating them byte for byte is not guaranteed): they are fetched only from a mirror
(a copy of the footage folder), and only if it has them.

A file is written as a hidden `.NAME.partial` beside its final name, resumed with an HTTP Range
request after a broken connection (in this run or the next), and renamed only once its size
and sha256 match: nothing partial or wrong ever takes a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from importlib import resources
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

CHUNK = 1 << 16
WORKERS = 4  # a few at once: enough to hide latency, few enough to be polite to the hosts
RETRIES = 3  # broken connections per file in one run, each resumed where it stopped
TIMEOUT_S = 30


def manifest() -> list[dict]:
    """The packaged manifest's entries (every file, derived ones included)."""
    return json.loads(resources.files("rereel").joinpath("data/sources.json").read_text())["files"]


def downloadable(mirror: str | None = None) -> list[dict]:
    """Entries with a url; with a mirror (a copy of the footage folder) the derived ones too,
    as optional: their sha256 is pinned all the same, and a mirror without them is no error."""
    return [e for e in manifest() if e.get("url") or mirror]


def default_dest() -> Path:
    env = os.environ.get("REREEL_MEDIA")
    return Path(env) if env else Path.home() / ".cache" / "rereel" / "media"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(path: Path, entry: dict) -> bool:
    """Present with the manifest's size and sha256 (size first: cheap, and rules out most)."""
    return path.is_file() and path.stat().st_size == entry["size"] and sha256_file(path) == entry["sha256"]


class FetchError(Exception):
    """One file that could not be fetched; str() is the one-line message naming it."""

    def __init__(self, file: str, reason: str, offline: bool = False, optional: bool = False):
        self.file, self.reason, self.offline, self.optional = file, reason, offline, optional
        super().__init__(f"{file}: {reason}")


@dataclass
class Report:
    present: list[str] = field(default_factory=list)  # verified, not fetched again
    fetched: list[str] = field(default_factory=list)
    failed: list[FetchError] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # derived files the mirror does not have
    bytes_fetched: int = 0
    credits: Path | None = None  # CREDITS.md, when any file is here to credit


def source_url(entry: dict, mirror: str | None) -> str:
    return f"{mirror.rstrip('/')}/{quote(entry['file'])}" if mirror else entry["url"]


# on_progress(file, done): `done` bytes of `file` are on disk (a resume starts above zero)
Progress = Callable[[str, int], None]


def _download(entry: dict, dest: Path, mirror: str | None, on_progress: Progress, stop: threading.Event,
              halt: threading.Event) -> int:
    """Fetch one entry to its final path; returns the bytes transferred. Raises FetchError."""
    name, size = entry["file"], entry["size"]
    final = dest / name
    part = final.with_name(f".{final.name}.partial")
    url = source_url(entry, mirror)
    moved = 0
    breaks = 0
    while True:
        if stop.is_set():
            raise FetchError(name, "not fetched: stopped after another file could not be reached", offline=True)
        have = part.stat().st_size if part.exists() else 0
        if have > size:  # not a prefix of the right file: start again
            part.unlink()
            have = 0
        if have == size:
            break
        headers = {"User-Agent": "rereel-samples"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with urlopen(Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
                if have and resp.status != 206:  # the server ignored Range: whole file again
                    have = 0
                done = have
                on_progress(name, done)
                try:  # once connected: offline, no empty folders
                    final.parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:  # not a broken connection (below): no retry
                    raise FetchError(name, f"cannot make its folder {final.parent} ({e.strerror or e})") from None
                with open(part, "ab" if have else "wb") as f:
                    while block := resp.read(CHUNK):
                        if halt.is_set():  # the run was stopped: the partial file stays, to resume from
                            raise FetchError(name, "not fetched: the run was stopped; run again to resume")
                        f.write(block)
                        moved += len(block)
                        done += len(block)
                        on_progress(name, done)
        except HTTPError as e:
            if e.code == 416 and have:  # our partial is no prefix the server knows: start again
                part.unlink(missing_ok=True)
                continue
            raise FetchError(name, f"HTTP {e.code} {e.reason} from {url}",
                             optional=e.code == 404 and not entry.get("url")) from None
        except URLError as e:  # could not connect at all: offline, wrong host, refused
            raise FetchError(name, f"cannot reach {url} ({e.reason})", offline=True) from None
        except (HTTPException, OSError) as e:  # the connection broke mid-file: resume with Range
            breaks += 1
            if breaks > RETRIES:
                raise FetchError(name, f"connection to {url} kept breaking ({type(e).__name__}: {e}); "
                                       "run again to resume") from None
            continue
        if part.stat().st_size >= size:
            break
        breaks += 1  # a clean end of stream before the whole file: the server cut it short
        if breaks > RETRIES:
            raise FetchError(name, f"{url} ended early ({part.stat().st_size} of {size} bytes); run again to resume")
    got = sha256_file(part)
    if part.stat().st_size != size or got != entry["sha256"]:
        part.unlink(missing_ok=True)  # a wrong file is not kept, not even to resume from
        raise FetchError(name, f"checksum mismatch from {url} (sha256 {got[:12]}…, expected "
                               f"{entry['sha256'][:12]}…); not kept")
    os.replace(part, final)
    return moved


def fetch(dest: Path, mirror: str | None = None, entries: list[dict] | None = None,
          on_start: Callable[[str, int], None] = lambda f, n: None, on_progress: Progress = lambda f, n: None,
          workers: int = WORKERS) -> Report:
    """Download every entry not already verified in `dest`; failures are collected, not raised."""
    dest = Path(dest)
    entries = downloadable(mirror) if entries is None else entries
    report = Report()
    todo = []
    for entry in entries:
        if verified(dest / entry["file"], entry):
            report.present.append(entry["file"])
        else:
            todo.append(entry)
    lock = threading.Lock()
    stop = threading.Event()  # set when a host cannot be reached: the rest would fail the same way
    halt = threading.Event()  # set when the run is stopped (Ctrl-C, `kill`): downloads end at their next block

    def one(entry: dict) -> None:
        on_start(entry["file"], entry["size"])
        try:
            moved = _download(entry, dest, mirror, on_progress, stop, halt)
            with lock:
                report.bytes_fetched += moved
                report.fetched.append(entry["file"])
        except FetchError as e:
            if e.offline:
                stop.set()
            with lock:
                (report.absent.append(e.file) if e.optional else report.failed.append(e))

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        list(pool.map(one, todo))
    except BaseException:  # Ctrl-C, `kill`: the downloads stop at their next block, not at their end
        halt.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    # Report the root cause first: "cannot reach" rather than "stopped after another file..."
    report.failed.sort(key=lambda e: "stopped after" in e.reason)
    report.credits = write_credits_md(dest, entries)
    return report


def write_credits_md(dest: Path, entries: list[dict]) -> Path | None:
    """CREDITS.md beside the footage: licence and credit of each verified file there."""
    rows = [e for e in entries if (dest / e["file"]).is_file()]
    if not rows:
        return None
    lines = ["# Credits for the sample footage", "",
             "Written by `rereel samples`. Credit CC BY / CC BY-SA material wherever a result made "
             "from it is published; CC BY-SA derivatives stay CC BY-SA.", "",
             "| file | licence | credit | source |", "|---|---|---|---|"]
    for e in rows:
        cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731 (credit lines contain "|")
        lines.append(f"| {cell(e['file'])} | {cell(e.get('licence', '?'))} | {cell(e.get('credit', ''))} "
                     f"| {cell(e.get('url') or e.get('repo', ''))} |")
    path = dest / "CREDITS.md"
    tmp = path.with_name(f".CREDITS.md.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
