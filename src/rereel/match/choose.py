"""Match every shot of a target video to archive shots and choose one per shot.

Candidates come from the library's FAISS shot index (nearest by mean embedding), are re-ranked
by `score.place` (through time, with composition and colour), and K suggestions are kept per
target shot. The choice then favours variety: an archive shot is not used twice while unused
candidates within `reuse_margin` of the best remain, and a candidate from the film used for the
previous shot pays `film_penalty`. `seed` draws the small random preference (`variety`) that
breaks near-ties, so one seed always gives the same remake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rereel.library import Library, ShotRecord
from rereel.match.score import Placement, Weights, place
from rereel.shots.black import jpeg_is_black

BLACK_LUMA = 10.0  # a target shot darker than this (0-255) may be black: a fade or a pause, kept black


def is_black_shot(shot: ShotRecord) -> bool:
    """Black only if a viewer cannot see anything: dark on average AND nothing visible in its
    thumbnail (a dim close-up or small text on black is dark on average, yet seen)."""
    return shot.luma < BLACK_LUMA and (not shot.thumb or jpeg_is_black(shot.thumb))


@dataclass
class Candidate:
    shot_id: int
    video_id: int
    path: str
    name: str
    fps: float
    video_duration: float
    placement: Placement
    fingerprint: str = ""  # the video's content when matched: render refuses a file changed since

    @property
    def score(self) -> float:
        return self.placement.score

    def to_dict(self) -> dict:
        p = self.placement
        return {
            "shot_id": self.shot_id, "path": self.path, "start": round(p.start, 4), "end": round(p.end, 4),
            "score": round(p.score, 4), "semantic": round(p.semantic, 4), "composition": round(p.composition, 4),
            "colour": round(p.colour, 4), "long_enough": p.long_enough, "video_duration": round(self.video_duration, 4),
        } | ({"fingerprint": self.fingerprint} if self.fingerprint else {})


@dataclass
class ShotMatch:
    index: int
    start_frame: int
    end_frame: int
    start: float
    end: float
    black: bool
    suggestions: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None


@dataclass(frozen=True)
class MatchOptions:
    suggestions: int = 5
    weights: Weights = Weights()
    seed: int = 0
    variety: float = 0.01
    reuse_margin: float = 0.15
    film_penalty: float = 0.03
    pool: int = 64  # FAISS candidates re-ranked per target shot


def _frames_of(shot: ShotRecord) -> dict:
    return {
        "time": np.array([f.time for f in shot.frames]),
        "embedding": np.stack([f.embedding for f in shot.frames]),
        "grid": np.stack([f.grid for f in shot.frames]),
        "colour": np.stack([f.colour for f in shot.frames]),
    }


def match_shots(target_shots: list[ShotRecord], library: Library, opts: MatchOptions = MatchOptions(),
                exclude_paths: set[str] | frozenset = frozenset(), on_shot=None) -> list[ShotMatch]:
    """Rank archive suggestions for each target shot, then choose one per shot."""
    cat = library.catalog
    frame_cache: dict[int, dict] = {}
    info_cache: dict[int, object] = {}
    matches = []
    for n, shot in enumerate(target_shots):
        m = ShotMatch(shot.idx, shot.start_frame, shot.end_frame, shot.start, shot.end, is_black_shot(shot))
        if not m.black:
            tf = _frames_of(shot)
            _, ids = library.search(shot.embedding(), opts.pool)  # exact: a remake's candidates
            cands = []
            for sid in ids[0]:
                if sid < 0:
                    continue
                sid = int(sid)
                if sid not in info_cache:
                    info_cache[sid] = cat.shot(sid)
                row = info_cache[sid]
                if row is None or row["path"] in exclude_paths:  # None: removed since the vectors were read
                    continue
                if sid not in frame_cache:
                    frame_cache[sid] = cat.shot_frames(sid)
                p = place(tf, shot.start, shot.end, frame_cache[sid], row["start"], row["end"], opts.weights)
                cands.append(Candidate(sid, row["video_id"], row["path"], row["name"], row["fps"], row["video_duration"], p,
                                           row["fingerprint"]))
            # Segments at least as long as the target shot come first; then by score.
            cands.sort(key=lambda c: (not c.placement.long_enough, -c.score, c.shot_id))
            m.suggestions = cands[: max(opts.suggestions * 3, opts.suggestions)]
        matches.append(m)
        if on_shot is not None:
            on_shot(n + 1, len(target_shots))
    choose(matches, opts)
    for m in matches:
        if m.chosen is not None:
            rest = [c for c in m.suggestions if c is not m.chosen][: opts.suggestions - 1]
            m.suggestions = [m.chosen] + rest
    return matches


def choose(matches: list[ShotMatch], opts: MatchOptions) -> None:
    """Pick one suggestion per shot, deterministically for a seed, with variety."""
    rng = np.random.default_rng(opts.seed)
    # What has been shown, per archive shot: a viewer notices the same footage twice, not two
    # moments of one long shot. Keyed on ranges, a film's own footage can serve two target shots
    # cut from one archive shot (a trailer re-cuts its film's shots).
    used: dict[int, list[tuple[float, float]]] = {}
    previous_video = None
    for m in matches:
        if m.black or not m.suggestions:
            continue
        pool = [c for c in m.suggestions if c.placement.long_enough] or m.suggestions
        best = max(c.score for c in pool)
        fresh = [c for c in pool if not _shown(c, used) and c.score >= best - opts.reuse_margin]
        pool = fresh or pool
        noise = rng.gumbel(size=len(pool)) * opts.variety
        adjusted = [
            c.score + noise[i] - (opts.film_penalty if c.video_id == previous_video else 0.0)
            for i, c in enumerate(pool)
        ]
        m.chosen = pool[int(np.argmax(adjusted))]
        used.setdefault(m.chosen.shot_id, []).append((m.chosen.placement.start, m.chosen.placement.end))
        previous_video = m.chosen.video_id


def _shown(c: Candidate, used: dict[int, list[tuple[float, float]]], slack: float = 0.1) -> bool:
    """Whether candidate `c` would show footage already used (ranges overlapping by more than `slack` s)."""
    p = c.placement
    return any(min(p.end, b) - max(p.start, a) > slack for a, b in used.get(c.shot_id, ()))


def target_paths(path: Path) -> set[str]:
    return {str(path), str(path.resolve())}
