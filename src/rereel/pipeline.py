"""The remake pipeline: analyse a target (`shots` + `encoders`), match its shots against the
`library` (`match`), write the `timeline`, `render` it. It sits above all of those layers; the
CLI's `rereel remake` and the web editor call it. Every stage reports progress through
`stage(name, total)` / `advance(done)` callbacks.

Black target shots get suggestions too (matched as if seen; they stay black until someone fills
one). The web editor keeps the target's analysis (`save_analysis`) so that it can match again
without decoding the target: with another seed or weights, more suggestions for one shot, or
the pieces of a shot it split or joined (`rematch`), since the cut list lives in the timeline.
The same analysis is cached between remakes (`target_cache`): remaking a target again skips it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rereel.encoders import create_encoder
from rereel.encoders.colour import BINS
from rereel.errors import MediaError, RereelError
from rereel.library import FrameRecord, Library, ShotRecord
from rereel.match.choose import MatchOptions, ShotMatch, match_shots, target_paths
from rereel.media import fingerprint
from rereel.render import check_outputs, render_timeline
from rereel.shots import TARGET_DETECTOR
from rereel.shots.detector import detector_class
from rereel.target_cache import analyse_target
from rereel.timeline import KEY, build_timeline, remake_track, require_target, write_timeline
from rereel.timeline.edit import set_suggestions, shot_info


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
    missing: list[str] = dataclasses.field(default_factory=list)  # archive videos not where indexed: left out


def remake(target: Path, library: Library, outputs: list[tuple[Path, bool]], *, timelines: list[Path] = (),
           opts: MatchOptions = MatchOptions(), detector: str = TARGET_DETECTOR, fit: str = "cover",
           device: str | None = None, encoder: str | None = None, stages: Stages | None = None,
           codec: str | None = None, reuse: bool = True, name: str | None = None) -> RemakeResult:
    """Analyse `target`, match its shots in `library`, write `timelines` and render `outputs`.

    The target's analysis is kept in the cache (`analyse_target`) and reused by the next remake
    of the same file with the same detector and encoder, unless `reuse` is False. `name`: what
    the user calls the target where its file is named otherwise (an upload the web app keeps as
    target.mp4): the timeline, its exports and the credits say it."""
    stages = stages or Stages()
    # Before any work: a target that is not a video (or is a still image), an output with no codec
    # for its name (.mp4 → H.264, .mov → ProRes or DNxHR), an output over the target.
    info = require_target(target)
    check_outputs(outputs, codec, {Path(target).resolve()})
    library.require_content()
    if library.encoder_name is None:
        raise RereelError(f"{library.root}: the library has no encoder recorded; index footage into it first")
    missing = sorted(library.catalog.missing_paths())
    if missing and len(missing) == library.catalog.stats()["videos"]:  # a disk not mounted, a folder moved
        raise RereelError(f"{library.root}: none of its {len(missing)} videos is where it was indexed (e.g. "
                          f"{missing[0]}); after a move, `rereel relink OLD NEW --library {library.root}`")
    if encoder is not None:
        library.require_encoder_name(encoder)
    # Said, because the first remake on a machine exports both networks to ONNX here (5-10 s on
    # a laptop's CPU, once; later runs find them in the cache folder at once).
    stages.stage("loading the networks", 1)
    encoder = create_encoder(library.encoder_name, device=device)
    library.require_encoder(encoder.signature)
    detector_class(detector).prepare()
    stages.advance(1)

    target_print = fingerprint(target)  # of the file analysed now, not of one that replaces it meanwhile
    shots = analyse_target(target, encoder, detector, info.fps, stages, info.duration, reuse=reuse)
    rate = info.constant_fps
    by_time = rate != info.fps  # a variable rate: shots counted in frames of the constant rate, from their times
    if by_time:  # the first shot from frame 0 whatever its first frame's time, so no cut moves
        shots = [dataclasses.replace(s, start_frame=round(s.start * rate) if k else 0, end_frame=round(s.end * rate))
                 for k, s in enumerate(shots)]

    stages.stage("matching shots", len(shots))
    exclude = _exclude(target, library, target_print, set(missing))
    matches = match_shots(shots, library, opts, exclude_paths=exclude, on_shot=lambda n, _: stages.advance(n))
    _suggest_for_black(shots, matches, library, opts, exclude)
    _check_indexed(matches, library)

    frames = shots[-1].end_frame
    tl = build_timeline(
        f"{Path(name).stem if name else target.stem} remade",
        {"path": str(target.resolve()), "fps": rate, "width": info.display_size[0], "height": info.display_size[1],
         "duration": info.duration, "frames": frames, "has_audio": info.has_audio,
         "fingerprint": target_print, "by_time": by_time} | ({"name": name} if name else {}),
        matches,
        {"library": str(library.root.resolve()), "encoder": encoder.signature, "detector": detector,
         "seed": opts.seed, "weights": vars(opts.weights), "fit": fit},
    )
    written_tl = [write_timeline(tl, p) for p in timelines]
    written = []
    if outputs:
        stages.stage("rendering (frames)", frames)
        written = render_timeline(tl, outputs, fit=fit, codec=codec, on_frame=lambda k, _: stages.advance(k))
    return RemakeResult(shots, matches, written, written_tl, tl, missing)


def _check_indexed(matches, library: Library) -> None:
    """Refuse, before any timeline is written, a chosen archive file that holds other content
    than when it was indexed (re-exported under its name): its shots' times would cut the new
    pictures, and every render of the timeline would be refused."""
    chosen = {m.chosen.path: m.chosen.fingerprint for m in matches if m.chosen is not None and m.chosen.fingerprint}
    for path, indexed in sorted(chosen.items()):
        if Path(path).exists() and fingerprint(Path(path)) != indexed:
            raise MediaError(path, "changed since it was indexed (other content under its name); index it again "
                                   f"(rereel index {Path(path).parent} --library {library.root}), then remake")


def _exclude(target: Path, library: Library, target_print: str | None = None,
             missing: set[str] | None = None) -> set[str]:
    """Paths never suggested: the target itself, also where the library holds a copy of it, and
    videos not where they were indexed (no render could read them)."""
    if target_print is None and target.exists():
        target_print = fingerprint(target)
    same = library.catalog.video_by_fingerprint(target_print) if target_print else None
    if missing is None:
        missing = library.catalog.missing_paths()
    return target_paths(target) | ({same["path"]} if same is not None else set()) | missing


def _timeline_exclude(tl, library: Library) -> set[str]:
    """`_exclude` for a remake's timeline: its target known by the fingerprint the timeline
    recorded, so that matching again needs no target file (it may have moved since)."""
    target = tl.metadata[KEY]["target"]
    return _exclude(Path(target["path"]), library, target.get("fingerprint"))


def _seen(shot: ShotRecord) -> ShotRecord:
    # match_shots leaves black shots unmatched; as bright, it matches them on their features.
    return dataclasses.replace(shot, luma=255.0, thumb=b"")


def _suggest_for_black(shots: list[ShotRecord], matches: list[ShotMatch], library: Library,
                       opts: MatchOptions, exclude: set[str]) -> None:
    """Suggestions for the black target shots (a dark face is still something to match); none chosen."""
    black = [i for i, m in enumerate(matches) if m.black]
    if not black:
        return
    for i, m in zip(black, _visible_matches([_seen(shots[i]) for i in black], library, opts, exclude)):
        matches[i].suggestions = m.suggestions


def _visible_matches(records: list[ShotRecord], library: Library, opts: MatchOptions, exclude: set[str]) -> list[ShotMatch]:
    """Matches of black target shots, to fill them: footage that shows something. Twice as many
    asked for: archive pieces as black as the target shot match it best, yet filling a black shot
    with black footage is no suggestion (they came first, "strong match")."""
    wide = dataclasses.replace(opts, suggestions=2 * opts.suggestions)
    found = match_shots(records, library, wide, exclude_paths=exclude)
    for m in found:
        m.suggestions = [c for c in m.suggestions if not _shows_nothing(library, c)][: opts.suggestions]
    return found


DARK_SHARE = 0.99  # of a frame's pixels darker than 64 in every channel: nothing to see there


def _shows_nothing(library: Library, c) -> bool:
    """Whether the piece a suggestion would show is black, as a fade-in's first second is: each of
    its sampled frames has almost all its pixels in the colour histogram's darkest cell (every
    channel below 64 of 255: a uniform grey of 28, nothing to see, is dark on this rule, where
    the mean-luma rule of target shots, BLACK_LUMA, would keep it). Read off the stored colour
    signature (encoders/colour.py): its histogram part has unit length before normalisation,
    so dividing by that part's length undoes it."""
    frames = library.catalog.shot_frames(c.shot_id)
    # The samples on screen during the piece: the last one at or before its start (a still
    # stretch is sampled once a second), to the last one before its end.
    times = frames["time"]
    first = max(0, int(np.searchsorted(times, c.placement.start + 1e-6, side="right")) - 1)
    last = max(first + 1, int(np.searchsorted(times, c.placement.end - 1e-6, side="left")))
    sig = frames["colour"][first:last]
    hist = sig[:, :BINS**3]
    length = np.sqrt(np.maximum((hist**2).sum(axis=1), 1e-12))
    share = (hist[:, 0] / length) ** 2
    return bool((share >= DARK_SHARE).all())


