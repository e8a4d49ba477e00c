"""Library commands: index, info, reembed, relink."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rereel.cli import app, examples, labelled
from rereel.errors import RereelError

out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)  # file names: see cli.labelled
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def _library_folder(value: Optional[Path]) -> Optional[Path]:
    """A library is a folder: a file given as one is refused by name, whichever command it is."""
    path = Path(value or os.environ.get("REREEL_LIBRARY") or "rereel-library")
    if path.exists() and not path.is_dir():
        raise RereelError(f"{path}: is a file, not a library folder (a library is the folder holding catalog.sqlite)")
    return value


LibraryOpt = Annotated[
    Optional[Path],
    typer.Option("--library", "-l", metavar="DIR", callback=_library_folder,
                 help="Library folder (default: $REREEL_LIBRARY, else ./rereel-library)."),
]
def device_checked(device: str | None) -> str | None:
    """A --device name checked as the command starts (before a library, a bar or a model is
    made); one line otherwise, not PyTorch's traceback. Whether this machine has it is checked
    where the network is loaded: with `index --engine ray`, that is on the cluster's nodes."""
    if device:
        from rereel.device import check_device

        check_device(device, here=False)
    return device


DeviceOpt = Annotated[Optional[str], typer.Option(metavar="cuda|mps|cpu", callback=device_checked,
                                                  help="Where the network runs (default: the best present).")]


