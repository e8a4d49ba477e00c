"""Names, places and files users really have, tried from the outside: a name with brackets, an
output under a file or with a long name, a file replaced under its own name, a timeline edited
by hand with relative paths, a still image in an archive folder, a sampling rate of 0.

Each case was a real failure before it was fixed: names lost their brackets (Rich read them as
markup) or ended the run in a traceback; an output under a file was a traceback after the
whole analysis; a re-exported file kept its old shots, which were then rendered from the new
file's pictures; a hand-edited timeline's relative paths were read from the current folder.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from fractions import Fraction
from pathlib import Path

import av
import pytest
import numpy as np
from PIL import Image

from conftest import require_media
from test_first_contact import cli, refused, sintel_timeline, timeline  # noqa: F401  (fixtures)

A, B = "ccby_intel_gifpreview_person_bicycle_car_detection.mp4", "pd_tmh_vp9_tractor.webm"  # two small clips


def durations(path: Path) -> float:
    """Seconds of a file, read by PyAV directly (not through rereel's probe)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base) if s.duration else c.duration / 1e6


def test_names_with_brackets_are_printed_as_they_are(cli, tmp_path):
    name = "my clip [final] été :fire:.mp4"  # markup, and an emoji code
    shutil.copy(require_media("archive", A), tmp_path / name)
    proc = cli("index", tmp_path / name, "--library", tmp_path / "lib [v2]")
    assert proc.returncode == 0, proc.stderr
    assert f"indexed {tmp_path / name}" in proc.stderr  # the file's line, brackets kept
    assert f"library {tmp_path / 'lib [v2]'}" in proc.stdout
    info = cli("info", "--library", tmp_path / "lib [v2]")  # its table wraps a long name: the words are checked
    assert "lib [v2]" in info.stdout and "[final]" in info.stdout and ":fire:" in info.stdout and "\N{FIRE}" not in info.stdout
    # A closing tag with nothing to close was a MarkupError traceback (exit 1).
    refused(cli("remake", tmp_path / "old[/]new.webm", "-o", tmp_path / "o.mp4", "--library", tmp_path / "lib [v2]"),
            str(tmp_path / "old[/]new.webm"), "no such file")


def test_index_refuses_a_sampling_rate_of_zero_before_making_a_library(cli, tmp_path):
    refused(cli("index", require_media("archive", A), "--sample-fps", "0", "--library", tmp_path / "lib"),
            "--sample-fps", "more than 0")
    assert list(tmp_path.iterdir()) == []


def test_index_fails_a_still_image_and_goes_on(cli, tmp_path):
    folder = tmp_path / "footage"
    folder.mkdir()
    Image.new("RGB", (320, 180), (200, 50, 50)).save(folder / "still.png")
    Image.new("RGB", (320, 180), (50, 200, 50)).save(folder / "still.gif")  # .gif is a video extension
    frames = [Image.new("RGB", (320, 180), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    shutil.copy(require_media("archive", A), folder / A)
    proc = cli("index", folder / "still.png", folder, "--library", tmp_path / "lib")  # a folder finds videos by name
    assert proc.returncode == 1
    assert f"error: {folder / 'still.png'}: a still image (png), not a video" in proc.stderr
    assert f"error: {folder / 'still.gif'}: a video of a single frame" in proc.stderr
    assert "indexed 2, skipped 0, failed 2" in proc.stdout  # the clip and the moving GIF


def test_an_unknown_encoder_is_named_as_unknown_not_offered_as_a_reembed(cli, tmp_path):
    assert cli("index", require_media("archive", A), "--library", tmp_path / "lib").returncode == 0
    line = refused(cli("index", require_media("archive", B), "--encoder", "nope", "--library", tmp_path / "lib"),
                   "unknown encoder 'nope'", "effnet-lite0")
    assert "reembed" not in line


def test_a_text_file_named_as_footage_is_refused(cli, tmp_path):
    """FFmpeg's tty demuxer reads any text file over a few KB as video (ANSI art at 640x400):
    rereel's own credits files were indexed, and remade, as films."""
    text = tmp_path / "remake.credits.txt"
    text.write_text("".join(f"line {i}: archive footage used, with its licence and source\n" for i in range(300)))
    refused(cli("index", text, "--library", tmp_path / "lib"), str(text), "a text file, not a video")
    refused(cli("remake", text, "-o", tmp_path / "r.mp4", "--library", tmp_path / "lib"), str(text), "a text file, not a video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remake.credits.txt"]


def test_a_name_longer_than_the_file_system_takes_is_one_line(cli, tmp_path, timeline):  # noqa: F811
    """A path part over 255 bytes was an OSError traceback in every command."""
    long = tmp_path / ("d" * 260)
    refused(cli("info", "--library", long), str(long), "File name too long")
    line = refused(cli("render", timeline, "-o", f"{long}.mp4"), f"{long}.mp4")
    assert "a file name is at most 255 bytes" in line or "File name too long" in line, line
    # A video name that fits, whose credits file beside it would not: refused before the render
    # (the video was made, then the command failed on OUT.credits.txt).
    fits = tmp_path / ("b" * 248 + ".mp4")
    refused(cli("render", timeline, "-o", fits), f"{'b' * 248}.credits.txt", "a file name is at most 255 bytes")
    assert not fits.exists()
    refused(cli("remake", f"{long}.mp4", "-o", tmp_path / "r.mp4", "--library", tmp_path / "lib"), "File name too long")


def test_outputs_over_the_footage_they_read_are_refused(cli, tmp_path):
    """`similar`, `gif` and `remake` wrote over a file they read, even an indexed archive film
    (`similar -o` over it replaced it with the compilation while reading from it); a folder by
    the output's name was a traceback that left a temporary file beside it."""
    clip = tmp_path / "archive.mp4"
    shutil.copy(require_media("archive", A), clip)
    before = clip.read_bytes()
    assert cli("index", clip, "--library", tmp_path / "lib").returncode == 0
    lib = ("--library", tmp_path / "lib")
    what = "this command reads that file; writing the output there would replace it"
    refused(cli("similar", "a dog", "-o", clip, *lib), str(clip), what)
    shutil.copy(clip, tmp_path / "moment.gif")  # a GIF only by name: the check comes before any decode
    refused(cli("gif", f"{tmp_path / 'moment.gif'}@0-1", "-o", tmp_path / "moment.gif"), "moment.gif", what)
    refused(cli("remake", require_media("archive", B), "-o", clip, "--timeline", tmp_path / "t.otio", *lib), str(clip), what)
    (tmp_path / "grid.png").mkdir()
    refused(cli("similar", "#1", "-o", tmp_path / "grid.png", *lib), "grid.png: is a folder")
    assert clip.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.mp4", "grid.png", "lib", "moment.gif"]
    assert list((tmp_path / "grid.png").iterdir()) == []


def test_an_empty_path_and_a_timeline_named_twice_are_refused(cli, tmp_path, monkeypatch):
    """`index ""` (an unset shell variable) indexed everything under the current folder; the
    same --timeline twice was written twice."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(require_media("archive", A), tmp_path / "here.mp4")
    refused(cli("index", "", "--library", tmp_path / "lib"), "an empty PATH")
    refused(cli("remake", tmp_path / "here.mp4", "-o", tmp_path / "r.mp4", "--timeline", "t.otio",
                "--timeline", "./t.otio", "--library", tmp_path / "lib"), "t.otio: named for two --timeline outputs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here.mp4"]


def test_a_library_being_filled_is_never_taken_away_by_a_run_that_fails(cli, tmp_path):
    """A run that fails as it starts (here an unknown encoder) fails before it makes or touches
    a library: none is left behind, and one another run made meanwhile stays as it is (a
    clean-up after the failure could not tell it from one of its own). A library folder under a
    file is named as such."""
    clip = require_media("archive", A)
    for name in ("lib#1", "50%41"):  # names that are no URIs as they are
        refused(cli("index", clip, "--encoder", "nope", "--library", tmp_path / name), "unknown encoder 'nope'")
        assert not (tmp_path / name).exists()
        assert cli("index", clip, "--library", tmp_path / name).returncode == 0
        refused(cli("index", require_media("archive", B), "--encoder", "nope", "--library", tmp_path / name),
                "unknown encoder 'nope'")
        assert "1 video" in cli("info", "--library", tmp_path / name).stdout
    (tmp_path / "notes.txt").write_text("a file")
    refused(cli("index", clip, "--library", tmp_path / "notes.txt" / "lib"), "notes.txt")


def test_a_frame_held_longer_than_a_second_is_found_at_any_time_it_shows(tmp_path):
    """frame_at looked back one second for the frame on screen: a 0.5 fps video (a slideshow)
    had 'no frame at 1.5 s'. Frames made here in known colours."""
    from rereel.learn.frames import frame_at
    from rereel.media import VideoWriter

    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]
    with VideoWriter(tmp_path / "slides.mp4", 64, 48, 0.5) as w:
        for c in colours:
            w.write(np.full((48, 64, 3), c, np.uint8))
    for t, c in ((1.5, 0), (3.5, 1), (4.0, 2), (5.9, 2)):
        mean = frame_at(f"{tmp_path / 'slides.mp4'}@{t}", 32, 24).reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - colours[c]).max() < 12, (t, mean)


def test_output_names_not_in_utf8_are_written(tmp_path):
    """A file name that is no UTF-8 (bytes 0xff) was a UnicodeEncodeError traceback in the
    output checks; the file system takes it."""
    import os

    from rereel.outputs import check_writable, write_text

    odd = tmp_path / os.fsdecode(b"\xff.txt")
    check_writable(odd)
    write_text(odd, "written")
    assert odd.read_text() == "written"


def test_a_device_name_is_checked_here_and_its_presence_where_the_network_runs():
    from rereel.device import check_device
    from rereel.errors import RereelError

    assert check_device("cuda", here=False) == "cuda"  # `index --engine ray`: the cluster's nodes have it or not
    assert check_device("cpu:0") == "cpu:0"
    with pytest.raises(RereelError, match="unknown device 'gpu'"):
        check_device("gpu", here=False)


def test_a_failed_first_index_leaves_no_library(cli, tmp_path):
    """An encoder or a device refused as the run starts: the library the run would have made is
    not left behind empty (it was: `info` then showed 0 videos and encoder None)."""
    clip = require_media("archive", A)
    refused(cli("index", clip, "--encoder", "nope", "--library", tmp_path / "a"), "unknown encoder 'nope'")
    refused(cli("index", clip, "--device", "gpu9", "--library", tmp_path / "b"), "unknown device 'gpu9'")
    refused(cli("remake", clip, "-o", tmp_path / "r.mp4", "--device", "cuda:x", "--library", tmp_path / "b"),
            "unknown device 'cuda:x'")
    assert list(tmp_path.iterdir()) == []


def test_remake_refuses_weights_and_seeds_that_are_no_numbers_it_can_use(cli, tmp_path):
    """An infinite weight made every score NaN ('mean score nan', exit 0, NaN written into the
    timeline); 1e308 twice overflowed to scores of 0; a seed of -1 or 2**70 was a traceback
    after the whole analysis."""
    clip = require_media("archive", A)
    for option, value in (("--semantic", "inf"), ("--colour", "nan"), ("--composition", "1e308"),
                          ("--variety", "inf"), ("--seed", "-1"), ("--seed", str(2**70))):
        proc = cli("remake", clip, "-o", tmp_path / "r.mp4", option, value, "--library", tmp_path / "lib")
        assert proc.returncode == 2 and f"Invalid value for '{option}'" in proc.stderr, (option, value, proc.stderr)
    assert list(tmp_path.iterdir()) == []


def test_outputs_under_a_file_are_refused_before_any_work(cli, timeline, tmp_path):  # noqa: F811
    (tmp_path / "notes.mp4").write_text("a file, not a folder")
    under = tmp_path / "notes.mp4"
    for args in (("render", timeline, "-o", under / "x.mp4"), ("export", timeline, under / "x.edl"),
                 ("credits", timeline, "-o", under / "c.txt"), ("similar", "#1", "-o", under / "s.png"),
                 ("map", "-o", under / "m.png"), ("gif", "#1", "-o", under / "g.gif")):
        refused(cli(*args), str(under / args[-1].name), f"{under} is a file, not a folder")
    target = require_media("trailers", "sintel_trailer_320x180.webm")
    refused(cli("remake", target, "-o", tmp_path / "ok.mp4", "--timeline", under / "t.otio", "--library", tmp_path / "l"),
            f"{under} is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


def test_long_output_names_get_partial_names_of_their_own():
    from rereel.outputs import NAME_MAX, partial_path

    stem = "b" * 240
    a, b = (partial_path(Path("/x") / f"{stem}{end}", "123.partial.mp4") for end in (".mp4", "-sbs.mp4"))
    assert a != b  # one render writes both at once
    assert all(len(p.name.encode()) <= NAME_MAX and p.name.startswith(".b") and p.name.endswith(".partial.mp4") for p in (a, b))


def test_a_legal_long_output_name_is_written(tmp_path):
    from rereel.media import VideoWriter

    name = "a" * 251 + ".mp4"  # 255 bytes: the longest name the file system takes
    with VideoWriter(tmp_path / name, 64, 48, 24) as w:
        for _ in range(3):
            w.write(np.zeros((48, 64, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # and no partial file beside it
    with av.open(str(tmp_path / name)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3


def indexed_clip(tmp_path: Path):
    """(folder, encoder, shot ids): a library at tmp_path/lib holding footage/clip.mp4, a copy of A."""
    from rereel.encoders import create_encoder
    from rereel.library import Library, index_paths

    folder = tmp_path / "footage"
    folder.mkdir()
    enc = create_encoder()
    shutil.copy(require_media("archive", A), folder / "clip.mp4")
    with Library(tmp_path / "lib", create=True) as lib:
        index_paths([folder], lib, enc, "content")
        assert lib.vectors("shots").count > 0
        return folder, enc, [s["id"] for s in lib.catalog.shots()]


def test_a_file_replaced_under_its_name_replaces_its_shots(tmp_path):
    from rereel.library import Library, index_paths

    folder, enc, old_ids = indexed_clip(tmp_path)
    shutil.copy(require_media("archive", B), folder / "clip.mp4")  # re-exported under the same name
    with Library(tmp_path / "lib") as lib:
        assert len(index_paths([folder], lib, enc, "content").indexed) == 1
        videos = lib.catalog.videos()
        assert [(Path(v["path"]).name, round(v["duration"], 1)) for v in videos] == \
               [("clip.mp4", round(durations(folder / "clip.mp4"), 1))]
        shots = lib.catalog.shots()
        assert {s["video_id"] for s in shots} == {videos[0]["id"]}  # none of the old file's are left
        # and none of its ids is given again: a vector index or timeline still holding one finds nothing
        assert min(s["id"] for s in shots) > max(old_ids)
        assert lib.vectors("shots").count == len(shots)
    with sqlite3.connect(tmp_path / "lib" / "catalog.sqlite") as db:  # nor its frames
        assert db.execute("SELECT COUNT(*) FROM frames WHERE video_id != ?", (videos[0]["id"],)).fetchone()[0] == 0


def test_a_file_renamed_away_with_another_in_its_place_keeps_both_right(tmp_path):
    from rereel.library import Library, index_paths

    folder, enc, _ = indexed_clip(tmp_path)
    (folder / "clip.mp4").rename(folder / "old.mp4")
    shutil.copy(require_media("archive", B), folder / "clip.mp4")
    with Library(tmp_path / "lib") as lib:
        index_paths([folder], lib, enc, "content")
        held = {Path(v["path"]).name: round(v["duration"], 1) for v in lib.catalog.videos()}
    assert held == {"old.mp4": round(durations(folder / "old.mp4"), 1), "clip.mp4": round(durations(folder / "clip.mp4"), 1)}


def test_relative_paths_in_a_hand_edited_timeline_are_read_from_its_folder(cli, tmp_path, monkeypatch):
    from rereel.timeline import media_path, read_timeline

    media = require_media()
    tl = sintel_timeline(tmp_path / "edit")
    # As a person writes them by hand: relative to the timeline, one with a space unencoded.
    shutil.copytree(media / "archive", tmp_path / "my archive", ignore=lambda d, names: [
        n for n in names if n not in ("ccby_zwm_tears_of_steel_10s.mp4", "pd_chaplin_excerpt.mp4", "cc0_mdn_flower_bloom.mp4")])
    text = tl.read_text().replace(f"file://{media / 'archive'}/", "../my archive/")
    assert "../my archive/" in text
    tl.write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    paths = {media_path(c.media_reference) for c in read_timeline(tl).find_clips()
             if getattr(c.media_reference, "target_url", None)} - {str(media / "trailers" / "sintel_trailer_320x180.webm")}
    assert len(paths) == 3 and all(Path(p).is_file() and Path(p).parent == tmp_path / "my archive" for p in paths), paths
    assert cli("render", tl, "-o", elsewhere / "edited.mp4").returncode == 0
    assert cli("export", tl, elsewhere / "again.otio").returncode == 0  # written elsewhere: URLs an editor reads
    assert (tmp_path / "my archive").as_uri() + "/" in (elsewhere / "again.otio").read_text()
    # Written back to its own folder (`choose`), the paths stay as typed, relative: a project
    # moved with its media stays valid (they became absolute file:// URLs).
    assert cli("choose", tl, "1", "1").returncode == 0
    written = tl.read_text()
    assert "../my archive/" in written and (tmp_path / "my archive").as_uri() not in written
    (tmp_path / "moved").mkdir()
    for folder in ("edit", "my archive"):
        shutil.move(tmp_path / folder, tmp_path / "moved" / folder)
    moved = tmp_path / "moved" / "edit" / tl.name
    assert {Path(media_path(c.media_reference)).parent for c in read_timeline(moved).find_clips()
            if "my%20archive" in c.media_reference.target_url or "my archive" in c.media_reference.target_url} == {
        tmp_path / "moved" / "my archive"}


def test_a_caption_longer_than_a_meme_is_refused_before_any_work(cli, tmp_path):
    refused(cli("gif", "#1", "-o", tmp_path / "g.gif", "--caption", "word " * 30, "--library", tmp_path / "lib"),
            "149 characters long in capitals", "at most 120")  # 30 words, 29 spaces between: as drawn
    # 61 characters as typed, 122 as drawn (ß is SS in capitals): refused here, not after the frames.
    refused(cli("gif", "#1", "-o", tmp_path / "g.gif", "--caption", "ß" * 61, "--library", tmp_path / "lib"),
            "122 characters long in capitals")
    assert list(tmp_path.iterdir()) == []


def test_a_huge_image_query_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as a 400-megapixel PNG is, at 1/400000 the cost
    Image.new("RGB", (100, 100)).save(tmp_path / "huge.png")
    assert cli("index", require_media("archive", A), "--library", tmp_path / "lib").returncode == 0
    refused(cli("similar", tmp_path / "huge.png", "-o", tmp_path / "s.png", "--library", tmp_path / "lib"),
            str(tmp_path / "huge.png"), "cannot read the image", "decompression bomb")


def test_a_model_folder_that_is_a_file_is_refused(cli, tmp_path):
    (tmp_path / "model.png").write_bytes(b"a file")
    refused(cli("autoencoder", "train", require_media("archive", A), "--model", tmp_path / "model.png", "--steps", "1"),
            "--model", "is a file, not a model folder")
    refused(cli("see", "train", require_media("archive", A), "--model", tmp_path / "model.png", "--steps", "1"),
            "--model", "is a file, not a model folder")


def test_training_on_a_single_frame_is_refused_not_a_hang(tmp_path):
    from rereel.media import VideoWriter
    from test_first_contact import rereel

    with VideoWriter(tmp_path / "one.mp4", 64, 48, 24) as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
    proc = rereel("autoencoder", "train", tmp_path / "one.mp4", "--model", tmp_path / "m", "--preset", "laptop",
                  "--steps", "2", timeout=120)  # it looped for ever before
    assert proc.returncode == 2 and "1 frame to learn from; training needs 2 at least" in proc.stderr, proc.stderr


def test_mistyped_queries_say_what_is_wrong_not_that_no_class_matches(cli, tmp_path, monkeypatch):
    clip = require_media("archive", A)
    assert cli("index", clip, "--library", tmp_path / "lib").returncode == 0
    # Each was searched for as words before ("no ImageNet class matches ..."), or called 0 s long.
    refused(cli("similar", f"{clip}@abc", "-o", tmp_path / "s.png", "--library", tmp_path / "lib"),
            f"{clip}@abc", "after the @ comes a time range", "'abc'")
    refused(cli("similar", "shot:-1", "-o", tmp_path / "s.png", "--library", tmp_path / "lib"),
            "shot:-1", "a shot id is a whole number")
    Image.new("RGB", (64, 64), (200, 0, 0)).save(tmp_path / "red.png")
    refused(cli("gif", tmp_path / "red.png", "-o", tmp_path / "g.gif", "--library", tmp_path / "lib"),
            str(tmp_path / "red.png"), "a still image (png), not a video")
    assert cli("gif", f"{clip}@1-2", "-o", tmp_path / "g.gif", "--library", tmp_path / "lib").returncode == 0  # well typed
    assert (tmp_path / "g.gif").is_file()
    # A name or words that only start like an id are still a file and words.
    monkeypatch.chdir(tmp_path)
    shutil.copy(clip, tmp_path / "#1 intro.mp4")
    assert cli("gif", "#1 intro.mp4", "-o", "intro.gif", "--max-seconds", "1", "--library", "lib").returncode == 0
    proc = cli("similar", "#80s neon", "-o", "s.png", "--library", "lib")  # searched as words (word by word)
    assert proc.returncode == 0 and "words '#80s neon'" in proc.stdout, (proc.returncode, proc.stdout, proc.stderr)


def test_a_frame_past_the_end_of_a_video_is_named_as_such():
    from rereel.errors import MediaError, RereelError
    from rereel.learn.frames import frame_at

    clip = require_media("archive", A)
    lasts = durations(clip)
    with pytest.raises(MediaError, match=rf"{lasts + 1:g} s is past the end \(the video lasts {lasts:.2f} s\)"):
        frame_at(f"{clip}@{lasts + 1:g}", 64, 48)  # was "no video frame could be decoded (corrupt or truncated)"
    with pytest.raises(RereelError, match="'nan' is not a time"):
        frame_at(f"{clip}@nan", 64, 48)
    with pytest.raises(RereelError, match="'abc' is not a time"):  # was "no such file", of a file that is there
        frame_at(f"{clip}@abc", 64, 48)
    assert frame_at(f"{clip}@{lasts / 2:g}", 64, 48).shape == (48, 64, 3)


def test_a_time_inside_a_videos_last_frame_gives_that_frame():
    """`autoencoder walk FILM@t` with t after the last frame's start, before the end, said the
    file was corrupt; and a time between two frames gave the later one, not the one on screen.
    Expected frames from PyAV directly, scaled the same way."""
    import av

    from rereel.learn.frames import frame_at
    from rereel.media.decode import fit_frame

    clip = require_media("archive", A)
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        frames = [(float(f.pts * s.time_base), fit_frame(f, 64, 48, "cover")) for f in c.decode(s)]
    (t_before, before), (t_last, last) = frames[-2], frames[-1]
    assert np.array_equal(frame_at(f"{clip}@{t_last + 0.01:.4f}", 64, 48), last)
    assert np.array_equal(frame_at(f"{clip}@{(t_before + t_last) / 2:.4f}", 64, 48), before)


def test_a_timeline_refuses_to_render_a_file_replaced_since_it_was_made(cli, tmp_path):
    folder, _, _ = indexed_clip(tmp_path)  # footage/clip.mp4, a copy of A, in tmp_path/lib
    target = tmp_path / "target.webm"
    shutil.copy(require_media("archive", B), target)
    tl, out = tmp_path / "remake.otio", tmp_path / "out"
    assert cli("remake", target, "-o", out / "a.mp4", "--timeline", tl, "--library", tmp_path / "lib").returncode == 0
    assert "\nclip.mp4\n  used: " in cli("credits", tl).stdout  # the remake uses the clip
    shutil.copy(require_media("archive", "pd_chaplin_excerpt.mp4"), folder / "clip.mp4")  # re-exported: other pictures
    refused(cli("render", tl, "-o", out / "b.mp4"), str(folder / "clip.mp4"),
            "archive file holds other content than when the timeline was made", "index it again")
    refused(cli("gif", "--pair", f"{tl}:1", "-o", out / "pair.gif"), str(folder / "clip.mp4"), "holds other content")
    shutil.copy(require_media("archive", A), folder / "clip.mp4")  # the original back
    shutil.copy(require_media("archive", "pd_chaplin_excerpt.mp4"), target)
    refused(cli("render", tl, "-o", out / "b.mp4"), str(target), "target video holds other content than when the timeline")
    shutil.copy(require_media("archive", B), target)
    assert cli("render", tl, "-o", out / "b.mp4").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.credits.txt", "a.mp4", "b.credits.txt", "b.mp4"]



def test_a_suggestion_swapped_in_is_checked_as_the_first_choice_is(cli, tmp_path):
    from rereel.timeline import media_path, read_timeline, shot_items

    folder, _, _ = indexed_clip(tmp_path)
    for name in ("ccby_zwm_tears_of_steel_10s.mp4", "pd_chaplin_excerpt.mp4"):
        shutil.copy(require_media("archive", name), folder / name)
    assert cli("index", folder, "--library", tmp_path / "lib").returncode == 0
    tl = tmp_path / "remake.otio"
    assert cli("remake", require_media("archive", B), "-o", tmp_path / "a.mp4", "--timeline", tl, "--suggestions", "20",
               "--library", tmp_path / "lib").returncode == 0
    # A suggestion from a file no clip of the timeline uses yet: only the swap can record its fingerprint.
    timeline = read_timeline(tl)
    used = {media_path(c.media_reference) for c in timeline.find_clips()}
    swaps = [(item.metadata["rereel"]["number"], k + 1, s["path"]) for item in shot_items(timeline)
             for k, s in enumerate(item.metadata["rereel"].get("suggestions") or []) if s["path"] not in used]
    assert swaps, "the footage gives no suggestion from an unused file"
    number, suggestion, path = swaps[0]
    assert cli("choose", tl, str(number), str(suggestion)).returncode == 0
    shutil.copy(require_media("archive", A if Path(path).name != "clip.mp4" else B), path)
    refused(cli("render", tl, "-o", tmp_path / "b.mp4"), path, "holds other content than when the timeline was made")


def test_a_remake_refuses_an_archive_file_replaced_since_it_was_indexed(cli, tmp_path):
    folder, _, _ = indexed_clip(tmp_path)
    shutil.copy(require_media("archive", "pd_chaplin_excerpt.mp4"), folder / "clip.mp4")  # not indexed again
    target = require_media("archive", B)
    proc = cli("remake", target, "-o", tmp_path / "out" / "a.mp4", "--timeline", tmp_path / "t.otio",
               "--library", tmp_path / "lib")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]  # after the progress of the analysis and matching
    assert line.startswith(f"error: {folder / 'clip.mp4'}: changed since it was indexed"), line
    assert f"rereel index {folder} --library {tmp_path / 'lib'}" in line
    assert not (tmp_path / "t.otio").exists() and not (tmp_path / "out").exists()  # refused before anything is written


def portrait_phone_video(path: Path, source: Path, frames: int = 48) -> tuple[int, int]:
    """A phone's portrait video: landscape pictures stored with a display matrix turning them a
    quarter (PyAV writes it, as phones do). Returns the stored (width, height)."""
    with av.open(str(source)) as c:
        pictures = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), c.decode(video=0))]
    h, w = pictures[0].shape[:2]
    w, h = w // 2 * 2, h // 2 * 2
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.set_display_rotation(-90)  # counter-clockwise degrees, as VideoFrame.rotation reads back
        for p in pictures:
            out.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(p[:h, :w]), format="rgb24")))
        out.mux(s.encode())
    with av.open(str(path)) as c:
        assert next(c.decode(video=0)).rotation == -90  # written as meant
    return w, h


def test_a_portrait_phone_video_is_portrait_everywhere(cli, tmp_path):

    from rereel.media import probe

    folder, _, _ = indexed_clip(tmp_path)
    w, h = portrait_phone_video(folder / "phone.mp4", require_media("archive", B))
    assert probe(folder / "phone.mp4").display_size == (h, w)  # FFmpeg 7+ no longer gives a 'rotate' tag
    assert cli("index", folder, "--library", tmp_path / "lib").returncode == 0
    info = json.loads(cli("info", "--library", tmp_path / "lib", "--json").stdout)
    assert {Path(v["path"]).name: v["size"] for v in info["items"]}["phone.mp4"] == [h, w]
    target = tmp_path / "target.mp4"
    tw, th = portrait_phone_video(target, require_media("archive", A))
    out = tmp_path / "out"
    assert cli("remake", target, "-o", out / "r.mp4", "--side-by-side-out", out / "s.mp4", "--library",
               tmp_path / "lib").returncode == 0
    for name, width in (("r.mp4", th), ("s.mp4", 2 * th)):
        with av.open(str(out / name)) as c:  # upright as shown, not the stored landscape
            assert (c.streams.video[0].width, c.streams.video[0].height) == (width, tw), name


def test_videos_moved_away_since_indexing_are_left_out_and_named(cli, tmp_path):
    from rereel.timeline import media_path, read_timeline

    folder, _, _ = indexed_clip(tmp_path)
    gone = folder / "gone.mp4"
    shutil.copy(require_media("archive", "ccby_zwm_tears_of_steel_10s.mp4"), gone)
    assert cli("index", folder, "--library", tmp_path / "lib").returncode == 0
    gone.unlink()
    info = cli("info", "--library", tmp_path / "lib")
    assert f"1 of 2 videos are not where they were indexed (e.g. {gone})" in info.stderr
    proc = cli("remake", require_media("archive", B), "-o", tmp_path / "r.mp4", "--timeline", tmp_path / "r.otio",
               "--suggestions", "20", "--library", tmp_path / "lib")
    assert proc.returncode == 0, proc.stderr  # it was 'archive file named in the timeline is missing', after the work
    assert f"1 archive video is not where it was indexed and was left out (e.g. {gone})" in proc.stderr
    tl = read_timeline(tmp_path / "r.otio")
    assert {Path(media_path(c.media_reference)).name for c in tl.find_clips()} <= {"clip.mp4", B}
    assert all(Path(s["path"]).name == "clip.mp4" for c in tl.find_clips() for s in c.metadata.get("rereel", {}).get("suggestions") or [])
    proc = cli("similar", require_media("archive", B), "-o", tmp_path / "s.png", "--library", tmp_path / "lib")
    assert proc.returncode == 0 and "gone.mp4" not in proc.stdout, proc.stdout + proc.stderr


def variable_rate_video(path: Path, source: Path) -> float:
    """A phone-like variable-rate video: 60 frames at 30 fps, then 30 at 15 fps, with a white
    frame and a loud audio burst both at 2.0 s (by construction). Returns that time."""
    import fractions

    with av.open(str(source)) as c:
        pictures = [f.to_ndarray(format="rgb24") for _, f in zip(range(90), c.decode(video=0))]
    h, w = (n // 2 * 2 for n in pictures[0].shape[:2])
    ms = fractions.Fraction(1, 1000)
    times = [round(i * 1000 / 30) for i in range(60)] + [2000 + round(j * 1000 / 15) for j in range(30)]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = v.codec_context.time_base = ms
        a = out.add_stream("aac", rate=48000)
        for i, p in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 255, np.uint8) if i == 60 else
                                               np.ascontiguousarray(p[:h, :w] // 2), format="rgb24")  # dim, but for the flash
            frame.pts, frame.time_base = times[i], ms
            out.mux(v.encode(frame))
        out.mux(v.encode())
        sound = np.zeros(4 * 48000, np.float32)
        sound[2 * 48000: 2 * 48000 + 4800] = 0.8
        for pos in range(0, len(sound), 1024):
            af = av.AudioFrame.from_ndarray(sound[None, pos:pos + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, pos
            out.mux(a.encode(af))
        out.mux(a.encode())
    return 2.0


def flash_and_burst(path: Path, left_half: bool = False) -> tuple[float, float]:
    """(time of the first white frame, time of the first loud audio frame), read by PyAV."""
    with av.open(str(path)) as c:
        white = next(f.time for f in c.decode(video=0)
                     if f.to_ndarray(format="rgb24")[:, : f.width // 2 if left_half else f.width].mean() > 240)
    with av.open(str(path)) as c:
        loud = next(f.time for f in c.decode(audio=0) if np.abs(f.to_ndarray()).max() > 0.5)
    return white, loud


def test_a_variable_rate_target_stays_on_its_soundtrack(cli, tmp_path):
    indexed_clip(tmp_path)
    target = tmp_path / "phone.mp4"
    at = variable_rate_video(target, require_media("archive", B))
    white, loud = flash_and_burst(target)
    assert abs(white - at) < 0.01 and abs(loud - at) < 0.05  # written as meant
    out = tmp_path / "out"
    # At the constant rate: the timeline was at the average rate before, which may have no SMPTE
    # timecode (a phone clip at 20.68 fps on average could not go to an EDL or FCP XML).
    assert cli("remake", target, "-o", out / "r.mp4", "--side-by-side-out", out / "s.mp4", "--timeline", out / "r.otio",
               "--timeline", out / "r.edl", "--library", tmp_path / "lib").returncode == 0
    assert cli("export", out / "r.otio", out / "r.xml").returncode == 0
    with av.open(str(out / "s.mp4")) as c:
        assert c.streams.video[0].average_rate == 30  # the file's top rate, as written
    white, loud = flash_and_burst(out / "s.mp4", left_half=True)
    assert abs(white - at) <= 1 / 30 + 1e-3 and abs(loud - at) < 0.05, (white, loud)  # was 2.6 s: 0.6 s off its sound


def test_a_poster_picture_before_the_video_stream_is_passed_over(cli, tmp_path):

    folder = tmp_path / "footage"
    folder.mkdir()
    with av.open(str(require_media("archive", A))) as c:
        pictures = [f.to_ndarray(format="rgb24") for _, f in zip(range(72), c.decode(video=0))]
    h, w = (n // 2 * 2 for n in pictures[0].shape[:2])
    with av.open(str(folder / "poster_first.mkv"), "w") as out:  # stream 0: one JPEG picture, as an MKV's poster
        poster = out.add_stream("mjpeg", rate=1)
        poster.width, poster.height, poster.pix_fmt = w, h, "yuvj420p"
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        out.mux(poster.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pictures[0][:h, :w]), format="rgb24")))
        out.mux(poster.encode())
        for p in pictures:
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(p[:h, :w]), format="rgb24")))
        out.mux(video.encode())
    proc = cli("index", folder, "--library", tmp_path / "lib")
    assert proc.returncode == 0, proc.stderr  # the poster was indexed as the video (or called truncated)
    [item] = json.loads(cli("info", "--library", tmp_path / "lib", "--json").stdout)["items"]
    assert abs(item["seconds"] - len(pictures) / 24) < 0.1 and item["fps"] == 24, (item, len(pictures))


def test_a_model_resumes_from_another_folder_and_refuses_other_films(cli, tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    for d in (work, elsewhere):
        d.mkdir()
    shutil.copy(require_media("archive", A), work / "film.mp4")
    monkeypatch.chdir(work)
    train = ("autoencoder", "train", "--model", tmp_path / "model", "--preset", "laptop", "--checkpoint-every", "1")
    assert cli(*train[:2], "film.mp4", *train[2:], "--steps", "1").returncode == 0
    monkeypatch.chdir(elsewhere)  # the film was named relative to work/: 'film.mp4: no such file' before
    assert cli(*train[:2], work / "film.mp4", *train[2:], "--resume", "--steps", "2").returncode == 0
    # Another film given to --resume was ignored without a word: the model went on with its own.
    refused(cli(*train[:2], require_media("archive", B), *train[2:], "--resume", "--steps", "3"),
            "--resume goes on with the films the model was started on", str(work / "film.mp4"))


def test_a_resume_refuses_settings_other_than_the_models(cli, tmp_path):
    """`--resume` with another --size, --recipe or --batch went on with the model's own without a
    word (see train), as it did with another --preset or --size (autoencoder train)."""
    film = require_media("archive", A)
    see = ("see", "train", film, "--model", tmp_path / "see", "--max-frames", "8", "--checkpoint-every", "1",
           "--sample-every", "1")
    assert cli(*see, "--size", "32", "--steps", "1").returncode == 0
    refused(cli(*see, "--size", "64", "--steps", "2", "--resume"), "--resume goes on with the model's own --size 32 (given 64)")
    refused(cli(*see, "--recipe", "edges", "--batch", "2", "--steps", "2", "--resume"),
            "--recipe degrade (given edges), --batch 4 (given 2)")
    assert cli(*see, "--size", "32", "--steps", "2", "--resume").returncode == 0  # the model's own, named: fine
    assert json.loads((tmp_path / "see" / "config.json").read_text())["size"] == 32

    ae = ("autoencoder", "train", film, "--model", tmp_path / "ae", "--checkpoint-every", "1")
    assert cli(*ae, "--preset", "laptop", "--size", "32x16", "--steps", "1").returncode == 0
    refused(cli(*ae, "--size", "64x36", "--steps", "2", "--resume"), "--size 32x16 (given 64x36)")
    refused(cli(*ae, "--preset", "broad", "--steps", "2", "--resume"), "--preset laptop (given broad)")
    assert cli(*ae, "--size", "32x16", "--threads", "2", "--steps", "2", "--resume").returncode == 0


def test_an_output_written_again_removes_what_a_killed_run_left(cli, timeline, tmp_path):
    """`kill -9` leaves `.NAME.PID.partial.mp4` (no handler runs); the next run of that output
    removes it, once its process is gone, and leaves a live process's own alone."""
    import os
    import subprocess
    import sys
    import time

    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    left = tmp_path / f".out.mp4.{gone}.partial.mp4"
    live = tmp_path / f".out.mp4.{os.getppid()}.partial.mp4"  # pytest's parent: alive, and not this process
    other = tmp_path / f".out.mp4.sbs.mp4.{gone}.partial.mp4"  # another output's: not this run's to judge
    recent = tmp_path / f".out.mp4.{gone + 1}.partial.mp4"  # written a moment ago (another machine's?)
    hour_ago = time.time() - 3600
    for f in (left, live, other, recent):
        f.write_bytes(b"half a video")
        if f is not recent:
            os.utime(f, (hour_ago, hour_ago))
    assert cli("render", timeline, "-o", tmp_path / "out.mp4").returncode == 0
    assert not left.exists() and live.exists() and other.exists() and recent.exists()
    assert (tmp_path / "out.mp4").stat().st_size > 1000


def numbered_video(path: Path, codec: str, fps: int, pix_fmt: str, levels: list[int]) -> Path:
    """Frame k a flat grey of level levels[k]: its number, read back from any decode."""
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, pix_fmt
        for level in levels:
            out.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")))
        out.mux(s.encode(None))
    return path


def test_archive_frames_of_a_webm_are_each_shown_once(tmp_path):
    """WebM/Matroska stamp frames to the millisecond: at 24 fps frame 1 is at 0.042 s, after its
    1/24 s. Read exactly, it came a frame late: a third of the frames showed twice, others never
    (remakes, renders, GIFs and compilations from the six MKV/WebM clips of the sample archive)."""
    from rereel.render import Segment, archive_frames

    levels = [20 + 7 * k for k in range(30)]
    path = numbered_video(tmp_path / "numbered.webm", "libvpx-vp9", 24, "yuv420p", levels)
    with av.open(str(path)) as c:
        assert c.streams.video[0].time_base == Fraction(1, 1000)  # as the bug needs
    for start_frame in (0, 5):
        seg = Segment(frames=20, path=str(path), start=start_frame / 24)
        shown = [int(np.argmin([abs(float(f.mean()) - v) for v in levels])) for f in archive_frames(seg, 24.0, 64, 48, "cover")]
        assert shown == list(range(start_frame, start_frame + 20)), shown
    # A time base one frame long (AVI) counts frames exactly: no slack there, or the next frame
    # showed early (a quarter of the time; across a cut, the next shot's first frame).
    avi = numbered_video(tmp_path / "numbered.avi", "mjpeg", 30, "yuvj420p", levels)
    seg = Segment(frames=20, path=str(avi), start=0.0)
    shown = [int(np.argmin([abs(float(f.mean()) - v) for v in levels])) for f in archive_frames(seg, 24.0, 64, 48, "cover")]
    assert shown == [int(j / 24 * 30 + 1e-9) for j in range(20)], shown  # the frame on screen at each time
    # Played at double speed (an editor's LinearTimeWarp), every other frame.
    twice = Segment(frames=10, path=str(path), start=0.0, speed=2.0)
    assert [int(np.argmin([abs(float(f.mean()) - v) for v in levels]))
            for f in archive_frames(twice, 24.0, 64, 48, "cover")] == list(range(0, 20, 2))


def anamorphic_video(path: Path, seconds: float = 2.0) -> Path:
    """A 16:9 DVD-style picture: 360x288 stored, pixels 64:45 wide (shown 512x288), of a white
    disc on grey, round as shown (so squeezed to an upright ellipse in the stored pixels)."""
    yy, xx = np.mgrid[0:288, 0:512]
    shown = np.where(((xx - 256) ** 2 + (yy - 144) ** 2) < 90 ** 2, 235, 60).astype(np.uint8)
    stored = np.ascontiguousarray(np.repeat(cv2_resize(shown, (360, 288))[..., None], 3, axis=2))
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 360, 288, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(64, 45)
        for _ in range(round(seconds * 25)):
            out.mux(s.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        out.mux(s.encode(None))
    return path


def cv2_resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(a, size, interpolation=cv2.INTER_AREA)


def disc_aspect(rgb: np.ndarray) -> float:
    """Width over height of the bright disc in a picture."""
    ys, xs = np.nonzero(rgb.mean(axis=2) > 150)
    return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)


def test_anamorphic_pictures_are_shown_at_their_aspect(cli, tmp_path):
    """Non-square pixels (DVD, HDV, archive transfers) were taken as square: remakes of such a
    target came out 5:4 instead of 16:9, the archive's pictures squeezed, GIFs and grids too."""
    from rereel.media import decode_frames, probe

    clip = anamorphic_video(tmp_path / "dvd.mp4")
    assert probe(clip).display_size == (512, 288)
    first = next(iter(decode_frames(clip)))
    assert first.display_size == (512, 288)
    assert abs(disc_aspect(first.fit(320, 180, "cover")) - 1) < 0.06  # round, not an upright ellipse
    assert abs(disc_aspect(first.fit(200, 200, "letterbox")) - 1) < 0.06
    assert cli("gif", f"{clip}@0-1", "-o", tmp_path / "dvd.gif", "--width", "256").returncode == 0
    gif = Image.open(tmp_path / "dvd.gif")
    assert gif.size == (256, 144)
    assert abs(disc_aspect(np.asarray(gif.convert("RGB"))) - 1) < 0.08
    # The library lists it at its shown size, and its shot thumbnail is round too.
    assert cli("index", clip, "--library", tmp_path / "lib").returncode == 0
    [item] = json.loads(cli("info", "--library", tmp_path / "lib", "--json").stdout)["items"]
    assert item["size"] == [512, 288]
    from rereel.library import Library

    with Library(tmp_path / "lib") as lib:
        thumb = np.asarray(Image.open(io.BytesIO(lib.catalog.thumbnail(lib.catalog.shots()[0]["id"]))).convert("RGB"))
    assert thumb.shape[:2] == (180, 320) and abs(disc_aspect(thumb) - 1) < 0.06


def test_a_surround_soundtrack_is_downmixed_without_clipping(tmp_path):
    """A 5.1 target's audio, downmixed to the remake's stereo with FFmpeg's default matrix, went
    up to 1.7x full scale (centre and surrounds added to each side at full weight) and clipped."""
    from rereel.media import VideoWriter

    src = tmp_path / "surround.mp4"
    rate, seconds = 48000, 2.0
    tone = (0.6 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=rate)
        a.layout = "5.1"
        for k in range(round(seconds * 25)):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        for i in range(0, len(tone), 1024):
            chunk = np.ascontiguousarray(np.repeat(tone[None, i:i + 1024], 6, axis=0))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="5.1")
            frame.sample_rate, frame.pts = rate, i
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
        out.mux(v.encode(None))
    for name in ("out.mp4", "out.mov"):  # AAC and 16-bit PCM
        with VideoWriter(tmp_path / name, 64, 48, 25, audio_from=src) as w:
            for _ in range(50):
                w.write(np.zeros((48, 64, 3), np.uint8))
        with av.open(str(tmp_path / name)) as c:
            assert c.streams.audio[0].codec_context.channels == 2
            pcm = np.concatenate([f.to_ndarray().astype(np.float32).reshape(-1) for f in c.decode(audio=0)])
        if pcm.dtype.kind == "f" and np.abs(pcm).max() > 2:  # 16-bit samples
            pcm = pcm / 32768.0
        peak = float(np.abs(pcm).max())
        assert 0.3 < peak < 0.99, (name, peak)  # heard, and never at full scale


def test_clusters_leave_out_a_video_moved_since_indexing(cli, tmp_path, capsys):
    """`clusters` failed on a deleted video ("archive file named in the timeline is missing": no
    timeline is involved) and left a half-written folder; similar and remakes leave it out."""
    from rereel.library import Library, index_paths

    folder, enc, _ = indexed_clip(tmp_path)
    shutil.copy(require_media("archive", "ccby_zwm_tears_of_steel_10s.mp4"), folder / "other.mp4")
    with Library(tmp_path / "lib") as lib:
        index_paths([folder], lib, enc, "content")
    (folder / "clip.mp4").unlink()
    proc = cli("clusters", "-o", tmp_path / "groups", "--library", tmp_path / "lib", "--count", "2", "--max-seconds", "1")
    assert proc.returncode == 0, proc.stderr
    assert "1 archive video is not where it was indexed and is left out" in proc.stderr and "clip.mp4" in proc.stderr
    page = (tmp_path / "groups" / "index.html").read_text()
    assert "other.mp4" in page and "clip.mp4" not in page


def test_an_animated_gif_with_uneven_delays_ends_on_time(tmp_path):
    """40 frames alternating 160 and 40 ms last 4.00 s; the last frame was given the one before's
    length (or the average), and a remake of it ran 4.08 s."""
    from rereel.encoders import create_encoder
    from rereel.library.indexer import analyse_video
    from rereel.media import probe
    from rereel.media.decode import output_frames

    gif = tmp_path / "uneven.gif"
    frames = [Image.new("RGB", (64, 48), (v, 255 - v, 90)) for v in range(0, 240, 6)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=[160, 40] * 20, loop=0)
    info = probe(gif)
    assert abs(info.duration - 4.0) < 0.011  # as the file states (PIL's own delays, independent of rereel)
    made, rate, _ = output_frames(gif, info)
    assert rate == 25 and sum(1 for _ in made) == 100
    shots = analyse_video(gif, create_encoder(), "content", info.fps)
    assert abs(shots[-1].end - 4.0) < 0.011, shots[-1]


def test_a_range_from_a_keyframe_that_is_no_clean_entry_is_decoded_whole():
    """The sample archive's cockatoo (H.264 4:4:4) has I frames at 3.8 and 7.25 s that decode
    damaged after a seek: remakes, grids and previews of it from there on were grey blocks on
    green. The frames of a range must be those of a straight read of the file."""
    from rereel.media import decode_frames

    path = require_media("archive", "pd_imageio_cockatoo.mp4")
    with av.open(str(path)) as c:  # an independent straight read
        stream = c.streams.video[0]
        straight = {round(float((f.pts - (stream.start_time or 0)) * f.time_base), 3): f.to_ndarray(format="rgb24")
                    for f in c.decode(stream) if 8.5 <= float(f.pts * f.time_base) <= 9.2}
    got = [f for _, f in zip(range(10), decode_frames(path, start=8.6))]
    assert len(got) == 10
    for f in got:
        ref = straight[round(f.time, 3)]
        assert np.abs(f.frame.to_ndarray(format="rgb24").astype(int) - ref).mean() < 1.0, f.time
