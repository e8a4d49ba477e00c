"""Explore commands: clusters, similar, gif, map."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rereel.cli import app, examples
from rereel.cli.library import DeviceOpt, LibraryOpt, count, err, missing_warning, out
from rereel.errors import RereelError
from rereel.media.find import named_files
from rereel.outputs import check_not_a_source, check_writable


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False)


@app.command(epilog=examples("rereel clusters -o groups --library ~/my-library", "rereel clusters -o groups -n 12 --no-video"))
def clusters(
    output: Annotated[Path, typer.Option("-o", "--output", metavar="DIR", help="Folder for the grids, grid videos and index.html.")],
    library: LibraryOpt = None,
    count: Annotated[Optional[int], typer.Option("--count", "-n", metavar="N", help="Number of groups (default: chosen by silhouette).")] = None,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Also write a 3x3 grid video per group.")] = True,
    max_seconds: Annotated[float, typer.Option(metavar="SECONDS", help="Length cap of each grid video, seconds.", min=0.5)] = 6.0,
    seed: Annotated[int, typer.Option(metavar="N", help="k-means seed; the same seed gives the same groups.")] = 0,
) -> None:
    """Group the archive's shots by what the network sees: a 3x3 grid image and video per group, and index.html."""
    from rereel.explore.clustering import library_groups
    from rereel.explore.contact import GroupPage, write_contact_page
    from rereel.explore.reels import write_grid_video
    from rereel.explore.sheets import save_png, shot_sheet
    from rereel.library import Library

    check_writable(output / "index.html")  # before the k-means, not after it

    if output.exists() and not output.is_dir():
        raise RereelError(f"{output}: is a file; --output names the folder to write the groups in")
    with Library(library) as lib:
        lib.require_content()
        missing = sorted(lib.catalog.missing_paths())
        if missing:  # grouped without them (explore.clustering)
            err.print(missing_warning(missing))
        with _progress() as bar:
            task = bar.add_task("choosing groups (k)", total=None)
            grouping, groups = library_groups(lib.catalog, count, seed,
                                              on_try=lambda k, s: bar.update(task, description=f"k={k}: silhouette {s:.3f}"))
            k = len(groups)
            bar.update(task, total=1, completed=1, description=f"{k} groups")
            output.mkdir(parents=True, exist_ok=True)
            pages = []
            work = bar.add_task("groups", total=k)
            for group in groups:
                shown = group.shown
                stem = f"group_{group.number:02d}"
                title = f"group {group.number} · {len(group.ordered)} shots · cohesion {group.cohesion:.2f}"
                labels = [f"{f.name} {f.start:.1f}s" for f in shown]
                save_png(shot_sheet(lib.catalog, shown, labels, 3, title), output / f"{stem}.png")
                video_name = None
                if video:
                    cells = bar.add_task(f"  {stem}.mp4 (shots)", total=len(shown))
                    write_grid_video(shown, output / f"{stem}.mp4", max_seconds=max_seconds,
                                     on_shot=lambda done, t=cells: bar.update(t, completed=done))
                    bar.remove_task(cells)
                    video_name = f"{stem}.mp4"
                pages.append(GroupPage(group.number, f"{stem}.png", video_name, shown, group.ordered, group.cohesion))
                bar.advance(work)
        tried = ", ".join(f"{k}:{s:.2f}" for k, s in grouping.tried.items())
        summary = f"{len(grouping.labels)} shots in {k} groups ({'chosen' if count is None else 'asked'}; silhouette by k: {tried})"
        write_contact_page(output / "index.html", pages, str(lib.root), summary)
    _drop_stale_groups(output, {p.image for p in pages} | {p.video for p in pages if p.video})
    out.print(f"{len(grouping.labels)} shots in {k} groups (silhouette {grouping.silhouette:.3f}); open {output / 'index.html'}")


def _drop_stale_groups(folder: Path, written: set[str]) -> None:
    """Remove the group grids and videos an earlier `clusters` left in `folder` that this run did
    not write again: they showed other groups under the same names as the new page's (a run with
    fewer groups, or --no-video). Only rereel's own names are touched."""
    for path in folder.iterdir():
        if re.fullmatch(r"group_\d{2,}\.(png|mp4)", path.name) and path.name not in written:
            path.unlink(missing_ok=True)


@app.command(epilog=examples('rereel similar "a horse galloping" -o horses.mp4',
                             "rereel similar photo.jpg -o like-photo.png --top 9",
                             "rereel similar film.mp4@12.5-15 -o alike.mp4"))