class RichProgress:
    """Two bars: the current file (seconds of video) and the whole batch (files)."""

    def __init__(self, total_files: int):
        self.progress = Progress(
            TextColumn("{task.description}", justify="left", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.overall = self.progress.add_task("all files", total=total_files)
        self.file = None
        self._path: Path | None = None  # what the seconds bar is for: a file, or a batch's label
        self._duration = 0.0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def start_file(self, path: Path, duration: float) -> None:
        self._duration = max(duration, 0.1)
        if self.file is not None and path == self._path:
            # The same bar, its total grown: the batch's bar of worker processes or Ray, which
            # keeps its clock and its speed (and so its time left) rather than starting again.
            self.progress.update(self.file, total=round(self._duration))
            return
        if self.file is not None:
            self.progress.remove_task(self.file)
        self.file = self.progress.add_task(f"  {path.name[:40]} (s)", total=round(self._duration))
        self._path = path

    def advance(self, seconds: float) -> None:
        if self.file is not None:
            self.progress.update(self.file, completed=min(round(seconds), round(self._duration)))

    def end_file(self, path: Path, status: str, detail: str = "") -> None:
        if self.file is not None and path == self._path:  # a batch's bar stays as its files end
            self.progress.remove_task(self.file)
            self.file = None
        colour = {"indexed": "green", "skipped": "dim", "failed": "red"}[status]
        self.progress.console.print(labelled(f"{status:>8}", colour, f"{path}" + (f": {detail}" if detail else "")))
        self.progress.advance(self.overall)


def _index_inputs(paths: list[Path], fresh: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files, problems) to index. Refused before a library is made: a run that finds no file
    (every path missing, or folders without videos), and for a new library, files none of which is a video (probed until
    one is: a header read each)."""
    from rereel.errors import MediaError
    from rereel.media import probe
    from rereel.media.find import not_a_file_reason, scan_videos

    files, problems = scan_videos(paths)
    if not files:  # a batch goes on past a missing path; a run with nothing to index stops here
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise RereelError(f"{missing[0]}: {not_a_file_reason(missing[0]) or 'no such file or folder'}; nothing indexed")
        path, reason = problems[0]
        raise RereelError(f"{path}: {reason}; nothing indexed")
    if fresh:
        first = None
        for f in files:
            try:
                probe(f)
                break
            except MediaError as e:
                first = first or e
        else:
            more = f" (and {len(files) - 1} more files, none a video)" if len(files) > 1 else ""
            raise RereelError(f"{first}{more}; nothing indexed, no library made")
    return files, problems


def _take_away_new(root: Path, before: set[Path] | None) -> None:
    """Remove what appeared for library `root` since `before` (its entries then; None: the folder
    did not exist), so that a library this run made and left empty does not stay behind."""
    made = [root] if before is None else sorted(set(root.iterdir()) - before) if root.is_dir() else []
    for p in made:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@app.command(epilog=examples("rereel index ~/footage --library ~/my-library",
                             "rereel index film.mp4 trailer.webm --detector target",
                             "rereel index /mnt/archive --engine ray --ray-address head-node:6379"))
def index(
    # Text, not Path: Path("") is ".", and an empty argument (an unset shell variable) indexed
    # everything under the current folder.
    paths: Annotated[list[str], typer.Argument(metavar="PATH", help="Video files or folders (searched recursively).")],
    library: LibraryOpt = None,
    encoder: Annotated[str, typer.Option(metavar="NAME", help="Image network, by registry name.")] = "effnet-lite0",
    detector: Annotated[str, typer.Option(metavar="NAME", help="Shot detector: content (cuts + fades), transnetv2, or target (both, for short targets; slow on an archive).")] = "content",
    sample_fps: Annotated[float, typer.Option(metavar="FPS", help="At most this many frames embedded per second (sampled by change, at least 1 a second).")] = 4.0,
    device: DeviceOpt = None,
    engine: Annotated[str, typer.Option(metavar="local|ray", help="local: this machine; ray: Ray Data over a cluster (pip install 'rereel\\[ray]'; docs/scale.md).")] = "local",
    jobs: Annotated[Optional[int], typer.Option(metavar="N", help="With --engine local: files analysed at once, each in a worker process (default: one a core on the CPU, as many as free memory holds at 1 GB each; 1 with a GPU).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(metavar="ADDR", help="With --engine ray: the Ray cluster to join (HOST:6379); default a local Ray on this machine's cores.")] = None,
) -> None:
    """Index videos into a library: shots, frame embeddings, composition grids, colours, thumbnails.

    Each video is decoded once. Several files are analysed at once, one a core (`--jobs`).
    Files already in the library (same content, any path) are
    skipped, so an interrupted run resumes where it stopped; two runs may share a library.
    Paths are stored absolute. Exits 1 if any file failed (each is named with the reason).
    `--engine ray` spreads the videos over a Ray cluster and writes the same catalog.
    """
    from rereel.library import library_path
    from rereel.shots import DETECTORS

    if "" in paths:
        raise RereelError("an empty PATH (an unset variable?); name the files or folders to index, '.' for this one")
    paths = [Path(p) for p in paths]
    if detector not in DETECTORS:
        raise RereelError(f"unknown detector {detector!r}; known: {', '.join(DETECTORS)}")
    if engine not in ("local", "ray"):
        raise RereelError(f"unknown engine {engine!r}; known: local, ray")
    if not sample_fps > 0:  # before a library is made (index_paths refuses it too)
        raise RereelError(f"--sample-fps must be more than 0, not {sample_fps:g}")
    if ray_address and engine != "ray":
        raise RereelError("--ray-address needs --engine ray")
    if jobs is not None and (jobs < 1 or engine != "local"):
        raise RereelError("--jobs must be 1 or more" if jobs < 1 else "--jobs is for --engine local (Ray has its workers)")
    root = library_path(library)
    fresh = not (root / "catalog.sqlite").exists()
    files, problems = _index_inputs(paths, fresh)
    before = set(root.iterdir()) if root.is_dir() else None
    stats = _index_into(library, paths, files, problems, encoder, detector, sample_fps, device, engine, jobs, ray_address)
    report = stats.pop("report")
    held = f"library {stats['library']}: {count(stats['videos'], 'video')}, {count(stats['shots'], 'shot')}, {stats['seconds']:.0f} s"
    if fresh and stats["videos"] == 0:  # every file failed: the library this run made goes again
        _take_away_new(root, before)
        held = f"no library made at {root}"
    out.print(f"indexed {len(report.indexed)}, skipped {len(report.skipped)}, failed {len(report.failed)}; {held}")
    for path, reason in report.failed:
        err.print(labelled("error:", "red", f"{path}: {reason}"))
    if report.failed:
        raise typer.Exit(1)


def _index_into(library, paths, files, problems, encoder, detector, sample_fps, device, engine, jobs, ray_address) -> dict:
    """`index`'s run into the library (made if need be): its info, with the report under "report"."""
    from rereel.encoders import create_encoder, list_encoders
    from rereel.library import Library, index_paths

    # What may fail as a run starts (an unknown or unloadable encoder, a device this machine
    # lacks, no Ray cluster) fails before the library is made: a new library left empty stayed
    # behind, and one taken away again after a failure may be another run's, filling it by then.
    if engine == "ray":
        from rereel.library.ray_engine import connect, index_paths_ray

        if encoder not in list_encoders():  # the cluster's workers load it
            create_encoder(encoder)  # raises the one-line "unknown encoder"
        connect(ray_address)  # before the progress bars' thread: Ray forks its daemons with a preexec_fn
    else:
        from rereel.library.workers import default_jobs

        with err.status("loading the network"):  # a first run on a machine exports it (seconds, once)
            enc = create_encoder(encoder, device=device)
    with Library(library, create=True) as lib:
        lib.require_encoder_name(encoder)
        if engine == "ray":
            with RichProgress(len(files) + len(problems)) as progress:
                report = index_paths_ray(paths, lib, encoder, detector, progress, sample_fps=sample_fps,
                                         address=ray_address, device=device)
        else:
            with RichProgress(len(files) + len(problems)) as progress:
                report = index_paths(paths, lib, enc, detector, progress, sample_fps=sample_fps,
                                     jobs=jobs or default_jobs(getattr(enc, "device", "cpu")))
        return lib.info() | {"report": report}


@app.command(epilog=examples("rereel info --library ~/my-library", "rereel info --json"))
def info(
    library: LibraryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what a library holds: videos, shots, seconds of footage and the encoder."""
    from rereel.library import Library
    from rereel.media.probe import displayed_size

    with Library(library) as lib:
        stats = lib.info()
        videos = lib.catalog.videos()
        relative = lib.catalog.relative_paths()
        missing = lib.catalog.missing_paths()
    if relative:
        err.print(labelled("warning:", "yellow", f"{len(relative)} videos have relative paths from an older rereel "
                                                 f"(e.g. {relative[0]}); repair them with `rereel relink OLD NEW`"))
    if missing and not relative:  # moved or deleted since indexing: remakes leave them out
        err.print(labelled("warning:", "yellow", f"{len(missing)} of {len(videos)} videos are not where they were indexed "
                                                 f"(e.g. {min(missing)}); after a move, `rereel relink OLD NEW`"))

    def shown(v) -> tuple[int, int]:
        return displayed_size(v["width"], v["height"], v["rotation"], v["sar"])

    if as_json:
        stats["detectors"] = sorted({v["detector"] for v in videos})
        stats["items"] = [
            {"id": v["id"], "name": v["name"], "path": v["path"], "shots": v["shot_count"], "seconds": round(v["duration"], 3),
             "fps": round(v["fps"], 3), "size": list(shown(v)), "audio": bool(v["has_audio"]),
             "missing": v["path"] in missing}
            for v in videos
        ]
        print(json.dumps(stats))
        return
    table = Table(title=f"{stats['library']} ({stats['encoder']})")
    for col in ("id", "video", "shots", "seconds", "fps", "size", "audio"):
        table.add_column(col, justify="right" if col not in ("video",) else "left")
    for v in videos:
        table.add_row(str(v["id"]), v["name"], str(v["shot_count"]), f"{v['duration']:.1f}", f"{v['fps']:.2f}",
                      "x".join(map(str, shown(v))), "yes" if v["has_audio"] else "no")
    out.print(table)
    out.print(f"{count(stats['videos'], 'video')}, {count(stats['shots'], 'shot')}, {stats['seconds']:.1f} s, "
              f"{count(stats['frames'], 'frame')} embedded, encoder {stats['encoder']}")


@app.command(epilog=examples("rereel reembed --library ~/my-library --encoder clip"))
def reembed(
    library: LibraryOpt = None,
    encoder: Annotated[str, typer.Option(metavar="NAME", help="The encoder to re-embed every frame with.")] = "effnet-lite0",
    device: DeviceOpt = None,
) -> None:
    """Re-embed a library's frames with another encoder (shots and thumbnails are kept).

    Decodes each video again and rewrites its vectors in one transaction per video, so an
    interrupted run can be resumed by running the same command.
    """
    from rereel.encoders import create_encoder
    from rereel.library import Library
    from rereel.library.reembed import reembed_library

    with Library(library) as lib:
        enc = create_encoder(encoder, device=device)
        videos = lib.catalog.videos()
        if videos and all(v["encoder"] == enc.signature for v in videos):
            out.print(f"the library already uses {enc.signature}: nothing to re-embed")
            return
        with RichProgress(len(videos)) as progress:
            failed = reembed_library(lib, enc, progress)
    for path, reason in failed:
        err.print(labelled("error:", "red", f"{path}: {reason}"))
    if failed:
        raise typer.Exit(1)
    out.print(f"library re-embedded with {enc.signature}")


@app.command(epilog=examples("rereel relink /media/old-disk/footage /media/new-disk/footage --library ~/my-library"))
def relink(
    old: Annotated[str, typer.Argument(metavar="OLD", help="Where the footage was: the start of the paths the library holds.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="Where it is now.")],
    library: LibraryOpt = None,
) -> None:
    """Repair a library after its footage moved (another disk, a renamed folder).

    Each video whose path starts with OLD is looked for at NEW plus the rest of its path and
    relinked only if its content (fingerprint) is the one indexed; the others are reported.
    All in one transaction. Exits 1 if any video under OLD could not be relinked.
    """
    from rereel.library import Library
    from rereel.library.relink import relink as relink_library

    with Library(library) as lib:
        report = relink_library(lib.catalog, old, new)
    out.print(f"relinked {count(len(report.relinked), 'video')} from {old} to {new}"
              + (f"; {len(report.problems)} not relinked" if report.problems else ""))
    for path, reason in report.problems:
        err.print(labelled("error:", "red", f"{path}: {reason}"))
    if report.problems:
        raise typer.Exit(1)


def missing_warning(missing: list[str], past: bool = False):
    """The warning of archive videos moved or deleted since indexing, which a command leaves out
    (`past`: left out)."""
    one = len(missing) == 1
    verb = ("was" if one else "were") if past else ("is" if one else "are")
    return labelled("warning:", "yellow", f"{count(len(missing), 'archive video')} {'is' if one else 'are'} not where "
                                          f"{'it was' if one else 'they were'} indexed and {verb} left out (e.g. {missing[0]}); "
                                          "after a move, `rereel relink OLD NEW`")


def count(n: int, noun: str) -> str:
    """'1 shot', '2 shots'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
