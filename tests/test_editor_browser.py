"""The remake editor in real headless Chromium against a real `rereel serve`: the program monitor
(play through a cut, J/K/L, arrows, the row following the playhead), undo and redo across a
reload, lock then re-match, split and join, fill a black shot, and one numbering everywhere (page,
OTIO, EDL, `rereel choose`). Each new state is saved to out/screens/editor/ for a person to look at.

The target is the archive's Tears of Steel clip at 320x180 followed by 1.5 s of black
(test_editor.make_target): five shots and a black one, against the web test library.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from browser import camera_browser, camera_clip_y4m, camera_page  # noqa: F401 (pytest fixtures)
from browser import OUT, console_log, serve
from test_editor import matched_copy

SCREENS = OUT / "screens" / "editor"


def shoot(page, name: str) -> Path:
    """The viewport as the editor sees it (the monitor is sticky: a full-page shot would misplace it),
    once the thumbnails and the monitor's frame have loaded."""
    page.wait_for_function("() => [...document.querySelectorAll('.tshot .target img')].every(i => i.complete)"
                           " && document.querySelector('#monitor video.on').readyState >= 2", timeout=30_000)
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def site(web_library, archive, tmp_path_factory):
    """A server on a copy of a matched project (test_editor.matched_copy): (base URL, project id)."""
    work, pid, target = matched_copy(web_library, archive, tmp_path_factory)
    with serve(["--library", str(web_library), "--allow", str(target.parent), "--workdir", str(work)],
               timeout=60) as url:
        yield url, pid


def project(site) -> dict:
    url, pid = site
    return get_json(f"{url}/api/projects/{pid}")


def open_editor(page, site):
    url, pid = site
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{url}/remake?project={pid}")
    page.wait_for_selector(".tshot")
    page.wait_for_function("() => document.querySelector('#monitor video.on').readyState >= 2", timeout=60_000)


def monitor(page) -> tuple[float, int]:
    return page.evaluate("() => [Number(document.querySelector('#monitor').dataset.time),"
                         " Number(document.querySelector('#monitor').dataset.shot)]")


def test_monitor_plays_through_a_cut_and_follows_with_keys(camera_page, site):
    page = camera_page
    open_editor(page, site)
    shots = project(site)["shots"]
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the monitor stays in view
    assert page.locator("#monitor").bounding_box()["y"] < 120
    # Start just before the first cut and play across it.
    page.keyboard.press("ArrowRight")
    assert monitor(page)[1] == 1 and monitor(page)[0] == pytest.approx(shots[1]["start"], abs=0.01)
    page.keyboard.press("ArrowLeft")
    assert monitor(page)[1] == 0 and monitor(page)[0] == pytest.approx(0, abs=0.01)
    page.locator("#strip").click(position={"x": 2, "y": 10})
    page.keyboard.press("Space")
    page.wait_for_function("() => Number(document.querySelector('#monitor').dataset.shot) >= 1", timeout=30_000)
    t, shot = monitor(page)
    assert t >= shots[1]["start"] - 0.05 and shot == 1
    src = page.evaluate("() => document.querySelector('#monitor video.on').src")
    assert "/shots/1/preview.mp4" in src  # the shown shot changed at the cut
    assert page.locator(".tshot.current").get_attribute("data-target-shot") == "1"
    box = page.locator(".tshot.current").bounding_box()
    assert box["y"] >= page.locator("#monitor").bounding_box()["y"] + 100  # below the sticky monitor, in view
    assert "#2 " in page.text_content("#mon-tc")
    shoot(page, "01_playing_after_cut")

    page.keyboard.press("k")
    t1, _ = monitor(page)
    time.sleep(0.4)
    assert monitor(page)[0] == pytest.approx(t1, abs=0.01)  # K stops
    page.keyboard.press("l")
    page.wait_for_function(f"() => Number(document.querySelector('#monitor').dataset.time) > {t1 + 0.3}", timeout=15_000)
    page.keyboard.press("k")
    t2, _ = monitor(page)
    page.keyboard.press("j")  # backwards
    page.wait_for_function(f"() => Number(document.querySelector('#monitor').dataset.time) < {t2 - 0.3}", timeout=15_000)
    page.keyboard.press("k")
    n = monitor(page)[1]
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => Number(document.querySelector('#monitor').dataset.shot) === {n + 1}")
    assert monitor(page)[0] == pytest.approx(shots[n + 1]["start"], abs=0.05)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => Number(document.querySelector('#monitor').dataset.shot) === {n}")
    shoot(page, "02_keys")
    page.check("#mon-sbs")  # the target beside the remake: the whole pair clip, twice as wide
    assert page.locator("#screen").bounding_box()["width"] == pytest.approx(640, abs=2)
    shoot(page, "02b_side_by_side")
    page.uncheck("#mon-sbs")
    assert "pageerror" not in console_log(page), console_log(page)


