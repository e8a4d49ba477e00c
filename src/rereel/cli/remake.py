"""Remake commands: remake, render, choose, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rereel.cli import app
from rereel.cli.library import LibraryOpt, err, out


class RichStages:
    def __init__(self):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
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


@app.command()
def remake(
    target: Annotated[Path, typer.Argument(help="The video to remake (a trailer).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The remake, .mp4.")],
    library: LibraryOpt = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Make OUTPUT target | remake in one frame.")] = False,
    side_by_side_out: Annotated[Optional[Path], typer.Option(help="Also write a side-by-side version here, in the same pass.")] = None,
    suggestions: Annotated[int, typer.Option(help="Archive suggestions kept per target shot (K).", min=1)] = 5,
    timeline: Annotated[Optional[list[Path]], typer.Option(help="Write the timeline: .otio, .edl (CMX 3600) or .xml (FCP XML). Repeatable.")] = None,
    seed: Annotated[int, typer.Option(help="Breaks near-ties; the same seed gives the same remake.")] = 0,
    semantic: Annotated[float, typer.Option(help="Weight of what is in the frame.")] = 0.6,
    composition: Annotated[float, typer.Option(help="Weight of where things are in the frame.")] = 0.25,
    colour: Annotated[float, typer.Option(help="Weight of tone and colour.")] = 0.15,
    variety: Annotated[float, typer.Option(help="Random preference that varies near-equal choices.")] = 0.01,
    letterbox: Annotated[bool, typer.Option("--letterbox", help="Fit archive frames inside, with bars, instead of filling and cropping.")] = False,
    detector: Annotated[str, typer.Option(help="Shot detector for the target: target (content + TransNetV2 + black pauses), content or transnetv2.")] = "target",
    device: Annotated[Optional[str], typer.Option(help="cuda, mps or cpu.")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="Must match the library's encoder (default: the library's).")] = None,
) -> None:
    """Remake TARGET with archive shots, cut on its frames, under its own audio.

    Each target shot is replaced by the archive segment the network finds most alike, compared
    through time on what is in the frame, where it is, and tone and colour.
    """
    from rereel.library import Library
    from rereel.match.choose import MatchOptions
    from rereel.match.score import Weights
    from rereel.credits import credits_text, write_credits
    from rereel.pipeline import remake as run

    outputs = [(output, side_by_side)] + ([(side_by_side_out, True)] if side_by_side_out else [])
    opts = MatchOptions(suggestions=suggestions, weights=Weights(semantic, composition, colour), seed=seed, variety=variety)
    with Library(library) as lib, RichStages() as stages:
        result = run(target, lib, outputs, timelines=timeline or [], opts=opts, detector=detector,
                     fit="letterbox" if letterbox else "cover", device=device, encoder=encoder, stages=stages)
    chosen = [m for m in result.matches if m.chosen]
    films = {m.chosen.video_id for m in chosen}
    mean = sum(m.chosen.score for m in chosen) / max(1, len(chosen))
    out.print(f"{len(result.matches)} target shots: {len(chosen)} matched from {len(films)} archive films "
              f"(mean score {mean:.3f}), {len(result.matches) - len(chosen)} kept black")
    # CC BY footage must be credited wherever a result is published: the credits go beside it.
    text = credits_text(result.timeline)  # worked out once for every output
    credits = [write_credits(result.timeline, p, text) for p in result.outputs]
    for p in result.outputs + result.timelines + credits:
        out.print(f"wrote {p}")


@app.command()
def render(
    timeline: Annotated[Path, typer.Argument(help="A remake timeline (.otio), edited or not.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The video, .mp4.")],
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Target | remake in one frame.")] = False,
    letterbox: Annotated[Optional[bool], typer.Option("--letterbox/--cover", help="Fit archive frames (default: as when remade).")] = None,
) -> None:
    """Render a remake timeline, e.g. after swapping suggestions by hand or in an editor."""
    from rereel.credits import write_credits
    from rereel.render import render_timeline
    from rereel.timeline import KEY, read_timeline

    tl = read_timeline(timeline)
    fit = tl.metadata[KEY].get("fit", "cover") if letterbox is None else ("letterbox" if letterbox else "cover")
    with RichStages() as stages:
        stages.stage("rendering (frames)", tl.metadata[KEY]["target"]["frames"])
        paths = render_timeline(tl, [(output, side_by_side)], fit=fit, on_frame=lambda k, _: stages.advance(k))
    out.print(f"wrote {paths[0]}")
    out.print(f"wrote {write_credits(tl, paths[0])}")


@app.command()
def choose(
    timeline: Annotated[Path, typer.Argument(help="A remake timeline (.otio); edited in place.")],
    shot: Annotated[int, typer.Argument(help="Target shot index (from 0).")],
    suggestion: Annotated[int, typer.Argument(help="Suggestion number (0 = the best).")],
) -> None:
    """Swap another of the K suggestions into one target shot of a timeline."""
    from rereel.timeline import choose_suggestion, read_timeline, write_timeline

    tl = read_timeline(timeline)
    choose_suggestion(tl, shot, suggestion)
    write_timeline(tl, timeline)
    out.print(f"shot {shot} now uses suggestion {suggestion}; render with `rereel render {timeline} -o OUT.mp4`")


@app.command()
def export(
    timeline: Annotated[Path, typer.Argument(help="A remake timeline (.otio).")],
    output: Annotated[Path, typer.Argument(help="OUT.edl (CMX 3600), OUT.xml (FCP XML) or OUT.otio.")],
) -> None:
    """Export a timeline for editing software through the OpenTimelineIO adapters."""
    from rereel.timeline import read_timeline, write_timeline

    out.print(f"wrote {write_timeline(read_timeline(timeline), output)}")
