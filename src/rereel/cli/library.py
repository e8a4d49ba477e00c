"""Library commands: index, info, reembed, relink."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rereel.cli import app

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

LibraryOpt = Annotated[
    Optional[Path],
    typer.Option("--library", "-l", help="Library folder (default: $REREEL_LIBRARY, else ./rereel-library)."),
]


class RichProgress:
    """Two bars: the current file (seconds of video) and the whole batch (files)."""

    def __init__(self, total_files: int):
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.overall = self.progress.add_task("all files", total=total_files)
        self.file = None
        self._duration = 0.0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def start_file(self, path: Path, duration: float) -> None:
        self._duration = max(duration, 0.1)
        if self.file is not None:
            self.progress.remove_task(self.file)
        self.file = self.progress.add_task(f"  {path.name[:40]} (s)", total=round(self._duration))

    def advance(self, seconds: float) -> None:
        if self.file is not None:
            self.progress.update(self.file, completed=min(round(seconds), round(self._duration)))

    def end_file(self, path: Path, status: str, detail: str = "") -> None:
        if self.file is not None:
            self.progress.remove_task(self.file)
            self.file = None
        colour = {"indexed": "green", "skipped": "dim", "failed": "red"}[status]
        self.progress.console.print(f"[{colour}]{status:>8}[/{colour}] {path}" + (f": {detail}" if detail else ""))
        self.progress.advance(self.overall)


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Video files or folders (searched recursively).")],
    library: LibraryOpt = None,
    encoder: Annotated[str, typer.Option(help="Image network, by registry name.")] = "effnet-lite0",
    detector: Annotated[str, typer.Option(help="Shot detector: content (cuts + fades), transnetv2, or target (both, for short targets; slow on an archive).")] = "content",
    sample_fps: Annotated[float, typer.Option(help="Frames embedded per second of video.")] = 4.0,
    device: Annotated[Optional[str], typer.Option(help="cuda, mps or cpu (default: the best present).")] = None,
) -> None:
    """Index videos into a library: shots, frame embeddings, composition grids, colours, thumbnails.

    Each video is decoded once. Files already in the library (same content, any path) are
    skipped, so an interrupted run resumes where it stopped; two runs may share a library.
    Paths are stored absolute. Exits 1 if any file failed (each is named with the reason).
    """
    from rereel.encoders import create_encoder
    from rereel.library import Library, index_paths
    from rereel.media.find import scan_videos
    from rereel.shots import DETECTORS

    if detector not in DETECTORS:
        raise typer.BadParameter(f"unknown detector {detector!r}; known: {', '.join(DETECTORS)}", param_hint="--detector")
    with Library(library, create=True) as lib:
        lib.require_encoder_name(encoder)
        enc = create_encoder(encoder, device=device)
        files, problems = scan_videos(paths)
        with RichProgress(len(files) + len(problems)) as progress:
            report = index_paths(paths, lib, enc, detector, progress, sample_fps=sample_fps)
        stats = lib.info()
    out.print(
        f"indexed {len(report.indexed)}, skipped {len(report.skipped)}, failed {len(report.failed)}; "
        f"library {stats['library']}: {stats['videos']} videos, {stats['shots']} shots, {stats['seconds']:.0f} s"
    )
    for path, reason in report.failed:
        err.print(f"[red]error:[/red] {path}: {reason}")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def info(
    library: LibraryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what a library holds: videos, shots, seconds of footage and the encoder."""
    from rereel.library import Library

    with Library(library) as lib:
        stats = lib.info()
        videos = lib.catalog.videos()
        relative = lib.catalog.relative_paths()
    if relative:
        err.print(f"[yellow]warning:[/yellow] {len(relative)} videos have relative paths from an older rereel "
                  f"(e.g. {relative[0]}); repair them with `rereel relink OLD NEW`")
    if as_json:
        stats["detectors"] = sorted({v["detector"] for v in videos})
        stats["items"] = [
            {"id": v["id"], "name": v["name"], "path": v["path"], "shots": v["shot_count"], "seconds": round(v["duration"], 3),
             "fps": round(v["fps"], 3), "size": [v["width"], v["height"]], "audio": bool(v["has_audio"])}
            for v in videos
        ]
        print(json.dumps(stats))
        return
    table = Table(title=f"{stats['library']} ({stats['encoder']})")
    for col in ("id", "video", "shots", "seconds", "fps", "size", "audio"):
        table.add_column(col, justify="right" if col not in ("video",) else "left")
    for v in videos:
        table.add_row(str(v["id"]), v["name"], str(v["shot_count"]), f"{v['duration']:.1f}", f"{v['fps']:.2f}",
                      f"{v['width']}x{v['height']}", "yes" if v["has_audio"] else "no")
    out.print(table)
    out.print(f"{stats['videos']} videos, {stats['shots']} shots, {stats['seconds']:.1f} s, {stats['frames']} frames embedded, encoder {stats['encoder']}")


@app.command()
def reembed(
    library: LibraryOpt = None,
    encoder: Annotated[str, typer.Option(help="The encoder to re-embed every frame with.")] = "effnet-lite0",
    device: Annotated[Optional[str], typer.Option(help="cuda, mps or cpu.")] = None,
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
        with RichProgress(len(videos)) as progress:
            failed = reembed_library(lib, enc, progress)
    for path, reason in failed:
        err.print(f"[red]error:[/red] {path}: {reason}")
    if failed:
        raise typer.Exit(1)
    out.print(f"library re-embedded with {enc.signature}")


@app.command()
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
    out.print(f"relinked {len(report.relinked)} videos from {old} to {new}"
              + (f"; {len(report.problems)} not relinked" if report.problems else ""))
    for path, reason in report.problems:
        err.print(f"[red]error:[/red] {path}: {reason}")
    if report.problems:
        raise typer.Exit(1)
