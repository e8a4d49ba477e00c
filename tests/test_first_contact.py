"""First contact on the command line: a wrong input gets one line naming the file and the
problem, a non-zero exit, and nothing left behind; every --help speaks in metavars a user
types (FILE, DIR, N) and shows an example; a render for editors (.mov, ProRes or DNxHR with
PCM audio) is accepted and decodes.

Each command runs in a subprocess, as a user runs it. `sintel_timeline` builds a small real
remake timeline without the matcher (numbering tests use it too).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import require_media

SRC = Path(__file__).resolve().parents[1] / "src"
TARGET = "trailers/sintel_trailer_320x180.webm"  # 24 fps, 320x180, with audio
ARCHIVE = ["ccby_zwm_tears_of_steel_10s.mp4", "pd_chaplin_excerpt.mp4", "cc0_mdn_flower_bloom.mp4"]


def rereel(*args, cwd=None, timeout=300):
    """The real command line in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "rereel", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)


@pytest.fixture
def cli(capsys):
    """The command line's own entry point (`rereel.cli.main`) in this process: refusals come
    before any work, so a subprocess would only add its start-up (about 2 s each)."""
    from rereel.cli import main

    def run(*args):
        argv, term = sys.argv, signal.getsignal(signal.SIGTERM)
        sys.argv = ["rereel", *map(str, args)]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
        finally:
            sys.argv = argv
            signal.signal(signal.SIGTERM, term)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def refused(proc, *words) -> str:
    """The one error line of a refused command; it must name each of `words`."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def sintel_timeline(folder: Path, cuts=(0, 30, 100, 101, 160, 240), indices=(0, 1, 5, 6, 7), black=(1,),
                    target=TARGET) -> Path:
    """A remake timeline of the first cuts[-1] frames of `target` (no matcher run): target shot i
    spans frames cuts[i]..cuts[i+1] and has index indices[i] (not its position: a cut list edited
    in the editor keeps its indices), three suggestions from real archive files, or none where
    it is in `black`. Shot 4's segment is 1 s for its 59 frames, so it is followed by a hold."""
    from rereel.match.choose import Candidate, ShotMatch
    from rereel.match.score import Placement
    from rereel.media import probe
    from rereel.timeline import build_timeline, write_timeline

    media = require_media()
    tpath = media / target
    info = probe(tpath)
    rate = info.fps

    def cand(name: str, sid: int, start: float, seconds: float, score: float) -> Candidate:
        a = probe(media / "archive" / name)
        return Candidate(sid, sid, str(media / "archive" / name), name, a.fps, a.duration,
                         Placement(score, start, start + seconds, True, score, score, score))

    matches = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        seconds = 1.0 if i == 3 else (b - a) / rate
        sugg = [] if i in black else [cand(ARCHIVE[(i + j) % 3], 10 * i + j, 0.5 * j, seconds, 0.9 - 0.1 * j)
                                      for j in range(3)]
        matches.append(ShotMatch(indices[i], a, b, a / rate, b / rate, i in black, sugg, sugg[0] if sugg else None))
    tl = build_timeline("first contact", {"path": str(tpath), "fps": rate, "width": info.width, "height": info.height,
                                          "duration": info.duration, "frames": cuts[-1], "has_audio": info.has_audio},
                        matches, {"fit": "cover"})
    folder.mkdir(parents=True, exist_ok=True)
    return write_timeline(tl, folder / "remake.otio")


@pytest.fixture(scope="module")
def timeline(tmp_path_factory) -> Path:
    return sintel_timeline(tmp_path_factory.mktemp("first") / "tl")


def test_remake_refuses_a_still_image(cli, tmp_path):
    still = tmp_path / "still.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(still)
    line = refused(cli("remake", still, "-o", tmp_path / "out.mp4", "--library", tmp_path / "lib"), str(still), "still image")
    assert "not a video" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]


def test_index_refuses_a_missing_path_before_making_a_library(cli, tmp_path):
    refused(cli("index", tmp_path / "missing", "--library", tmp_path / "lib"), str(tmp_path / "missing"), "no such file")
    assert list(tmp_path.iterdir()) == []


