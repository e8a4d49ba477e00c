"""The web app's pages in real headless Chromium (Debian's, driven by Playwright), against a real
`rereel serve`, with the fake webcam playing a real clip. Every page's screenshot is saved to
out/screenshots/ for a person to look at."""

from __future__ import annotations

import json
import time
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest

from browser import camera_browser, camera_clip_y4m, camera_page  # noqa: F401 (pytest fixtures)
from browser import CAMERA_CLIP, console_log, screenshot, serve

TARGET = "sintel_trailer_320x180.webm"


@pytest.fixture(scope="module")
def app_url(web_library, media, see_models, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    with serve(["--library", str(web_library), "--allow", str(media / "trailers"), "--models", str(see_models),
                "--workdir", str(work)], timeout=60) as url:
        yield url


def shoot(page, name: str) -> None:
    """Screenshot from the top: a full-page shot taken scrolled down draws the sticky header mid-page."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def test_browse_then_similar(camera_page, app_url):
    page = camera_page
    page.goto(app_url + "/")
    page.wait_for_selector(".video-block .shot")
    page.wait_for_selector(".group .shot", timeout=120_000)  # the groups are computed at start-up
    first = page.locator(".video-block[open] .shot").first
    first.hover()  # hovering plays the shot
    page.wait_for_function("() => { const v = document.querySelector('.video-block .shot video');"
                           " return v && v.readyState >= 2 && v.currentTime > 0; }", timeout=30_000)
    shoot(page, "archive")
    shot_id = first.get_attribute("data-shot")
    first.click()
    page.wait_for_selector("#results:not(.hidden) #results-shots .shot")
    title = page.text_content("#results-title")
    assert f"#{shot_id}" in title
    hits = page.locator("#results-shots .shot")
    assert hits.count() >= 5 and shot_id not in [hits.nth(i).get_attribute("data-shot") for i in range(hits.count())]
    shoot(page, "archive_similar")
    page.fill("#q", "flower")
    page.click("#words button")
    page.wait_for_function("() => document.querySelector('#results-title').textContent.includes('flower')")
    assert page.locator("#results-shots .shot").count() >= 5
    assert "pageerror" not in console_log(page), console_log(page)


def test_remake_swap_render(camera_page, app_url, media):
    page = camera_page
    page.goto(app_url + "/remake")
    target = str(media / "trailers" / TARGET)
    page.wait_for_selector(f"#target-path option[value='{target}']", state="attached")
    page.select_option("#target-path", value=target)
    page.click("#start")
    page.wait_for_selector(".tshot", timeout=300_000)
    pid = parse_qs(urlparse(page.url).query)["project"][0]
    assert page.input_value("#seed") == "0"  # as matched: re-matching unchanged changes nothing
    row = page.locator(".tshot:not(.black)").first
    index = int(row.get_attribute("data-target-shot"))
    shoot(page, "remake_timeline")

    row.locator(".suggestions .shot[data-suggestion='1']").click()
    page.wait_for_selector(f".tshot[data-target-shot='{index}'] .suggestions .shot.current[data-suggestion='1']")
    swapped = next(s for s in get_json(f"{app_url}/api/projects/{pid}")["shots"] if s["index"] == index)
    assert swapped["chosen"] == 1
    # The program monitor moves to the swapped shot, paused (no autoplay), and shows its new pair clip.
    page.wait_for_function(f"() => document.querySelector('#monitor').dataset.shot === '{index}'")
    page.wait_for_function("() => document.querySelector('#monitor video.on').readyState >= 2", timeout=60_000)
    assert page.evaluate("() => document.querySelector('#monitor video.on').paused")

    page.click("#render-standalone")
    page.wait_for_selector("#render-box:not(.hidden)", timeout=300_000)
    page.wait_for_function("() => document.querySelector('#render-video').readyState >= 2", timeout=60_000)
    assert page.locator("#downloads a", has_text="remake MP4").count() == 1
    shoot(page, "remake_rendered")
    # The timeline the render came from, as downloaded, holds the swapped shot.
    with urllib.request.urlopen(f"{app_url}/api/projects/{pid}/files/remake.otio") as r:
        otio = json.load(r)
    clips = otio["tracks"]["children"][0]["children"]
    chosen = next(c["metadata"]["rereel"] for c in clips if c["metadata"]["rereel"]["target_shot"] == index)
    assert chosen["chosen"] == 1 and chosen["shot_id"] == swapped["shot_id"]
    # An edit after the render: the render still plays and downloads, marked out of date.
    assert page.locator("#downloads a.stale").count() == 0 and page.inner_text("#render-box h2") == "Render"
    row.locator(".suggestions .shot[data-suggestion='0']").click()
    page.wait_for_selector("#downloads a.stale", timeout=30_000)
    assert page.locator("#downloads a.stale").inner_text() == "remake MP4 (out of date)"
    assert "out of date" in page.inner_text("#render-box h2")
    shoot(page, "remake_render_out_of_date")

    page.once("dialog", lambda dialog: dialog.accept())  # "Delete this project?"
    page.click("#delete-project")
    page.wait_for_selector("#project.hidden", state="attached")
    assert pid not in [p["id"] for p in get_json(f"{app_url}/api/projects")["projects"]]
    assert "pageerror" not in console_log(page), console_log(page)


def test_mirror_matches_the_camera_and_reports_latency(camera_page, app_url):
    page = camera_page
    page.goto(app_url + "/mirror")
    page.wait_for_function("() => document.querySelector('#stats').dataset.fps > 0", timeout=60_000)
    # The fake camera plays a clip the library holds: the mirror finds that clip.
    page.wait_for_function(f"() => document.querySelector('#match-label').textContent.includes('{CAMERA_CLIP[1]}')",
                           timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('img.layer')].some(i => i.style.opacity == '1' && i.naturalWidth > 0)")
    time.sleep(3)  # a few seconds of frames for the figures and the GIF
    stats = page.text_content("#stats")
    assert "frames/s" in stats and "p95" in stats and float(page.get_attribute("#stats", "data-latency")) > 0
    page.fill("#caption", "same energy")
    page.click("#capture")
    page.wait_for_function("() => document.querySelector('#gif').naturalWidth > 0", timeout=60_000)
    shoot(page, "mirror")
    assert "pageerror" not in console_log(page), console_log(page)


def test_learning_to_see_live_shows_the_model_output(camera_page, app_url):
    page = camera_page
    page.goto(app_url + "/see")
    page.wait_for_selector("#model option[value='flowers']", state="attached")
    page.wait_for_function("() => document.querySelector('#stats').dataset.fps > 0", timeout=60_000)
    page.locator("#smooth").fill("0.8")
    page.wait_for_function("() => document.querySelector('#seen-label').textContent.includes('0.80')")
    # Frames go on after the change (they wait while the model is set again, then resume).
    shown = page.get_attribute("#seen", "src")
    page.wait_for_function(f"() => document.querySelector('#seen').src !== {json.dumps(shown)}", timeout=10_000)
    # What it shows is the model's picture: as tall as the model (64 px), and not blank.
    # Each frame replaces the image's source: measure one that has loaded (naturalWidth > 0).
    size, spread = page.wait_for_function("""() => {
        const img = document.querySelector('#seen'), c = document.createElement('canvas');
        if (!img.complete || !img.naturalWidth) return false;
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let s = 0, s2 = 0, n = d.length / 4;
        for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; s += y; s2 += y * y; }
        return [[img.naturalWidth, img.naturalHeight], Math.sqrt(s2 / n - (s / n) ** 2)];
    }""", timeout=30_000).json_value()
    assert min(size) == 64 and spread > 2, (size, spread)
    shoot(page, "see")
    assert "pageerror" not in console_log(page), console_log(page)