def similar(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="An image, a video, a range clip.mp4@12.5-15, a shot id (shot:42 or #42), or words.")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="Compilation .mp4, or a grid .png.")],
    library: LibraryOpt = None,
    top: Annotated[int, typer.Option("--top", "-n", metavar="N", help="How many shots.", min=1)] = 12,
    min_seconds: Annotated[float, typer.Option(metavar="SECONDS", help="Leave out shots shorter than this (flashes, glitches).", min=0)] = 0.5,
    max_shot: Annotated[float, typer.Option(metavar="SECONDS", help="Each shot is trimmed to at most this many seconds, around its best-matching moment.", min=0.2)] = 4.0,
    width: Annotated[int, typer.Option(metavar="PIXELS", help="Compilation width; the height follows the shots' median aspect ratio.", min=64)] = 960,
    fps: Annotated[float, typer.Option(metavar="FPS", help="Compilation frame rate.", min=1)] = 24.0,
    crop: Annotated[bool, typer.Option("--crop/--letterbox", help="Fill the frame and crop, or fit with bars.")] = False,
    device: DeviceOpt = None,
) -> None:
    """Find the archive shots most like QUERY: an MP4 compilation, or a grid PNG when OUTPUT ends in .png."""
    from rereel.explore.footage import Footage
    from rereel.explore.query import QueryResolver
    from rereel.explore.reels import compilation_size, write_compilation
    from rereel.explore.similar import best_window, similar_shots
    from rereel.explore.sheets import save_png, shot_sheet
    from rereel.library import Library

    check_writable(output)

    if output.suffix.lower() not in (".mp4", ".png"):
        raise RereelError(f"{output}: the output is a compilation (.mp4) or a grid image (.png)")
    with Library(library) as lib:
        lib.require_content()
        check_not_a_source([output], lib.catalog.video_paths() + named_files(query))
        q = QueryResolver(lib, device).resolve(query)
        if q.classes:
            used = ", ".join(f"{m.name} ({m.weight:.1f})" for m in q.classes)
            out.print(f"words {q.description!r} → ImageNet classes: {used}")
        hits = similar_shots(lib, q, top, min_seconds)
        if not hits:
            raise RereelError(f"no shot of at least {min_seconds:g} s to show (lower --min-seconds?)")
        for rank, h in enumerate(hits, 1):
            out.print(f"{rank:>3}. {h.score:.3f}  #{h.footage.shot_id} {h.footage.name} {h.footage.start:.2f}-{h.footage.end:.2f} s")
        if output.suffix.lower() == ".png":
            columns = min(len(hits), 3 if len(hits) <= 9 else 4 if len(hits) <= 16 else 5)
            labels = [f"{i}. {h.score:.2f} {h.footage.name} {h.footage.start:.1f}s" for i, h in enumerate(hits, 1)]
            save_png(shot_sheet(lib.catalog, [h.footage for h in hits], labels, columns, f"like {q.description}"), output)
        else:
            pieces = []
            for h in hits:
                start, end = best_window(lib, h.footage, q.vector, max_shot)
                f = h.footage
                pieces.append(Footage(f.path, start, end, f.name, f.shot_id, f.video_id))
            w, hgt = compilation_size(sorted({p.path for p in pieces}), width)
            with _progress() as bar:
                task = bar.add_task("cutting shots", total=len(pieces))
                write_compilation(pieces, output, width=w, height=hgt, rate=fps, fit="cover" if crop else "letterbox",
                                  on_piece=lambda done: bar.update(task, completed=done))
    out.print(f"wrote {output} ({count(len(hits), 'shot')} like {q.kind} {q.description})")


@app.command(epilog=examples('rereel gif "#42" -o reaction.gif --caption "me on Monday"',
                             "rereel gif clip.mp4@12.5-15 -o moment.gif --max-mb 2",
                             "rereel gif --pair remake.otio:3 -o pair.gif"))