# -- matching again, in the editor ---------------------------------------------------------------
ANALYSIS = "analysis.npz"  # a project's copy of its target's analysis (`target_cache.save_analysis`)


@dataclass
class Analysis:
    frame_index: np.ndarray
    time: np.ndarray
    embedding: np.ndarray
    grid: np.ndarray
    colour: np.ndarray
    shots: list[dict]  # as analysed: idx, start_frame, end_frame, start, end, luma

    def records(self, infos: list[dict]) -> list[ShotRecord]:
        """Shot records for target shots of a timeline (their metadata), from the sampled frames inside each."""
        out = []
        for info in infos:
            inside = np.nonzero((self.time >= info["target_start"] - 1e-6) & (self.time < info["target_end"] - 1e-6))[0]
            if len(inside) == 0:
                raise RereelError(f"shot {info['target_shot'] + 1} is too short to match: no analysed frame inside it")
            out.append(ShotRecord(
                idx=info["target_shot"], start_frame=info["target_start_frame"], end_frame=info["target_end_frame"],
                start=float(info["target_start"]), end=float(info["target_end"]), luma=255.0, thumb=b"",
                frames=[FrameRecord(int(self.frame_index[i]), float(self.time[i]), self.embedding[i], self.grid[i],
                                    self.colour[i]) for i in inside]))
        return out


