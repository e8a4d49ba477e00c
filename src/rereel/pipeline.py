"""The remake pipeline: analyse a target (`shots` + `encoders`), match its shots against the
`library` (`match`), write the `timeline`, `render` it. It sits above all of those layers; the
CLI's `rereel remake` and the web editor call it. Every stage reports progress through
`stage(name, total)` / `advance(done)` callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rereel.encoders import create_encoder
from rereel.errors import RereelError
from rereel.library import Library, ShotRecord, analyse_video
from rereel.match.choose import MatchOptions, ShotMatch, match_shots, target_paths
from rereel.media import fingerprint, probe
from rereel.render import render_timeline
from rereel.shots import TARGET_DETECTOR
from rereel.timeline import build_timeline, write_timeline


class Stages:
    """Progress callbacks; the CLI draws them with Rich."""

    def stage(self, name: str, total: float) -> None: ...
    def advance(self, done: float) -> None: ...


@dataclass
class RemakeResult:
    shots: list[ShotRecord]  # the target's shots as analysed (features, a thumbnail each)
    matches: list[ShotMatch]
    outputs: list[Path]
    timelines: list[Path]
    timeline: object  # the OTIO Timeline, for what the caller writes beside the outputs (credits)


def remake(target: Path, library: Library, outputs: list[tuple[Path, bool]], *, timelines: list[Path] = (),
           opts: MatchOptions = MatchOptions(), detector: str = TARGET_DETECTOR, fit: str = "cover",
           device: str | None = None, encoder: str | None = None, stages: Stages | None = None) -> RemakeResult:
    stages = stages or Stages()
    for path, _ in outputs:
        if path.suffix.lower() != ".mp4":
            raise RereelError(f"{path}: the remake is written as MP4 (H.264 + AAC); name it .mp4")
    info = probe(target)  # a target that is not a video fails here, before any work
    library.require_content()
    if library.encoder_name is None:
        raise RereelError(f"{library.root}: the library has no encoder recorded; index footage into it first")
    if encoder is not None:
        library.require_encoder_name(encoder)
    encoder = create_encoder(library.encoder_name, device=device)
    library.require_encoder(encoder.signature)

    stages.stage(f"analysing {target.name} (s)", info.duration)
    shots = analyse_video(target, encoder, detector, info.fps, on_time=stages.advance)

    stages.stage("matching shots", len(shots))
    same = library.catalog.video_by_fingerprint(fingerprint(target))
    exclude = target_paths(target) | ({same["path"]} if same is not None else set())  # not the target itself
    matches = match_shots(shots, library, opts, exclude_paths=exclude, on_shot=lambda n, _: stages.advance(n))

    frames = shots[-1].end_frame
    tl = build_timeline(
        f"{target.stem} remade",
        {"path": str(target.resolve()), "fps": info.fps, "width": info.display_size[0], "height": info.display_size[1],
         "duration": info.duration, "frames": frames, "has_audio": info.has_audio},
        matches,
        {"library": str(library.root.resolve()), "encoder": encoder.signature, "detector": detector,
         "seed": opts.seed, "weights": vars(opts.weights), "fit": fit},
    )
    written_tl = [write_timeline(tl, p) for p in timelines]
    written = []
    if outputs:
        stages.stage("rendering (frames)", frames)
        written = render_timeline(tl, outputs, fit=fit, on_frame=lambda k, _: stages.advance(k))
    return RemakeResult(shots, matches, written, written_tl, tl)