def test_swap_undo_redo_across_a_reload(camera_page, site):
    page = camera_page
    open_editor(page, site)
    row = page.locator(".tshot[data-target-shot='2']")
    row.scroll_into_view_if_needed()
    before = project(site)["shots"][2]
    row.locator(".suggestions .shot[data-suggestion='1']").click()
    page.wait_for_selector(".tshot[data-target-shot='2'] .suggestions .shot.current[data-suggestion='1']")
    # The swap does not autoplay: the monitor waits on the swapped shot.
    page.wait_for_function("() => document.querySelector('#monitor').dataset.shot === '2'")
    assert page.evaluate("() => document.querySelector('#monitor video.on').paused")
    shoot(page, "03_swapped")
    page.reload()
    page.wait_for_selector(".tshot")
    page.keyboard.press("Control+z")
    page.wait_for_selector(".tshot[data-target-shot='2'] .suggestions .shot.current[data-suggestion='0']")
    assert project(site)["shots"][2]["shot_id"] == before["shot_id"]
    shoot(page, "04_undone")
    page.reload()
    page.wait_for_selector(".tshot")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector(".tshot[data-target-shot='2'] .suggestions .shot.current[data-suggestion='1']")
    assert project(site)["shots"][2]["chosen"] == 1
    shoot(page, "05_redone")
    assert "pageerror" not in console_log(page), console_log(page)


def test_lock_rematch_split_join_fill(camera_page, site):
    page = camera_page
    open_editor(page, site)
    locked = project(site)["shots"][1]
    page.click(".tshot[data-target-shot='1'] button[data-lock]")
    page.wait_for_selector(".tshot.locked[data-target-shot='1']")
    page.fill("#seed", "9")
    page.fill("#w-colour", "0.6")
    page.click("#rematch")
    page.wait_for_function("() => document.querySelector('#toast').textContent.includes('re-matched')")
    after = project(site)["shots"]
    assert (after[1]["shot_id"], after[1]["chosen"]) == (locked["shot_id"], locked["chosen"]) and after[1]["locked"]
    shoot(page, "06_locked_rematched")

    # Split the longest shot at the playhead (moved into its middle), then join the pieces again.
    longest = max(after, key=lambda s: s["end"] - s["start"])
    box = page.locator("#strip").bounding_box()
    total = after[-1]["end"]
    page.mouse.click(box["x"] + box["width"] * (longest["start"] + longest["end"]) / 2 / total, box["y"] + 10)
    page.wait_for_function(f"() => document.querySelector('#monitor').dataset.shot === '{longest['index']}'")
    page.click("#split")
    page.wait_for_function(f"() => document.querySelectorAll('.tshot').length === {len(after) + 1}")
    split = project(site)["shots"]
    assert [s["number"] for s in split] == list(range(1, len(after) + 2))
    numbers = page.eval_on_selector_all(".tshot", "rows => rows.map(r => r.dataset.number + ' ' + r.dataset.timecode)")
    assert numbers == [f"{s['number']} {s['timecode']}" for s in split]
    assert page.locator("#strip .seg").count() == len(after) + 1
    shoot(page, "07_split")
    page.click(f".tshot[data-target-shot='{longest['index']}'] button[data-join]")
    page.wait_for_function(f"() => document.querySelectorAll('.tshot').length === {len(after)}")
    assert [(s["start_frame"], s["end_frame"]) for s in project(site)["shots"]] == \
        [(s["start_frame"], s["end_frame"]) for s in after]
    shoot(page, "08_joined")

    # The black shot has suggestions: fill it from the archive, then set it back to black.
    black = page.locator(".tshot.black").last
    index = black.get_attribute("data-target-shot")
    black.scroll_into_view_if_needed()
    assert black.locator(".suggestions .shot").count() >= 1
    black.locator(".suggestions .shot[data-suggestion='0']").click()
    page.wait_for_selector(f".tshot.black.filled[data-target-shot='{index}']")
    assert project(site)["shots"][int(index)]["chosen"] == 0
    shoot(page, "09_black_filled")
    page.click(f".tshot[data-target-shot='{index}'] button[data-black]")
    page.wait_for_selector(f".tshot.black:not(.filled)[data-target-shot='{index}']")
    assert "pageerror" not in console_log(page), console_log(page)


