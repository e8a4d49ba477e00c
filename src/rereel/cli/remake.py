"""Remake commands: remake, render, choose, export."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rereel.cli import app, examples, labelled
from rereel.cli.library import DeviceOpt, LibraryOpt, err, missing_warning, out
from rereel.errors import RereelError


class RichStages:
    def __init__(self):
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=err)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def stage(self, name: str, total: float) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
        self.task = self.progress.add_task(name, total=max(total, 1))

    def advance(self, done: float) -> None:
        self.progress.update(self.task, completed=done)


CodecOpt = Annotated[Optional[str], typer.Option(
    metavar="prores|dnxhr", help="Codec of .mov outputs, for editing and grading: ProRes 422 (the default) or DNxHR HQ, "
                                 "with the target's audio as PCM. .mp4 outputs are H.264 + AAC.")]


@app.command(epilog=examples(
    "rereel remake trailer.mp4 -o remake.mp4 --timeline remake.otio",
    "rereel remake trailer.mp4 -o remake.mov --codec dnxhr --side-by-side-out sbs.mp4 --library ~/my-library"))
def remake(
    target: Annotated[Path, typer.Argument(metavar="VIDEO", help="The video to remake (a trailer).")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="The remake: .mp4 (H.264) or .mov (ProRes or DNxHR, see --codec).")],
    library: LibraryOpt = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Make OUTPUT target | remake in one frame.")] = False,
    side_by_side_out: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Also write a side-by-side version here (.mp4 or .mov), in the same pass.")] = None,
    codec: CodecOpt = None,
    suggestions: Annotated[int, typer.Option(metavar="N", help="Archive suggestions kept per target shot (K).", min=1)] = 5,
    timeline: Annotated[Optional[list[Path]], typer.Option(
        metavar="FILE", help="Write the timeline: .otio, .edl (CMX 3600) or .xml (FCP XML). Repeatable.")] = None,
    # The bounds are the web editor's re-match form's: a seed OpenTimelineIO's metadata holds, and
    # weights whose sum stays a number (an infinite weight made every score NaN).
    seed: Annotated[int, typer.Option(metavar="N", min=0, max=2**32 - 1, help="Breaks near-ties; the same seed gives the same remake.")] = 0,
    semantic: Annotated[float, typer.Option(metavar="WEIGHT", min=0, max=100, help="Weight of what is in the frame.")] = 0.6,
    composition: Annotated[float, typer.Option(metavar="WEIGHT", min=0, max=100, help="Weight of where things are in the frame.")] = 0.25,
    colour: Annotated[float, typer.Option(metavar="WEIGHT", min=0, max=100, help="Weight of tone and colour.")] = 0.15,
    variety: Annotated[float, typer.Option(metavar="WEIGHT", min=0, max=100, help="Random preference that varies near-equal choices.")] = 0.01,
    letterbox: Annotated[bool, typer.Option("--letterbox", help="Fit archive frames inside, with bars, instead of filling and cropping.")] = False,
    detector: Annotated[str, typer.Option(metavar="NAME", help="Shot detector for the target: target (content + TransNetV2 + black pauses), content or transnetv2.")] = "target",
    device: DeviceOpt = None,
    encoder: Annotated[Optional[str], typer.Option(metavar="NAME", help="Must match the library's encoder (default: the library's).")] = None,
    reanalyse: Annotated[bool, typer.Option("--reanalyse", help="Analyse VIDEO afresh instead of reusing the cached analysis.")] = False,
) -> None:
    """Remake VIDEO with archive shots, cut on its frames, under its own audio.

    Each target shot is replaced by the archive segment the network finds most alike, compared
    through time on what is in the frame, where it is, and tone and colour. The analysis of
    VIDEO is cached ($REREEL_ANALYSIS_CACHE, else `analyses` in rereel's cache folder,
    ~/.cache/rereel by default): remaking the same file again, with other options or another
    library, skips it.
    """
    from rereel.library import Library
    from rereel.match.choose import MatchOptions
    from rereel.match.score import Weights
    from rereel.credits import credits_path, credits_text, write_credits
    from rereel.pipeline import remake as run
    from rereel.media.encode import output_codec, size_problem
    from rereel.render import check_outputs, render_timeline
    from rereel.shots import DETECTORS
    from rereel.outputs import check_not_a_source, check_writable
    from rereel.timeline import require_target, timeline_format
    from rereel.timeline.export import timecode_rate_problem

    # Everything a user can mistype is refused here, before the minutes of analysis.
    info = require_target(target)
    outputs = [(output, side_by_side)] + ([(side_by_side_out, True)] if side_by_side_out else [])
    check_outputs(outputs, codec, {target.resolve()})
    for path, _ in outputs:
        check_writable(credits_path(path))  # written beside each video, once it is made
    w, h = info.display_size
    for path, sbs in outputs:
        problem = size_problem(output_codec(path, codec if path.suffix.lower() == ".mov" else None), w * (1 + sbs), h)
        if problem:
            raise RereelError(f"{path}: {problem}")
    for i, path in enumerate(timeline or []):
        if any(path.resolve() == other.resolve() for other in timeline[:i]):
            raise RereelError(f"{path}: named for two --timeline outputs")
        timeline_format(path)
        check_writable(path)  # before the analysis, not after it
        if timecode_rate_problem(info.constant_fps, path.suffix):  # the rate the remake is made at
            raise RereelError(f"{path}: {timecode_rate_problem(info.constant_fps, path.suffix)}")
    if detector not in DETECTORS:
        raise RereelError(f"unknown detector {detector!r}; known: {', '.join(DETECTORS)}")
    if semantic + composition + colour <= 0:
        raise RereelError("--semantic, --composition and --colour are all 0: nothing would tell shots apart")
    opts = MatchOptions(suggestions=suggestions, weights=Weights(semantic, composition, colour), seed=seed, variety=variety)
    fit = "letterbox" if letterbox else "cover"
    with Library(library) as lib, RichStages() as stages:
        # The archive's files too (the render checks them again, with the timeline's files).
        check_not_a_source([p for p, _ in outputs] + list(timeline or []), lib.catalog.video_paths() + [target])
        result = run(target, lib, [], timelines=timeline or [], opts=opts, detector=detector,
                     fit=fit, device=device, encoder=encoder, stages=stages, reuse=not reanalyse)
        if result.missing:  # said before the render's minutes, above its bar
            stages.progress.console.print(missing_warning(result.missing, past=True))
        frames = result.timeline.metadata["rereel"]["target"]["frames"]
        stages.stage("rendering (frames)", frames)
        written = render_timeline(result.timeline, outputs, fit=fit, codec=codec, on_frame=lambda k, _: stages.advance(k))
    chosen = [m for m in result.matches if m.chosen]
    films = {m.chosen.video_id for m in chosen}
    mean = sum(m.chosen.score for m in chosen) / max(1, len(chosen))
    out.print(f"{len(result.matches)} target shots: {len(chosen)} matched from {len(films)} archive films "
              f"(mean score {mean:.3f}), {len(result.matches) - len(chosen)} kept black")
    # CC BY footage must be credited wherever a result is published: the credits go beside it.
    text = credits_text(result.timeline)  # worked out once for every output
    credits = [write_credits(result.timeline, p, text) for p in written]
    for p in written + result.timelines + credits:
        out.print(f"wrote {p}")


@app.command(epilog=examples("rereel render remake.otio -o remake.mp4",
                             "rereel render remake.otio -o remake.mov --codec prores"))
def render(
    timeline: Annotated[Path, typer.Argument(metavar="TIMELINE", help="A remake timeline (.otio), edited or not.")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="The video: .mp4 (H.264) or .mov (ProRes or DNxHR, see --codec).")],
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Target | remake in one frame.")] = False,
    codec: CodecOpt = None,
    letterbox: Annotated[Optional[bool], typer.Option("--letterbox/--cover", help="Fit archive frames (default: as when remade).")] = None,
) -> None:
    """Render a remake timeline, e.g. after swapping suggestions by hand or in an editor."""
    from rereel.credits import credits_path, write_credits
    from rereel.outputs import check_writable
    from rereel.render import check_outputs, frame_size, render_timeline, timeline_sources
    from rereel.timeline import KEY, read_timeline

    tl = read_timeline(timeline)
    _warn_transitions(tl, timeline, "rendered")
    # Checked before the progress bar starts (render_timeline checks again, at no cost: fingerprints are kept).
    check_outputs([(output, side_by_side)], codec, timeline_sources(tl), frame_size(tl))
    check_writable(credits_path(output))  # written beside the video, once it is made
    fit = tl.metadata[KEY].get("fit", "cover") if letterbox is None else ("letterbox" if letterbox else "cover")
    with RichStages() as stages:
        stages.stage("rendering (frames)", tl.metadata[KEY]["target"]["frames"])
        paths = render_timeline(tl, [(output, side_by_side)], fit=fit, codec=codec,
                                on_frame=lambda k, _: stages.advance(k))
    out.print(f"wrote {paths[0]}")
    out.print(f"wrote {write_credits(tl, paths[0])}")


@app.command(epilog=examples("rereel choose remake.otio 3 2",
                             "rereel choose remake.otio 00:00:12:05 1",
                             "rereel choose remake.otio 3"))
def choose(
    timeline: Annotated[Path, typer.Argument(metavar="TIMELINE", help="A remake timeline (.otio); edited in place.")],
    shot: Annotated[str, typer.Argument(
        metavar="SHOT", help="The target shot: its number (from 1, in time order, black shots included) or a "
                             "timecode inside it, HH:MM:SS:FF at the target's rate.")],
    suggestion: Annotated[Optional[int], typer.Argument(
        metavar="SUGGESTION", help="Suggestion number, from 1 (the one the remake chose). Leave it out to list the shot's suggestions.")] = None,
) -> None:
    """Swap another of the K suggestions into one target shot of a timeline, or list them.

    Shots and suggestions are numbered as in the remake editor, the OTIO metadata and the EDL
    comments: shot N is the N-th shot of the target, labelled with the timecode of its start.
    """
    from rereel.timeline import editing, read_timeline

    if timeline.suffix.lower() != ".otio":
        raise RereelError(f"{timeline}: `choose` edits a rereel .otio timeline (an EDL or XML is an export of one)")
    if suggestion is None:
        _list_suggestions(read_timeline(timeline), timeline, shot)
        return
    with editing(timeline):  # read, change and write with no other edit in between
        _choose_into(read_timeline(timeline), timeline, shot, suggestion)


def _list_suggestions(tl, timeline: Path, shot: str) -> None:
    from rereel.timeline import find_shot

    picked = find_shot(tl, shot, timeline)
    listing = picked.info.get("suggestions") or []
    if not listing:
        _choose(tl, picked.index, 0, timeline)  # says why there are none
    chosen = picked.info.get("chosen")
    for n, s in enumerate(listing, 1):
        mark = "*" if chosen == n - 1 else " "
        out.print(f"{mark} {n}. {s['score']:.3f}  {Path(s['path']).name} {s['start']:.2f}-{s['end']:.2f} s")
    out.print(f"{picked.label}: {len(listing)} suggestions (* = in use); "
              f"choose with `rereel choose {shlex.quote(str(timeline))} {picked.number} N`")  # a command to paste


def _choose_into(tl, timeline: Path, shot: str, suggestion: int) -> None:
    from rereel.timeline import find_shot, write_timeline

    picked = find_shot(tl, shot, timeline)
    listing = picked.info.get("suggestions") or []
    if suggestion < 1:
        raise RereelError(f"{timeline}: suggestions are numbered from 1 (1 = the one the remake chose); {picked.label} has {len(listing)}")
    _choose(tl, picked.index, suggestion - 1, timeline)
    write_timeline(tl, timeline)
    s = listing[suggestion - 1]
    out.print(f"{picked.label} now uses suggestion {suggestion} of {len(listing)}: {Path(s['path']).name} "
              f"{s['start']:.2f}-{s['end']:.2f} s; render with `rereel render {shlex.quote(str(timeline))} -o OUT.mp4`")


def _choose(tl, index: int, suggestion: int, path: Path) -> None:
    from rereel.timeline import choose_suggestion

    try:
        choose_suggestion(tl, index, suggestion)
    except RereelError as e:
        raise RereelError(f"{path}: {e}") from None


@app.command(epilog=examples("rereel export remake.otio remake.edl", "rereel export remake.otio remake.xml"))
def export(
    timeline: Annotated[Path, typer.Argument(metavar="TIMELINE", help="A remake timeline (.otio).")],
    output: Annotated[Path, typer.Argument(metavar="FILE", help="OUT.edl (CMX 3600), OUT.xml (FCP XML) or OUT.otio.")],
) -> None:
    """Export a timeline for editing software through the OpenTimelineIO adapters."""
    from rereel.timeline import read_timeline, timeline_format, write_timeline

    kind = timeline_format(output)
    tl = read_timeline(timeline)
    if kind in ("cmx_3600", "fcp_xml"):  # OTIO keeps them
        _warn_transitions(tl, timeline, f"written to the {'EDL' if kind == 'cmx_3600' else 'FCP XML'}")
    out.print(f"wrote {write_timeline(tl, output)}")


def _warn_transitions(tl, path: Path, how: str) -> None:
    from rereel.timeline import transitions

    n = transitions(tl)
    if n:
        err.print(labelled("warning:", "yellow", f"{path}: {n} transition{'s' * (n > 1)} (dissolve) on the remake track "
                                                 f"{'are' if n > 1 else 'is'} {how} as cuts"))