def gif(
    shot_or_range: Annotated[Optional[str], typer.Argument(metavar="SHOT|RANGE|VIDEO", help="A shot id (shot:42, #42), a range clip.mp4@12.5-15, or a video.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="The .gif to write.")] = Path("reaction.gif"),
    library: LibraryOpt = None,
    caption: Annotated[Optional[str], typer.Option(metavar="TEXT", help="Meme caption: white capitals, black outline, at the bottom; at most 120 characters, Latin letters.")] = None,
    width: Annotated[int, typer.Option(metavar="PIXELS", help="Width in pixels (per side with --pair); shrunk if needed to fit --max-mb.", min=64)] = 480,
    max_mb: Annotated[float, typer.Option(metavar="MB", help="Size cap in megabytes (10^6 bytes).", min=0.05)] = 5.0,
    max_seconds: Annotated[float, typer.Option(metavar="SECONDS", help="Length cap, seconds.", min=0.2)] = 6.0,
    pair: Annotated[Optional[str], typer.Option(
        metavar="TIMELINE.otio:SHOT", help="A remake's target shot beside its archive match; SHOT is the shot's number "
                                            "(from 1) or a timecode in it, as `rereel choose` takes.")] = None,
) -> None:
    """A looping reaction GIF of a shot or a range, optionally captioned, under a size cap."""
    from rereel.explore.footage import decode_footage, parse_shot_id, resolve_footage
    from rereel.explore.gif import MAX_RATE, check_caption, make_gif
    from rereel.explore.pairs import pair_frames, side_size
    from rereel.library import Library

    check_writable(output)
    check_caption(caption)  # before any frame is decoded

    if output.suffix.lower() != ".gif":
        raise RereelError(f"{output}: a GIF file name ends in .gif")
    if (shot_or_range is None) == (pair is None):
        raise RereelError("give either a shot or range, or --pair TIMELINE.otio:SHOT (one of the two)")
    rate = MAX_RATE
    if pair is not None:
        target, match = _numbered_pair(pair)
        check_not_a_source([output], [target.path, match.path])
        frames = pair_frames(target, match, rate, width, min(max_seconds, target.duration))
        what = f"{target.label} | {match.label}"
    else:
        lib = Library(library) if parse_shot_id(shot_or_range) is not None else None
        try:
            footage = resolve_footage(shot_or_range, lib.catalog if lib else None)
        finally:
            if lib is not None:
                lib.close()
        check_not_a_source([output], [footage.path])
        frames = decode_footage(footage, rate, *side_size(footage.path, width), "cover", max_seconds)
        what = footage.label
    with _progress() as bar:
        task = bar.add_task("fitting under the cap", total=None)
        result = make_gif(frames, rate, output, width=frames.shape[2], max_bytes=int(max_mb * 1e6), caption=caption,
                          on_try=lambda size, w, h, f, c: bar.update(task, description=f"{w}x{h} {f:g} fps {c} colours: {size / 1e6:.2f} MB"))
        bar.update(task, total=1, completed=1)
    out.print(f"wrote {output}: {result.bytes / 1e6:.2f} MB, {result.width}x{result.height}, {result.fps:g} fps, "
              f"{result.colours} colours, {result.frames} frames ({what})")


def _numbered_pair(spec: str):
    """--pair TIMELINE.otio:SHOT with SHOT numbered as everywhere (from 1, or a timecode in it)."""
    from rereel.explore.pairs import timeline_pair
    from rereel.timeline import find_shot, read_timeline

    path_text, sep, shot_text = spec.partition(".otio:")
    if not sep or not shot_text.strip():
        raise RereelError(f"--pair {spec!r}: write TIMELINE.otio:SHOT, e.g. remake.otio:3")
    path = Path(path_text + ".otio")
    tl = read_timeline(path)
    shot = find_shot(tl, shot_text, path)
    target, match = timeline_pair(tl, shot.index)
    if match is None:
        raise RereelError(f"{path}: {shot.label} is black in the remake; it has no archive match to pair")
    return target, match


@app.command("map", epilog=examples("rereel map -o map.png --library ~/my-library"))
def map_command(
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="The map, .png.")] = Path("map.png"),
    library: LibraryOpt = None,
    thumb_width: Annotated[int, typer.Option(metavar="PIXELS", help="Thumbnail width on the map, pixels.", min=24)] = 112,
    seed: Annotated[int, typer.Option(metavar="N", help="t-SNE seed; the same seed gives the same map.")] = 0,
) -> None:
    """A 2-D map (t-SNE) of the archive's shots drawn with their thumbnails: near means alike to the network."""
    from rereel.explore.atlas import draw_map
    from rereel.explore.sheets import save_png, thumbnail_image
    from rereel.explore.footage import shot_footage
    from rereel.explore.tsne import ITERATIONS, MAX_POINTS, map_sample, tsne
    from rereel.library import Library

    check_writable(output)

    if output.suffix.lower() != ".png":
        raise RereelError(f"{output}: the map is a .png")
    with Library(library) as lib:
        lib.require_content()
        ids, vectors, sampled = map_sample(*lib.catalog.embeddings("shots"), seed)
        note = f" (a sample of {MAX_POINTS})" if sampled else ""
        with _progress() as bar:
            task = bar.add_task("t-SNE", total=ITERATIONS)
            positions = tsne(vectors, seed=seed, on_iteration=lambda i, total: bar.update(task, completed=i))
            bar.update(task, completed=ITERATIONS)
        footage = [shot_footage(lib.catalog, int(i)) for i in ids]
        videos = sorted({f.video_id for f in footage})
        names = {v["id"]: v["name"] for v in lib.catalog.videos()}
        image = draw_map(positions, [thumbnail_image(lib.catalog, f) for f in footage],
                         [videos.index(f.video_id) for f in footage], [names[v] for v in videos],
                         thumb_width=thumb_width, title=f"{lib.root}: {len(ids)} shots{note}, t-SNE of {lib.encoder} embeddings")
        save_png(image, output)
    out.print(f"wrote {output} ({count(len(ids), 'shot')}{note})")
