"""Explore commands (clusters, similar, gif, map) on a small library of real archive clips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rereel.errors import RereelError

CLIPS = [
    "cc0_mdn_flower_bloom.mp4",
    "ccby_pixwarp_peony_timelapse.avi",
    "cc0_mdn_stream_of_water.mp4",
    "ccby_zwm_tears_of_steel_10s.mp4",
]
# Until rereel.cli imports the explore commands itself, import them before running the app.
RUN = "import sys, rereel.cli.explore; from rereel.cli import main; sys.argv[0] = 'rereel'; main()"


def rereel(*args, check=False, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", RUN, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rereel {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def ranked_names(stdout: str) -> list[str]:
    """Video names of the ranked lines `  1. 0.123  #4 name.mp4 0.00-5.00 s`, in order."""
    return re.findall(r"^\s*\d+\.\s+-?[\d.]+\s+#\d+\s+(\S+)", stdout, re.M)


@pytest.fixture(scope="module")
def library(archive, tmp_path_factory):
    lib = tmp_path_factory.mktemp("explore") / "library"
    rereel("index", *[archive / n for n in CLIPS], "--library", lib, check=True)
    return lib


@pytest.fixture(scope="module")
def shot_ids(library):
    from rereel.library import Library

    with Library(library) as lib:
        return {s["id"]: lib.catalog.video(s["video_id"])["name"] for s in lib.catalog.shots()}


# -- clusters ----------------------------------------------------------------------------------
def test_clusters_writes_grids_videos_and_a_coherent_index(library, tmp_path):
    out = tmp_path / "clusters"
    proc = rereel("clusters", "-o", out, "--library", library, "--max-seconds", "2", check=True)
    assert "groups" in proc.stdout
    groups = sorted(out.glob("group_*.png"))
    assert len(groups) >= 2
    for png in groups:
        with Image.open(png) as im:
            assert im.width >= 900 and im.height >= 180  # three 320-px cells across
        video = png.with_suffix(".mp4")
        from rereel.media import probe

        info = probe(video)
        assert 1.5 <= info.duration <= 2.2 and info.width >= 900
    page = (out / "index.html").read_text()
    for png in groups:
        assert png.name in page and png.with_suffix(".mp4").name in page
    # The two flower time-lapses (different films, same subject) must share a group.
    sections = page.split("<h2 id='g")[1:]
    with_flowers = [s for s in sections if "cc0_mdn_flower_bloom" in s]
    assert len(with_flowers) == 1 and "ccby_pixwarp_peony_timelapse" in with_flowers[0]


def test_fixed_count_is_honoured(library, tmp_path):
    out = tmp_path / "three"
    rereel("clusters", "-o", out, "--library", library, "--count", "3", "--no-video", check=True)
    assert len(list(out.glob("group_*.png"))) == 3
    assert not list(out.glob("*.mp4"))
    sections = (out / "index.html").read_text().split("<h2 id='g")[1:]
    with_flowers = [s for s in sections if "cc0_mdn_flower_bloom" in s]
    assert len(with_flowers) == 1 and "ccby_pixwarp_peony_timelapse" in with_flowers[0]
    # Again into the same folder with fewer groups: no grid of the first run stays under a name
    # the new page does not show (group_03.png showed a group of the run before); a file of the
    # user's own there stays.
    (out / "notes.txt").write_text("mine")
    rereel("clusters", "-o", out, "--library", library, "--count", "2", "--no-video", check=True)
    assert sorted(p.name for p in out.iterdir()) == ["group_01.png", "group_02.png", "index.html", "notes.txt"]


# -- similar -----------------------------------------------------------------------------------
def test_a_frame_of_the_flower_finds_the_flower_shot_first(library, archive, tmp_path):
    from rereel.media import decode_frames

    frame = next(f for f in decode_frames(archive / "cc0_mdn_flower_bloom.mp4") if f.time >= 3.0)
    still = tmp_path / "flower.png"
    Image.fromarray(frame.rgb(480, 270)).save(still)
    grid = tmp_path / "like_flower.png"
    proc = rereel("similar", still, "-o", grid, "--library", library, "--top", "4", check=True)
    assert ranked_names(proc.stdout)[0] == "cc0_mdn_flower_bloom.mp4"
    with Image.open(grid) as im:
        assert im.width > 600


def test_range_query_makes_a_compilation_without_its_own_shot(library, archive, tmp_path):
    from rereel.media import probe

    out = tmp_path / "like_peony.mp4"
    query = f"{archive / 'ccby_pixwarp_peony_timelapse.avi'}@2-5"
    proc = rereel("similar", query, "-o", out, "--library", library, "--top", "3", "--max-shot", "1.5", check=True)
    names = ranked_names(proc.stdout)
    assert len(names) == 3 and "ccby_pixwarp_peony_timelapse.avi" not in names  # the query's shot is left out
    assert names[0] == "cc0_mdn_flower_bloom.mp4"  # the other flower
    info = probe(out)
    assert info.width == 960 and 3 * 1.5 - 0.2 <= info.duration <= 3 * 1.5 + 0.2


def test_shot_id_and_outside_video_queries(library, archive, shot_ids, tmp_path):
    flower = next(i for i, name in shot_ids.items() if name == "cc0_mdn_flower_bloom.mp4")
    proc = rereel("similar", f"shot:{flower}", "-o", tmp_path / "a.png", "--library", library, "--top", "3", check=True)
    names = ranked_names(proc.stdout)
    assert names and "cc0_mdn_flower_bloom.mp4" not in names and names[0] == "ccby_pixwarp_peony_timelapse.avi"
    # A video the library does not hold goes through the indexer's analysis.
    proc = rereel("similar", archive / "pd_pixwarp_roundhay_garden_scene_1888.m4v", "-o", tmp_path / "b.png",
                  "--library", library, "--top", "2", "--min-seconds", "0", check=True)
    assert len(ranked_names(proc.stdout)) == 2


def test_words_go_through_named_imagenet_classes(library, tmp_path):
    proc = rereel("similar", "flower", "-o", tmp_path / "flower.png", "--library", library, "--top", "2", check=True)
    assert "daisy" in proc.stdout  # the classes used are printed
    assert ranked_names(proc.stdout)[0] in {"cc0_mdn_flower_bloom.mp4", "ccby_pixwarp_peony_timelapse.avi"}
    proc = rereel("similar", "water", "-o", tmp_path / "water.png", "--library", library, "--top", "2", check=True)
    assert "fountain" in proc.stdout and "water bottle" in proc.stdout


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("shot:99999", "no shot #99999"),
        ("{tmp}/broken.png", "not a readable image"),
        ("{tmp}/missing.jpg", "no such file"),
        ("xyzzy qwertyuiop", "no ImageNet class matches"),
    ],
)
def test_bad_queries_are_one_line_errors(library, tmp_path, query, message):
    (tmp_path / "broken.png").write_bytes(b"this is not a picture")
    proc = rereel("similar", query.format(tmp=tmp_path), "-o", tmp_path / "x.png", "--library", library)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


# -- gif ---------------------------------------------------------------------------------------
def _white_and_black_in_bottom(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    bottom = rgb[rgb.shape[0] * 2 // 3 :].astype(int)
    white = int(((bottom > 235).all(-1)).sum())
    black = int(((bottom < 25).all(-1)).sum())
    return white, black


def test_gif_has_its_caption_and_stays_under_the_cap(library, archive, tmp_path):
    source = f"{archive / 'cc0_mdn_flower_bloom.mp4'}@1-4"
    plain, captioned = tmp_path / "plain.gif", tmp_path / "captioned.gif"
    rereel("gif", source, "-o", plain, "--width", "360", "--max-mb", "0.6", check=True)
    proc = rereel("gif", source, "-o", captioned, "--width", "360", "--max-mb", "0.6", "--caption", "when it finally opens",
                  check=True)
    assert "MB" in proc.stdout
    for gif in (plain, captioned):
        assert gif.stat().st_size <= 600_000
        with Image.open(gif) as im:
            assert im.n_frames >= 12 and im.is_animated
            delays = []
            for k in range(im.n_frames):  # as a browser reads them: the GIF's own delays
                im.seek(k)
                delays.append(im.info["duration"])
        # The 3 s range plays in 3 s (80 ms frames at "12 fps" played it 4% fast).
        assert abs(sum(delays) - 3000) <= 90, (sum(delays), delays[:6])
    white_plain, black_plain = _white_and_black_in_bottom(plain)
    white_cap, black_cap = _white_and_black_in_bottom(captioned)
    assert white_cap > white_plain + 500 and black_cap > black_plain + 50  # letters and their outline


def test_a_caption_word_wider_than_the_gif_is_broken_not_dropped(archive, tmp_path):
    """One long word (a hashtag) fits no whole-word wrap at a small width: the GIF came out with
    no caption at all."""
    source = f"{archive / 'cc0_mdn_flower_bloom.mp4'}@1-2"
    plain, captioned = tmp_path / "plain.gif", tmp_path / "captioned.gif"
    rereel("gif", source, "-o", plain, "--width", "128", check=True)
    rereel("gif", source, "-o", captioned, "--width", "128", "--caption", "#supercalifragilisticexpialidociousmonday",
           check=True)
    (white_plain, black_plain), (white_cap, black_cap) = map(_white_and_black_in_bottom, (plain, captioned))
    assert white_cap > white_plain + 100 and black_cap > black_plain + 20, (white_plain, white_cap, black_plain, black_cap)


def test_a_caption_with_characters_the_font_lacks_is_refused_before_any_frame(archive, tmp_path):
    """Emoji and CJK came out as empty boxes, without a word. Accented Latin letters, dashes and
    curly quotes are in the font and pass."""
    from rereel.errors import RereelError
    from rereel.explore.gif import check_caption

    source = f"{archive / 'cc0_mdn_flower_bloom.mp4'}@1-2"
    proc = rereel("gif", source, "-o", tmp_path / "x.gif", "--caption", "straße 🎬 café — 你好")
    assert proc.returncode == 2 and "has no 🎬 你 好;" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.gif").exists()
    check_caption("Straße, café, naïve — “quoted” ’n’ ½")
    with pytest.raises(RereelError, match="has no Π"):
        check_caption("Πάμε")


def test_gif_shrinks_to_a_tight_cap_or_says_why(library, shot_ids, tmp_path):
    steel = next(i for i, name in shot_ids.items() if name == "ccby_zwm_tears_of_steel_10s.mp4")
    small = tmp_path / "small.gif"
    rereel("gif", f"#{steel}", "-o", small, "--library", library, "--max-mb", "0.25", check=True)
    assert small.stat().st_size <= 250_000
    proc = rereel("gif", f"#{steel}", "-o", tmp_path / "tiny.gif", "--library", library, "--max-mb", "0.05")
    assert proc.returncode in (0, 2)
    if proc.returncode == 2:
        assert "cannot fit the GIF" in proc.stderr
    else:
        assert (tmp_path / "tiny.gif").stat().st_size <= 50_000


def test_gif_pair_puts_target_and_match_side_by_side(archive, tmp_path):
    from rereel.timeline import build_timeline, write_timeline

    target = archive / "cc0_mdn_stream_of_water.mp4"
    match = archive / "cc0_mdn_flower_bloom.mp4"
    from rereel.match.choose import Candidate, ShotMatch
    from rereel.match.score import Placement

    chosen = Candidate(shot_id=1, video_id=1, path=str(match), name=match.name, fps=29.97, video_duration=5.1,
                       placement=Placement(0.5, 1.0, 3.0, True, 0.5, 0.5, 0.5))
    shot = ShotMatch(index=0, start_frame=0, end_frame=60, start=0.0, end=2.0, black=False, suggestions=[chosen],
                     chosen=chosen)
    meta = {"path": str(target), "fps": 30.0, "width": 480, "height": 360, "duration": 3.2, "frames": 96, "has_audio": False}
    timeline = write_timeline(build_timeline("t", meta, [shot], {}), tmp_path / "remake.otio")
    out = tmp_path / "pair.gif"
    rereel("gif", "--pair", f"{timeline}:1", "-o", out, "--width", "200", check=True)
    with Image.open(out) as im:
        # Two panes of the target's 4:3 shape side by side (each pane's width rounded to even).
        assert abs(im.width - 2 * im.height * 480 / 360) <= 4, im.size
        rgb = np.asarray(im.convert("RGB")).astype(int)
    left, right = rgb[:, : rgb.shape[1] // 2], rgb[:, rgb.shape[1] // 2 :]
    # The flower (red) is on the right, the stream (no red) on the left.
    red = lambda a: int(((a[..., 0] > 150) & (a[..., 1] < 80)).sum())  # noqa: E731
    assert red(right) > 10 * max(1, red(left))
    proc = rereel("gif", "--pair", f"{timeline}:7", "-o", tmp_path / "none.gif")
    assert proc.returncode == 2 and "there is no shot 7" in proc.stderr


# -- map ---------------------------------------------------------------------------------------
def test_map_writes_a_png(library, tmp_path):
    out = tmp_path / "map.png"
    rereel("map", "-o", out, "--library", library, check=True)
    with Image.open(out) as im:
        assert im.width >= 1200 and im.height >= 1200


# -- pieces without footage --------------------------------------------------------------------
def test_silhouette_matches_a_hand_computed_case():
    from rereel.explore.clustering import silhouette

    # Two tight pairs on perpendicular axes: a is ~0, b is 1, so silhouette is ~1.
    x = np.array([[1, 0.01], [1, -0.01], [0.01, 1], [-0.01, 1]], np.float64)
    assert silhouette(x, np.array([0, 0, 1, 1])) > 0.99
    assert silhouette(x, np.array([0, 1, 0, 1])) < 0


def test_tsne_separates_two_groups():
    from rereel.explore.tsne import tsne

    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.05, (30, 20)) + np.eye(20)[0]
    b = rng.normal(0, 0.05, (30, 20)) + np.eye(20)[1]
    y = tsne(np.concatenate([a, b]), iterations=400)
    within = np.linalg.norm(y[:30] - y[:30].mean(0), axis=1).mean()
    between = np.linalg.norm(y[:30].mean(0) - y[30:].mean(0))
    assert between > 3 * within


def test_word_matching_prefers_exact_names():
    from rereel.explore.words import match_classes

    assert match_classes("daisy")[0].name == "daisy"
    assert match_classes("sports cars")[0].name == "sports car"
    with pytest.raises(RereelError):
        match_classes("xyzzy")
    with pytest.raises(RereelError, match="'🎬': no words in it"):  # an emoji alone was called "empty"
        match_classes("🎬")


def test_a_long_word_query_is_quick_or_refused_in_a_short_line():
    """Found by trying the web archive: "zebra," 2000 times took 35 s (each phrase looked for in
    every class, under the archive's lock), 3000 words 56 s, and a refusal repeated the whole query."""
    import time

    from rereel.explore.words import match_classes

    t = time.perf_counter()
    assert match_classes("zebra," * 2000)[0].name == "zebra" and match_classes("zebra " * 3000)[0].name == "zebra"
    assert time.perf_counter() - t < 2.0
    words = " ".join(f"word{i}" for i in range(500))
    with pytest.raises(RereelError, match="500 different words; a word query takes at most 40") as e:
        match_classes(words)
    assert len(str(e.value)) < 200
    with pytest.raises(RereelError) as e:
        match_classes("qqqq " * 5000)
    assert len(str(e.value)) < 400


def test_a_query_too_long_for_a_file_name_is_words_not_an_error():
    """`rereel similar "zebra,zebra,..."` (12 KB) stopped at "File name too long", repeating the
    query: the command first looks whether the query names a file."""
    from rereel.media.find import named_files

    assert named_files("zebra," * 2000) == [] and named_files("a\0b@1-2") == []


def test_a_phrase_no_class_names_is_searched_word_by_word():
    """`rereel similar "a horse galloping"`, the first example of its --help, was refused: no
    ImageNet class name holds that phrase. A synonym's head word ("river horse") is no longer
    taken as strongly as a class's own name."""
    from rereel.explore.words import match_classes

    names = [m.name for m in match_classes("a horse galloping")]
    assert names and names[0] == "sorrel" and "hippopotamus" in names[1:]
    assert [m.name for m in match_classes("horse")] == names
    assert [m.name for m in match_classes("daisy")] == ["daisy"]  # a whole name still wins alone
    # A phrase that matched, if only classes an earlier one found, is not split into its words.
    assert {m.name for m in match_classes("dog, hot dog")} <= {m.name for m in match_classes("dog")} | {
        m.name for m in match_classes("hot dog")}