def test_index_refuses_files_that_are_not_videos_before_making_a_library(cli, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    refused(cli("index", notes, "--library", tmp_path / "lib"), str(notes), "not a readable video", "no library made")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_library_that_is_a_file_is_named(cli, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a library")
    refused(cli("info", "--library", notes), str(notes), "is a file, not a library folder")


def test_serve_refuses_an_allowed_folder_that_does_not_exist(cli, tmp_path):
    refused(cli("serve", "--allow", tmp_path / "nonexistent", "--library", tmp_path), "--allow", "nonexistent", "no such folder")


def test_serve_refuses_a_certificate_that_is_none(cli, tmp_path):
    """Found by trying: a file that is no PEM certificate was an SSLError traceback after the
    server had printed its https:// URL."""
    (tmp_path / "notes.txt").write_text("not a certificate")
    refused(cli("serve", "--ssl-certfile", tmp_path / "notes.txt", "--library", tmp_path), "--ssl-certfile",
            "notes.txt", "not a PEM certificate")


def test_serve_refuses_an_encrypted_key_without_asking_for_its_passphrase(cli, tmp_path):
    """The check before serving asked for the passphrase (uvicorn would ask again), and without
    a terminal was an OSError traceback."""
    from conftest import require_program

    openssl = require_program("/usr/bin/openssl", "makes a certificate with an encrypted key")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-keyout", tmp_path / "enc.key", "-out",
                    tmp_path / "cert.pem", "-subj", "/CN=localhost", "-days", "1", "-passout", "pass:secret"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    refused(cli("serve", "--ssl-certfile", tmp_path / "cert.pem", "--ssl-keyfile", tmp_path / "enc.key",
                "--library", tmp_path), "--ssl-keyfile", "enc.key", "the private key is encrypted")


@pytest.mark.parametrize("args, words", [
    (("choose", "x.otio", "3", "abc"), ("rereel choose", "Invalid value for 'SUGGESTION'", "rereel choose --help")),
    (("serve", "--port", "0"), ("rereel serve", "Invalid value for '--port'")),
    (("indx",), ("No such command 'indx'", "Did you mean 'index'?")),
    (("index", "--nope", "x"), ("rereel index", "No such option: --nope")),
    (("remake",), ("rereel remake", "Missing argument 'VIDEO'")),
    (("similar", "q", "-n"), ("rereel similar", "Option '-n' requires an argument", "rereel similar --help")),
], ids=["not a number", "out of range", "misspelt command", "unknown option", "missing argument", "option without value"])
def test_a_wrong_argument_is_one_line_too(cli, args, words):
    """Typer printed its usage line, a hint and a boxed panel over 5-7 lines, where every other
    error a user can cause is one line (the README's promise)."""
    refused(cli(*args), *words)


def test_render_refuses_a_missing_timeline(cli, tmp_path):
    refused(cli("render", tmp_path / "gone.otio", "-o", tmp_path / "out.mp4"), "gone.otio", "no such timeline file")
    assert list(tmp_path.iterdir()) == []


def test_render_refuses_an_output_it_cannot_write_or_must_not(cli, timeline, tmp_path):
    refused(cli("render", timeline, "-o", tmp_path / "out.mkv"), "out.mkv", ".mp4", ".mov")
    refused(cli("render", timeline, "-o", tmp_path / "out.mp4", "--codec", "prores"), "out.mp4", "ProRes", "out.mov")
    # `-o .mp4` was told to name the video .mp4, which it had: the name before it is missing
    refused(cli("render", timeline, "-o", tmp_path / ".mp4"), ".mp4: a name is needed before .mp4")
    source = require_media("archive", ARCHIVE[0])  # an archive film the remake shows
    refused(cli("render", timeline, "-o", source), str(source), "would replace it")
    assert list(tmp_path.iterdir()) == []


def test_gif_pair_counts_shots_as_everywhere_and_says_why_a_black_one_has_no_pair(cli, timeline, tmp_path):
    refused(cli("gif", "--pair", f"{timeline}:2", "-o", tmp_path / "pair.gif"), str(timeline),
            "shot 2 (00:00:01:06) is black in the remake")
    refused(cli("gif", "--pair", f"{timeline}:0", "-o", tmp_path / "pair.gif"), "there is no shot 0", "numbered 1 to 5")
    assert list(tmp_path.iterdir()) == []


def test_an_export_at_a_rate_without_smpte_timecode_is_refused(cli, tmp_path):
    # A 15 fps target (a webcam's rate): the EDL and FCP XML adapters count SMPTE timecode.
    tl = sintel_timeline(tmp_path / "tl", cuts=(0, 10, 20, 21, 40, 60),
                         target="archive/ccby_intel_gifpreview_store_aisle_detection.mp4")
    for name in ("out.edl", "out.xml"):
        refused(cli("export", tl, tmp_path / name), name, "no 15 fps", ".otio")
    assert cli("export", tl, tmp_path / "out.otio").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.otio", "tl"]


def decoded(path: Path):
    """An independent decode of everything in `path`: (video codec, profile, frames, audio codec,
    audio start and end in seconds, seconds of samples)."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        names = (v.codec_context.name, v.codec_context.profile, a.codec_context.name)
        frames = sum(1 for _ in c.decode(v))
    with av.open(str(path)) as c:
        audio = [(f.pts, f.samples, f.sample_rate) for f in c.decode(c.streams.audio[0])]
    rate = audio[0][2]
    return (*names[:2], frames, names[2], audio[0][0] / rate, (audio[-1][0] + audio[-1][1]) / rate,
            sum(n for _, n, _ in audio) / rate)


def test_a_prores_mov_for_editors_decodes_with_its_frames_and_pcm_audio(timeline, tmp_path):
    out = tmp_path / "remake.mov"
    proc = rereel("render", timeline, "-o", out, "--codec", "prores")
    assert proc.returncode == 0, proc.stderr
    codec, profile, frames, audio, start, end, seconds = decoded(out)
    assert (codec, profile, audio) == ("prores", "Standard", "pcm_s16le")  # ProRes 422
    assert frames == 240  # sintel_timeline's cut list: 10 s at 24 fps
    assert start < 0.1 and abs(end - 10.0) < 1 / 24 and seconds > 9.8, (start, end)  # the target's audio, to the last frame
    a, b = mono(require_media(TARGET), 9.5), mono(out, 9.5)
    assert len(a) == len(b) and np.corrcoef(a, b)[0, 1] > 0.999  # its samples, not noise of the right length


def mono(path, seconds, rate=8000):
    """The first `seconds` of `path`'s audio, mono at `rate`, as PyAV decodes it."""
    with av.open(str(path)) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=rate)
        chunks = [f.to_ndarray().ravel() for frame in c.decode(c.streams.audio[0]) for f in res.resample(frame)]
    return np.concatenate(chunks).astype(np.float32)[: int(rate * seconds)]


def test_a_dnxhr_mov_decodes_with_its_frames_and_pcm_audio(tmp_path):
    from rereel.media import VideoWriter

    out = tmp_path / "clip.mov"
    with VideoWriter(out, 320, 180, 24, audio_from=require_media(TARGET), codec="dnxhr") as w:
        for k in range(24):
            w.write(np.full((180, 320, 3), 10 * k, np.uint8))
    codec, profile, frames, audio, start, end, seconds = decoded(out)
    assert (codec, profile, frames, audio) == ("dnxhd", "DNXHR HQ", 24, "pcm_s16le")
    assert start < 0.1 and abs(end - 1.0) < 1 / 24, (start, end)


def test_remake_refuses_an_unknown_output_before_any_work(cli, tmp_path):
    target = require_media(TARGET)
    refused(cli("remake", target, "-o", tmp_path / "out.avi", "--library", tmp_path / "lib"), "out.avi", ".mov")
    refused(cli("remake", target, "-o", tmp_path / "out.mov", "--timeline", tmp_path / "t.txt",
                   "--library", tmp_path / "lib"), "t.txt", ".otio")
    assert list(tmp_path.iterdir()) == []


# -- --help --------------------------------------------------------------------------------------

PYTHON_TYPE = re.compile(r"<[A-Za-z_][\w\[\], |.]*>|\{[a-z_]+\}|\bx\s*[<>]=")


def commands():
    """(path, command) for every command of the app, groups included, walked from the root."""
    import typer.main

    from rereel.cli import app

    def walk(cmd, path):
        yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, path + [name])

    return list(walk(typer.main.get_command(app), []))


def test_every_help_speaks_in_metavars_and_shows_an_example():
    from typer.testing import CliRunner

    from rereel.cli import app

    runner = CliRunner()
    found, problems = 0, []
    for path, cmd in commands():
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
        text = result.output
        name = " ".join(["rereel", *path])
        if result.exit_code != 0:
            problems.append(f"{name} --help: exit {result.exit_code}")
            continue
        found += 1
        for m in PYTHON_TYPE.finditer(text):
            problems.append(f"{name} --help shows a Python type {m.group(0)!r}")
        if not getattr(cmd, "commands", None):  # a command (a group lists its own)
            after = text.split("Examples:", 1)[1] if "Examples:" in text else ""
            if not re.search(rf"^\s*{re.escape(name)}( |$)", after, re.M):
                problems.append(f"{name} --help has no example (a line starting `{name}` under Examples:)")
    assert found >= 20, found  # the walk reached the whole tree, learn's commands included
    assert not problems, "\n".join(problems)


def test_serve_refuses_a_port_another_server_holds(cli, tmp_path):
    """It printed `open http://localhost:PORT/` (the other server's page), then uvicorn's own
    error, and exited 3."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        refused(cli("serve", "--port", str(port), "--library", tmp_path), f"--port {port}", "is in use")
