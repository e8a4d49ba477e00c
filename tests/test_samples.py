"""`rereel samples` against a loopback HTTP server serving the real sample footage.

Expected bytes come from outside the code: the manifest read here from shared/media/SOURCES.json
and hashlib over the downloaded files.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from rereel import sample_footage as samples
from rereel.cli import app


class Mirror:
    """A loopback server for one folder: Range support, a request log, and faults on demand."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str | None]] = []  # (file, Range header)
        self.drop_once: set[str] = set()  # cut the connection halfway through, once
        self.corrupt: set[str] = set()  # serve these with one byte changed
        self.hide: set[str] = set()  # answer 404 for these
        self.slow: set[str] = set()  # serve these at 4 KB every 50 ms
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep the test output clean
                pass

            def do_GET(self):
                name = unquote(self.path.lstrip("/"))
                mirror.requests.append((name, self.headers.get("Range")))
                path = mirror.root / name
                if not path.is_file() or name in mirror.hide:
                    self.send_error(404, "Not Found")
                    return
                data = bytearray(path.read_bytes())
                if name in mirror.corrupt:
                    data[len(data) // 2] ^= 0xFF
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                body = bytes(data[start:])
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if name in mirror.drop_once:
                    mirror.drop_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return  # the client sees fewer bytes than Content-Length: a broken connection
                if name in mirror.slow:
                    for i in range(0, len(body), 4096):
                        time.sleep(0.05)
                        self.wfile.write(body[i : i + 4096])
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(media):
    with Mirror(media) as m:
        yield m


@pytest.fixture(scope="module")
def expected(media) -> dict[str, dict]:
    """The manifest as the footage's own folder states it: file -> entry (a mirror serves them all)."""
    files = json.loads((media / "SOURCES.json").read_text())["files"]
    return {e["file"]: e for e in files}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def small(expected, n=3) -> list[dict]:
    """The n smallest files with a url (what any run fetches)."""
    return sorted((e for e in expected.values() if e.get("url")), key=lambda e: e["size"])[:n]


def test_packaged_manifest_is_the_footage_manifest(media):
    assert samples.manifest() == json.loads((media / "SOURCES.json").read_text())["files"]


def test_without_a_mirror_every_file_with_a_url(expected):
    assert {e["file"] for e in samples.downloadable()} == {f for f, e in expected.items() if e.get("url")}


def test_derived_files_missing_from_a_mirror_are_no_error(tmp_path, mirror, expected):
    derived = sorted(f for f, e in expected.items() if not e.get("url"))
    with_url = small(expected, 1)
    mirror.hide.update(derived)
    entries = with_url + [expected[f] for f in derived]
    report = samples.fetch(tmp_path, mirror.url, entries)
    assert not report.failed and sorted(report.absent) == derived
    assert report.fetched == [with_url[0]["file"]]


def test_download_everything_then_nothing(tmp_path, mirror, expected):
    dest = tmp_path / "media"
    result = CliRunner().invoke(app, ["samples", str(dest), "--mirror", mirror.url])
    assert result.exit_code == 0, result.output
    assert {f for f, _ in mirror.requests} == set(expected)
    for name, entry in expected.items():
        assert sha256(dest / name) == entry["sha256"], name
    assert not list(dest.rglob(".*partial")), "no temporary file is left"
    credits = (dest / "CREDITS.md").read_text()
    for name, entry in expected.items():
        assert name in credits and entry.get("credit", "").replace("|", "\\|") in credits
    # The same layout as shared/media, so REREEL_MEDIA can point at it.
    assert (dest / "archive").is_dir() and (dest / "trailers" / "sintel_trailer_480x270.webm").is_file()

    mirror.requests.clear()
    result = CliRunner().invoke(app, ["samples", str(dest), "--mirror", mirror.url])
    assert result.exit_code == 0, result.output
    assert mirror.requests == [], "a second run fetches nothing"
    assert f"{len(expected)} present, 0 fetched" in result.output


def test_resume_after_broken_connection(tmp_path, mirror, expected):
    entry = max(small(expected, 6), key=lambda e: e["size"])
    mirror.drop_once.add(entry["file"])
    report = samples.fetch(tmp_path, mirror.url, [entry])
    assert not report.failed, report.failed
    ranges = [r for f, r in mirror.requests if f == entry["file"]]
    assert ranges[0] is None and ranges[1] == f"bytes={entry['size'] // 2}-", ranges
    assert sha256(tmp_path / entry["file"]) == entry["sha256"]


def test_resume_across_runs(tmp_path, mirror, expected, media):
    entry = small(expected, 1)[0]
    final = tmp_path / entry["file"]
    final.parent.mkdir(parents=True)
    half = (media / entry["file"]).read_bytes()[: entry["size"] // 2]
    final.with_name(f".{final.name}.partial").write_bytes(half)  # what an interrupted run leaves
    assert not samples.fetch(tmp_path, mirror.url, [entry]).failed
    assert mirror.requests == [(entry["file"], f"bytes={len(half)}-")]
    assert sha256(final) == entry["sha256"]


def test_mismatch_refused_and_not_kept(tmp_path, mirror, expected, monkeypatch):
    good, bad = small(expected, 2)
    mirror.corrupt.add(bad["file"])
    monkeypatch.setattr(samples, "downloadable", lambda mirror=None: [good, bad])
    result = CliRunner().invoke(app, ["samples", str(tmp_path), "--mirror", mirror.url])
    assert result.exit_code == 2
    line = next(l for l in result.output.splitlines() if l.startswith("error:"))
    assert bad["file"] in line and "checksum mismatch" in line
    assert not (tmp_path / bad["file"]).exists()
    assert not list(tmp_path.rglob(".*partial"))
    assert sha256(tmp_path / good["file"]) == good["sha256"], "the verified file stays"


def test_404_is_a_clear_error(tmp_path, mirror, expected, monkeypatch):
    missing = dict(small(expected, 1)[0], file="archive/not_on_the_mirror.mp4")
    monkeypatch.setattr(samples, "downloadable", lambda mirror=None: [missing])
    result = CliRunner().invoke(app, ["samples", str(tmp_path), "--mirror", mirror.url])
    assert result.exit_code == 2
    errors = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "archive/not_on_the_mirror.mp4: HTTP 404" in errors[0], result.output
    assert not (tmp_path / "archive" / "not_on_the_mirror.mp4").exists()


def test_offline_is_one_line_per_file_tried(tmp_path, expected, monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening: what offline looks like
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(samples, "downloadable", lambda mirror=None: small(expected, 3))
    result = CliRunner().invoke(app, ["samples", str(tmp_path / "media"), "--mirror", dead])
    assert result.exit_code == 2
    first = next(l for l in result.output.splitlines() if l.startswith("error:"))
    assert "cannot reach" in first and any(e["file"] in first for e in small(expected, 3)), first
    # Nothing made: not even CREDITS.md (nothing to credit), nor empty folders for the footage.
    assert not list(tmp_path.iterdir())
    assert "credits in" not in result.output  # so no credits file is named


def test_a_folder_under_a_file_and_a_mirror_that_is_no_url_are_refused_first(tmp_path):
    """Both were tracebacks (NotADirectoryError mid-download, urllib's ValueError)."""
    (tmp_path / "notes.txt").write_text("a file")
    from rereel.errors import RereelError

    # `app` itself raises the RereelError that the command line prints in one line (exit 2).
    result = CliRunner().invoke(app, ["samples", str(tmp_path / "notes.txt" / "media")])
    assert isinstance(result.exception, RereelError), result.exception
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in str(result.exception)
    result = CliRunner().invoke(app, ["samples", str(tmp_path / "media"), "--mirror", "notaurl"])
    assert isinstance(result.exception, RereelError) and "--mirror notaurl: not a URL" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_stopped_run_stops_its_downloads_at_once_and_keeps_them_to_resume(tmp_path, mirror, expected):
    """Ctrl-C or `kill` waited for every download in flight to end, and renamed them complete
    (8 s here; a large file, without bound)."""
    import signal

    entry = max(small(expected, 6), key=lambda e: e["size"])  # some 100s of KB: seconds at this pace
    mirror.slow.add(entry["file"])

    def interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    t0 = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.2)  # after a first block (64 KB) is on disk
        with pytest.raises(KeyboardInterrupt):
            samples.fetch(tmp_path, mirror.url, [entry])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - t0 < 1.2 + 1.0 < entry["size"] / 4096 * 0.05
    final = tmp_path / entry["file"]
    assert not final.exists() and final.with_name(f".{final.name}.partial").stat().st_size > 0
