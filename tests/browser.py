"""Browser test support: Debian's Chromium driven by Playwright, with a fake camera fed from a real clip.

    from browser import camera_browser, camera_page, serve, screenshot  # noqa: F401 (fixtures)

    def test_mirror(camera_page):
        with serve(["--library", str(lib)]) as url:
            camera_page.goto(url + "/live")
            screenshot(camera_page, "live")

Chromium is Debian's (/usr/bin/chromium, installed by scripts/install-test-programs), never a browser
that Playwright downloads (`playwright install` cannot reach its servers here). A test that needs
it and cannot find it fails when CI is set and skips elsewhere, like missing footage
(conftest.require_media).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, require_media

CHROMIUM = Path(os.environ.get("REREEL_CHROMIUM", "/usr/bin/chromium"))
OUT = ROOT / "out"  # git-ignored
SCREENSHOTS = OUT / "screenshots"
Y4M_CACHE = OUT / "y4m"

# The fake webcam: a CC0 head-and-shoulders close-up (a man in front of a lime-green wall).
CAMERA_CLIP = ("archive", "cc0_mdn_chroma_keying_face_closeup.mp4")

# Flags on top of Playwright's own. Playwright already passes --headless, --no-sandbox (we run as
# root), --no-first-run, --disable-background-networking, --disable-component-update,
# --disable-sync and a fresh temporary --user-data-dir, which are the rest of the set the
# machine's notes ask for (this machine refuses outside connections, so background fetches only
# add noise and delay).
CHROMIUM_ARGS = [
    "--disable-gpu",  # no GPU here: software compositing, no GPU-process probing
    "--disable-quic",  # no UDP to the outside either
    "--use-fake-ui-for-media-stream",  # accept getUserMedia without a permission prompt
    "--use-fake-device-for-media-stream",  # fake camera and microphone instead of /dev/video*
]


def require_chromium() -> Path:
    """Path to Chromium; fail when CI is set (CI installs it), skip elsewhere, when missing."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        msg = f"chromium not found at {CHROMIUM} (run scripts/install-test-programs, or set REREEL_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return CHROMIUM


# --- fake camera --------------------------------------------------------------------------


def make_y4m(src_video: Path, out: Path, width: int = 320, height: int = 240, fps: int = 15,
             seconds: float = 6, start: float = 0.0) -> Path:
    """Write `seconds` of `src_video` (from `start`) as a YUV4MPEG2 file Chromium can capture from.

    Chromium's file capture (media/capture/video/file_video_capture_device.cc) reads only 4:2:0
    (C420, C420jpeg, C420mpeg2, C420paldv, all taken as plain I420), bare "FRAME" markers,
    an integer frame rate and a header under 200 bytes, and loops the file at its end. Frames
    are scaled to cover width x height (centre crop, no bars) and sampled at `fps`. The YUV is
    BT.601 limited range (swscale's default), which is how Chromium interprets I420 capture.
    Reused when `out` is newer than `src_video`; written under a temporary name, then renamed.
    """
    from rereel.media import decode_frames

    src_video, out = Path(src_video), Path(out)
    if width % 2 or height % 2:
        raise ValueError(f"I420 needs an even size, got {width}x{height}")
    if out.exists() and out.stat().st_mtime >= src_video.stat().st_mtime and out.stat().st_size > 0:
        return out
    n_frames = max(1, round(seconds * fps))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.partial")  # parallel runs never share one
    written = 0
    with open(tmp, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        pending = None  # the newest source frame at or before the next output time
        for decoded in decode_frames(src_video, start=start):
            # Write every output frame whose time has been reached (holds frames of a slower source).
            while written < n_frames and decoded.time - start > written / fps + 1e-6 and pending is not None:
                _write_frame(f, pending, width, height)
                written += 1
            if written >= n_frames:
                break
            pending = decoded
        while written < n_frames and pending is not None:  # a clip shorter than `seconds`: hold its last frame
            _write_frame(f, pending, width, height)
            written += 1
    if written == 0:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{src_video}: no frames to write")
    os.replace(tmp, out)
    return out


def _write_frame(f, decoded, width: int, height: int) -> None:
    from rereel.media.decode import display_size

    # Scale to cover, then centre-crop: a webcam fills its frame.
    w0, h0 = display_size(decoded.frame)
    scale = max(width / w0, height / h0)
    sw, sh = max(width, round(w0 * scale)), max(height, round(h0 * scale))
    rgb = decoded.rgb(sw, sh)
    x, y = (sw - width) // 2, (sh - height) // 2
    rgb = np.ascontiguousarray(rgb[y:y + height, x:x + width])
    yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    f.write(b"FRAME\n")
    for plane in yuv.planes:  # planes may be padded: copy only the visible width of each row
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: plane.height, : plane.width]
        f.write(rows.tobytes())


def camera_y4m(src_video: Path | None = None, cache_dir: Path = Y4M_CACHE, **kw) -> Path:
    """make_y4m cached by name in `cache_dir` (default out/y4m): CLIP_WxH_FPSfps_Ss.y4m.

    `src_video` defaults to CAMERA_CLIP in the sample footage (skip, or fail in CI, if missing).
    """
    src = Path(src_video) if src_video else require_media(*CAMERA_CLIP)
    w, h, fps, s = kw.get("width", 320), kw.get("height", 240), kw.get("fps", 15), kw.get("seconds", 6)
    start = kw.get("start", 0.0)
    name = f"{src.stem}_{w}x{h}_{fps}fps_{s:g}s" + (f"_from{start:g}" if start else "") + ".y4m"
    return make_y4m(src, Path(cache_dir) / name, **kw)


def read_y4m(path: Path, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Frames of a .y4m as RGB, shape (N, H, W, 3), through FFmpeg (so this checks the file too)."""
    from rereel.media import decode_frames

    frames = []
    for d in decode_frames(path):
        frames.append(d.rgb(width or d.frame.width, height or d.frame.height))
    return np.stack(frames)


# --- Chromium -----------------------------------------------------------------------------

_logs: "weakref.WeakKeyDictionary[object, list[str]]" = weakref.WeakKeyDictionary()

# Playwright's sync API allows one running instance per thread: a second sync_playwright()
# beside a live one fails with "using Playwright Sync API inside the asyncio loop". So every
# chromium() shares one, started by the first and stopped when the last closes.
_pw = {"playwright": None, "users": 0}


@contextlib.contextmanager
def _playwright():
    if _pw["users"] == 0:
        from playwright.sync_api import sync_playwright

        _pw["playwright"] = sync_playwright().start()
    _pw["users"] += 1
    try:
        yield _pw["playwright"]
    finally:
        _pw["users"] -= 1
        if _pw["users"] == 0:
            _pw["playwright"].stop()
            _pw["playwright"] = None


@contextlib.contextmanager
def chromium(camera: Path | None = None, *, args: Sequence[str] = (), headless: bool = True) -> Iterator:
    """Launch Debian's Chromium through Playwright; yield the Browser, close it at exit.

    `camera`: a .y4m for the fake webcam (camera_y4m()); None gives Chromium's own synthetic
    pattern. `args` are extra Chromium flags. Launching takes about 1 s here. Several may be
    open at once (they share one Playwright driver).
    """
    exe = require_chromium()
    flags = list(CHROMIUM_ARGS)
    if camera is not None:
        camera = Path(camera).resolve()
        if not camera.is_file():
            raise FileNotFoundError(camera)
        # Chromium picks the parser by the name's ending: it must end in "y4m" (or "mjpeg").
        flags.append(f"--use-file-for-fake-video-capture={camera}")
    flags += list(args)
    with _playwright() as p:
        browser = p.chromium.launch(executable_path=str(exe), headless=headless, args=flags)
        try:
            yield browser
        finally:
            browser.close()


# One camera browser per clip for the whole session, however many test modules import the
# fixture (each import makes pytest set a session fixture up again): reference-counted.
_shared: dict[Path, list] = {}


@contextlib.contextmanager
def shared_chromium(camera: Path) -> Iterator:
    """Like chromium(camera), but reuses a browser already open for the same camera."""
    key = Path(camera).resolve()
    if key not in _shared:
        cm = chromium(key)
        _shared[key] = [cm, cm.__enter__(), 0]
    entry = _shared[key]
    entry[2] += 1
    try:
        yield entry[1]
    finally:
        entry[2] -= 1
        if entry[2] == 0:
            del _shared[key]
            entry[0].__exit__(None, None, None)


def new_page(browser, *, base_url: str | None = None, width: int = 1280, height: int = 800):
    """A page in a fresh context with camera and microphone granted.

    Console messages and uncaught page errors are kept: console_log(page) returns them,
    for assertion messages.
    """
    context = browser.new_context(permissions=["camera", "microphone"], base_url=base_url,
                                  viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)  # fail in seconds, not Playwright's 30 s, on a 2-core machine
    page = context.new_page()
    log: list[str] = []
    _logs[page] = log
    page.on("console", lambda m: log.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.append(f"pageerror: {e}"))
    return page


def console_log(page) -> str:
    """What the page printed to its console and its uncaught errors, one per line."""
    return "\n".join(_logs.get(page, []))


def screenshot(page, name: str) -> Path:
    """Save a full-page PNG as out/screenshots/NAME.png (a test artefact for a person to look at)."""
    path = SCREENSHOTS / (name if name.endswith(".png") else name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


# --- the app under test -------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE_COMMAND = [sys.executable, "-m", "rereel", "serve", "--port", "{port}"]


@contextlib.contextmanager
def serve(args: Sequence[str] = (), env: dict[str, str] | None = None, *,
          command: Sequence[str] = SERVE_COMMAND, health: str = "/api/health",
          timeout: float = 30.0) -> Iterator[str]:
    """Run `rereel serve --port PORT ARGS...`; yield its base URL (http://127.0.0.1:PORT).

    Waits until GET `health` answers (any HTTP status below 500, so a server without that
    route counts as up once it answers at all); fails with the server's output if it exits
    or is not up within `timeout` s. `env` is added to this process's environment.
    `command` replaces the program: "{port}" in it, or in `args`, becomes the port (tests of
    this helper use `python -m http.server`). The server is terminated (then killed) at exit.
    """
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in [*command, *args]]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:  # a file, not a pipe: a chatty server never blocks
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT,
                                stdin=subprocess.DEVNULL)

        def said() -> str:
            output.seek(0)
            return output.read().decode(errors="replace")[-4000:]

        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with status {proc.returncode} before answering: "
                                f"{' '.join(argv)}\n{said()}", pytrace=False)
                try:
                    with urllib.request.urlopen(base + health, timeout=2):
                        break
                except urllib.error.HTTPError as e:
                    if e.code < 500:
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not answering {base}{health} after {timeout:g} s: "
                                f"{' '.join(argv)}\n{said()}", pytrace=False)
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- fixtures (import them into a test module, or into conftest.py) -----------------------


@pytest.fixture(scope="session")
def camera_clip_y4m() -> Path:
    """The fake webcam's .y4m, made once from CAMERA_CLIP and cached in out/y4m."""
    return camera_y4m()


@pytest.fixture(scope="session")
def camera_browser(camera_clip_y4m):
    """One Chromium for the session, its fake webcam playing CAMERA_CLIP (looping, 320x240, 15 fps)."""
    require_chromium()
    with shared_chromium(camera_clip_y4m) as browser:
        yield browser


@pytest.fixture
def camera_page(camera_browser):
    """A fresh page (own context, camera granted) in the session's Chromium; closed after the test."""
    page = new_page(camera_browser)
    yield page
    page.context.close()


__all__ = [
    "CAMERA_CLIP", "CHROMIUM", "CHROMIUM_ARGS", "SCREENSHOTS", "camera_browser", "camera_clip_y4m",
    "camera_page", "camera_y4m", "chromium", "console_log", "free_port", "make_y4m", "new_page",
    "read_y4m", "require_chromium", "screenshot", "serve", "shared_chromium",
]