def test_one_numbering_on_the_page_in_the_otio_the_edl_and_choose(camera_page, site, tmp_path):
    """Shot N is the N-th target shot in time order (black ones counted), labelled with its start's
    timecode at the target's rate; every place shows the same pairs."""
    from typer.testing import CliRunner

    from rereel.cli import app

    page = camera_page
    open_editor(page, site)
    url, pid = site
    on_page = page.eval_on_selector_all(".tshot", "rows => rows.map(r => [Number(r.dataset.number), r.dataset.timecode])")
    assert page.text_content(".tshot[data-target-shot='0'] .tc").startswith(f"#1 {on_page[0][1]}")
    otio_path = tmp_path / "remake.otio"
    with urllib.request.urlopen(f"{url}/api/projects/{pid}/files/remake.otio") as r:
        otio_path.write_bytes(r.read())
        tl = json.loads(otio_path.read_text())
    items = [c["metadata"]["rereel"] for c in tl["tracks"]["children"][0]["children"]
             if "hold_of" not in c["metadata"].get("rereel", {"hold_of": 0})]
    in_otio = [[i.get("number"), i.get("timecode")] for i in items]
    # Independently: the target's frame count of each shot at 24 fps, counted from frame 0.
    rate = 24
    expected = [[n, f"00:00:{i['target_start_frame'] // rate:02d}:{i['target_start_frame'] % rate:02d}"]
                for n, i in enumerate(items, 1)]
    with urllib.request.urlopen(f"{url}/api/projects/{pid}/files/remake.edl") as r:
        edl = r.read().decode()
    in_edl = [[int(m[1]), m[2]] for m in re.finditer(r"^\* shot (\d+) (\d\d:\d\d:\d\d:\d\d)$", edl, re.M)]
    runner = CliRunner()
    in_choose = []
    for n, _ in on_page:
        out = runner.invoke(app, ["choose", str(otio_path), str(n)])
        assert out.exit_code == 0, out.output
        m = re.search(r"shot (\d+) \((\d\d:\d\d:\d\d:\d\d)\)", out.output)
        in_choose.append([int(m[1]), m[2]])
    assert on_page == expected
    assert in_otio == expected, "OTIO metadata (number, timecode) differs from the page"
    assert in_edl == expected, "EDL comments differ from the page"
    assert in_choose == expected, "`rereel choose` differs from the page"


def test_a_stale_tab_is_told_and_shown_the_remake_as_it_now_is(camera_page, site):
    """Found by trying two tabs: after another tab split a shot, this tab's click on a suggestion
    of "shot 6" swapped it into another shot. The click is now refused, said, and the page
    redrawn with the shots as they are; nothing changed on disk."""
    page = camera_page
    open_editor(page, site)
    url, pid = site
    shown = project(site)
    rows = page.locator(".tshot").count()
    # Another tab (here the API) splits the longest shot: every shot after it is numbered one up.
    longest = max(shown["shots"], key=lambda s: s["end_frame"] - s["start_frame"])
    request = urllib.request.Request(f"{url}/api/projects/{pid}/split", method="POST",
                                     data=json.dumps({"frame": (longest["start_frame"] + longest["end_frame"]) // 2}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=60).read()
    after_split = project(site)
    last = page.locator(".tshot").last
    last.scroll_into_view_if_needed()
    last.locator(".suggestions .shot[data-suggestion='1']").click()
    page.wait_for_function("() => document.querySelector('#toast').textContent.includes('changed elsewhere')")
    page.wait_for_function(f"() => document.querySelectorAll('.tshot').length === {rows + 1}")
    assert project(site)["shots"] == after_split["shots"]  # the click changed nothing
    shoot(page, "10_stale_tab_reloaded")
    assert "pageerror" not in console_log(page), console_log(page)