def load_analysis(path: Path) -> Analysis:
    if not path.exists():
        raise RereelError(f"{path.parent.name}: this project keeps no analysis of its target (made before the "
                          "editor could match again); start a new remake of it")
    with np.load(path) as z:
        return Analysis(z["frame_index"], z["time"], z["embedding"], z["grid"], z["colour"], json.loads(str(z["shots"])))


def analysed_shots(path: Path) -> list[dict]:
    """The shots as analysed (idx, frames, seconds, luma), without loading the features."""
    with np.load(path) as z:
        return json.loads(str(z["shots"]))


def _suggestion(c) -> dict:
    return c.to_dict() | {"fps": c.fps}  # the rate saves a probe of the file on each swap


def rematch(tl, library: Library, analysis: Analysis, shots: list[int], opts: MatchOptions) -> list[int]:
    """Match target shots `shots` (0-based) of timeline `tl` again and swap in the new choice; a shot
    black in the remake gets suggestions and stays black (one filled from the archive is filled
    again). Returns the shots changed."""
    fields = ("target_shot", "target_start_frame", "target_end_frame", "target_start", "target_end", "black", "chosen",
              "user_black")
    infos = shot_info(tl)  # copied: swapping a shot in frees its item's metadata
    wanted = [{k: infos[i].get(k) for k in fields} for i in shots]
    if not wanted:
        return []
    exclude = _timeline_exclude(tl, library)
    found = match_shots(analysis.records(wanted), library, opts, exclude_paths=exclude)
    # Black in the target and never filled, or set black by the user: it stays black, and is
    # offered footage that shows something (see _suggest_for_black).
    black = [(bool(info.get("black")) or bool(info.get("user_black"))) and info.get("chosen") is None for info in wanted]
    dark_ones = [k for k, b in enumerate(black) if b and wanted[k].get("black")]
    if dark_ones:
        again = _visible_matches(analysis.records([wanted[k] for k in dark_ones]), library, opts, exclude)
        for k, m in zip(dark_ones, again):
            found[k] = m
    for info, m, stays_black in zip(wanted, found, black):
        set_suggestions(tl, info["target_shot"], [_suggestion(c) for c in m.suggestions],
                        None if stays_black or m.chosen is None else 0)
    return [info["target_shot"] for info in wanted]


def more_suggestions(tl, library: Library, analysis: Analysis, shot: int, opts: MatchOptions, more: int = 5) -> int:
    """Add up to `more` suggestions to target shot `shot`, after those it has; its choice stays.
    Returns how many were added."""
    info = shot_info(tl)[shot]
    have = list(info.get("suggestions") or [])
    known = {(s["shot_id"], round(s["start"], 2)) for s in have}
    wide = dataclasses.replace(opts, suggestions=len(have) + more, pool=max(opts.pool, 4 * (len(have) + more)))
    [m] = match_shots(analysis.records([info]), library, wide, exclude_paths=_timeline_exclude(tl, library))
    dark_target = bool(info.get("black")) and info.get("chosen") is None  # to be filled: with something to see
    new = [_suggestion(c) for c in m.suggestions if (c.shot_id, round(c.placement.start, 2)) not in known
           and not (dark_target and _shows_nothing(library, c))][:more]
    if new:  # the metadata only: what is on screen does not change
        for item in remake_track(tl):
            if item.metadata.get(KEY, {}).get("target_shot") == shot and "hold_of" not in item.metadata[KEY]:
                item.metadata[KEY]["suggestions"] = have + new
                break
    return len(new)
