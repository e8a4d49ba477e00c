"""`rereel samples` (download the sample footage) and `rereel credits` (what a remake must credit)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rereel.cli import app, examples, labelled
from rereel.cli.library import err, out
from rereel.errors import RereelError

MIRROR_ENV = "REREEL_SAMPLES_MIRROR"


@app.command(epilog=examples("rereel samples ~/rereel-media",
                             "rereel samples --mirror https://example.org/rereel-media"))
def samples(
    dest: Annotated[Optional[Path], typer.Argument(
        metavar="DIR", help="Folder for the footage (default: $REREEL_MEDIA, else ~/.cache/rereel/media).")] = None,
    mirror: Annotated[Optional[str], typer.Option(
        metavar="URL", envvar=MIRROR_ENV, help=f"Fetch MIRROR/NAME instead of each file's pinned URL (default: ${MIRROR_ENV}).")] = None,
) -> None:
    """Download the sample footage (archive/, trailers/, odd/), each file checked against its sha256.

    Every file with a public URL in the manifest; from a mirror, also the derived files if it has
    them. Files already there and verified are not fetched again; a broken download resumes.
    Writes CREDITS.md beside the footage. Exit status 2 if any file could not be fetched.
    """
    from urllib.parse import urlsplit

    from rereel.outputs import check_writable
    from rereel.sample_footage import default_dest, downloadable, fetch

    dest = (dest or default_dest()).expanduser()
    if dest.exists() and not dest.is_dir():
        raise RereelError(f"{dest}: is a file, not a folder for the footage")
    check_writable(dest / "CREDITS.md")  # under a file, or where this user may not write: before any download
    if mirror and urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise RereelError(f"--mirror {mirror}: not a URL (http://, https:// or file://)")
    entries = downloadable(mirror)
    total = sum(e["size"] for e in entries)
    err.print(f"sample footage: {len(entries)} files, {total / 1e6:.0f} MB, into {dest}"
              + (f" from {mirror}" if mirror else ""))
    t0 = time.monotonic()
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, transient=True) as bar:
        tasks: dict[str, int] = {}
        overall = bar.add_task("all files", total=total)
        done_by_file: dict[str, int] = {}

        sizes: dict[str, int] = {}

        def on_start(file: str, size: int) -> None:
            sizes[file] = size
            tasks[file] = bar.add_task(f"  {file}", total=size)

        def on_progress(file: str, done: int) -> None:
            done_by_file[file] = done
            if file in tasks:
                bar.update(tasks[file], completed=done)
            bar.update(overall, completed=present_bytes + sum(done_by_file.values()))
            if done >= sizes[file] and file in tasks:
                bar.remove_task(tasks.pop(file))

        # What is already here (right size; fetch() checks its sha256) starts the overall bar.
        present_bytes = sum(e["size"] for e in entries if (dest / e["file"]).is_file()
                            and (dest / e["file"]).stat().st_size == e["size"])
        report = fetch(dest, mirror, entries, on_start=on_start, on_progress=on_progress)
    elapsed = time.monotonic() - t0
    for e in report.failed:
        err.print(labelled("error:", "red", e))
    if report.absent:
        err.print(f"{len(report.absent)} derived files are not on the mirror (optional): {', '.join(report.absent)}")
    out.print(f"{len(report.present)} present, {len(report.fetched)} fetched "
              f"({report.bytes_fetched / 1e6:.1f} MB in {elapsed:.1f} s), {len(report.failed)} failed"
              + (f"; credits in {report.credits}" if report.credits else ""))
    if report.failed:
        raise typer.Exit(2)


@app.command(epilog=examples("rereel credits remake.otio", "rereel credits remake.otio -o CREDITS.txt"))
def credits(
    timeline: Annotated[Path, typer.Argument(metavar="TIMELINE", help="A remake timeline (.otio) from `rereel remake --timeline`.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Also write the credits to this file.")] = None,
) -> None:
    """Print each archive film a remake uses: its time ranges, licence and credit line."""
    from rereel.credits import credits_text
    from rereel.outputs import write_text
    from rereel.timeline import read_timeline

    if output is not None and output.is_dir():
        raise RereelError(f"{output}: is a folder; name the file to write the credits to")
    text = credits_text(read_timeline(timeline))
    print(text, end="")
    if output is not None:
        write_text(output, text)
