"""The browser test stack works: Debian's Chromium under Playwright, a fake webcam playing a real
clip (not Chromium's synthetic pattern), and a WebSocket from a page to a Python server on
127.0.0.1 (what the web app's webcam pages rely on)."""

from __future__ import annotations

import base64
import io
import json
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from browser import camera_browser, camera_clip_y4m, camera_page  # noqa: F401 (pytest fixtures)
from browser import chromium, console_log, new_page, read_y4m, screenshot, serve

# A stand-in for `rereel serve`: a static file server on loopback, started by the same helper.
HTTP_SERVER = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "{port}"]

# getUserMedia -> <video> -> canvas. window.grab() returns the canvas as PNG and its mean
# colour (also shown on the page, for the screenshot); window.wsRoundTrip(url) sends text and
# a JPEG of the camera frame over a WebSocket and returns the server's replies.
CAMERA_PAGE = """<!doctype html>
<meta charset="utf-8"><title>rereel camera smoke test</title>
<style>body{font:15px sans-serif;margin:16px} video,canvas{width:320px;height:240px;margin-right:8px;
border:1px solid #999} p{margin:6px 0}</style>
<h1>Fake camera &rarr; video &rarr; canvas</h1>
<video id="v" autoplay muted playsinline></video><canvas id="c" width="320" height="240"></canvas>
<p id="status">starting&hellip;</p><p id="stats"></p><p id="ws"></p>
<script>
const v = document.getElementById("v"), c = document.getElementById("c");
const say = (id, text) => { document.getElementById(id).textContent = text; };
window.camera = (async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
  v.srcObject = stream;
  await v.play();
  // Wait for a few real frames, not just the first one.
  await new Promise(done => { let n = 0;
    const tick = () => (++n >= 5 ? done() : v.requestVideoFrameCallback(tick));
    v.requestVideoFrameCallback(tick); });
  const track = stream.getVideoTracks()[0];
  say("status", `camera: "${track.label}" ${v.videoWidth}x${v.videoHeight}`);
  return {label: track.label, width: v.videoWidth, height: v.videoHeight};
})();
window.camera.catch(e => say("status", "camera error: " + e));
window.grab = () => {
  const g = c.getContext("2d", {willReadFrequently: true});
  g.drawImage(v, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data, mean = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { mean[0] += d[i]; mean[1] += d[i + 1]; mean[2] += d[i + 2]; }
  const n = d.length / 4, m = mean.map(x => +(x / n).toFixed(2));
  say("stats", `mean RGB of the canvas: ${m.join(", ")}`);
  return {mean: m, png: c.toDataURL("image/png")};
};
window.wsRoundTrip = url => new Promise((resolve, reject) => {
  const ws = new WebSocket(url), replies = [];
  ws.binaryType = "arraybuffer";
  ws.onerror = () => reject(new Error("websocket error"));
  ws.onopen = () => ws.send("hello");
  ws.onmessage = async ev => {
    replies.push(JSON.parse(ev.data));
    if (replies.length === 1) {  // then a camera frame, as a binary JPEG message
      const blob = await new Promise(r => c.toBlob(r, "image/jpeg", 0.9));
      ws.send(await blob.arrayBuffer());
    } else { ws.close(); say("ws", "websocket: " + JSON.stringify(replies)); resolve(replies); }
  };
});
</script>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "camera.html").write_text(CAMERA_PAGE)
    with serve(["--directory", str(root)], command=HTTP_SERVER) as url:
        yield url


def _open_camera(page, url) -> dict:
    page.goto(url + "/camera.html")
    try:
        return page.evaluate("window.camera")
    except Exception as e:  # noqa: BLE001 - add the page's console to Playwright's message
        pytest.fail(f"getUserMedia failed: {e}\n{console_log(page)}")


def _blocks(rgb: np.ndarray, k: int = 8) -> np.ndarray:
    """Mean colour of k x k blocks: compares pictures, not pixel noise or scaling details."""
    h, w = rgb.shape[-3] // k * k, rgb.shape[-2] // k * k
    x = rgb[..., :h, :w, :].astype(np.float32)
    return x.reshape(*x.shape[:-3], h // k, k, w // k, k, 3).mean(axis=(-4, -2))


def _png(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def test_fake_camera_plays_the_clip(camera_page, site, camera_clip_y4m):
    cam = _open_camera(camera_page, site)
    # Chromium's synthetic camera is 640x480; the file's size proves the file is used.
    assert (cam["width"], cam["height"]) == (320, 240), cam

    clip = _blocks(read_y4m(camera_clip_y4m))  # (frames, 30, 40, 3)
    seen = []
    for _ in range(2):  # two grabs half a second apart: the camera is live, not a still
        shot = camera_page.evaluate("grab()")
        img = _png(shot["png"])
        errors = np.abs(clip - _blocks(img)).mean(axis=(1, 2, 3))
        best = int(errors.argmin())
        seen.append((best, float(errors[best]), img))
        # The canvas is one of the clip's frames (up to YUV/scaling rounding)...
        assert errors[best] < 6, f"canvas matches no clip frame (best error {errors[best]:.1f})"
        # ...and its mean colour is that frame's (the clip is a lime-green wall, the synthetic one is not).
        np.testing.assert_allclose(shot["mean"], clip[best].mean(axis=(0, 1)), atol=4)
        camera_page.wait_for_timeout(500)

    (i0, e0, img0), (i1, e1, img1) = seen
    assert np.abs(img0.astype(int) - img1.astype(int)).mean() > 0.5 or i0 != i1, "camera frames do not change"
    screenshot(camera_page, "browser_smoke_camera")


def test_synthetic_camera_is_told_apart(camera_browser, site, camera_clip_y4m):
    """The control: Chromium's own pattern (a second browser, open beside the session's) fails the match."""
    with chromium(camera=None) as browser:
        page = new_page(browser)
        cam = _open_camera(page, site)
        assert (cam["width"], cam["height"]) == (640, 480), cam
        img = _png(page.evaluate("grab()")["png"])  # the canvas is 320x240 whatever the camera
        errors = np.abs(_blocks(read_y4m(camera_clip_y4m)) - _blocks(img)).mean(axis=(1, 2, 3))
        assert errors.min() > 30, f"the synthetic pattern matched the clip (error {errors.min():.1f})"


@pytest.fixture
def ws_server():
    """A tiny WebSocket server on 127.0.0.1: echoes text, describes binary JPEG frames."""
    from websockets.sync.server import serve as ws_serve

    def handler(ws):
        for msg in ws:
            if isinstance(msg, str):
                ws.send(json.dumps({"echo": msg, "path": ws.request.path}))
            else:
                img = np.asarray(Image.open(io.BytesIO(msg)).convert("RGB"))
                ws.send(json.dumps({"bytes": len(msg), "size": [img.shape[1], img.shape[0]],
                                    "mean": img.reshape(-1, 3).mean(axis=0).round(2).tolist()}))

    with ws_serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
    thread.join(timeout=5)


def test_websocket_round_trip(camera_page, site, ws_server):
    _open_camera(camera_page, site)
    shot = camera_page.evaluate("grab()")
    replies = camera_page.evaluate("url => wsRoundTrip(url)", ws_server + "/live")
    assert replies[0] == {"echo": "hello", "path": "/live"}, console_log(camera_page)
    frame = replies[1]
    assert frame["size"] == [320, 240] and frame["bytes"] > 1000, frame
    np.testing.assert_allclose(frame["mean"], shot["mean"], atol=3)  # the same picture, JPEG'd
    screenshot(camera_page, "browser_smoke_websocket")


def test_serve_reports_a_server_that_dies():
    crash = [sys.executable, "-c", "import sys; sys.exit('boom: no such library')"]
    with pytest.raises(pytest.fail.Exception, match="exited with status 1.*boom: no such library"):
        with serve(command=crash, timeout=10):
            pass
