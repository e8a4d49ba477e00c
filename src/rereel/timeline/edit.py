"""Editing a remake timeline in place: lock, fill or black out a shot, split and join target
shots, and the undo history. Pure OTIO: matching (which needs the library) is the caller's.

Numbering: items carry `target_shot`, the 0-based place of the shot in time order, black shots
counted; people see it as #N = target_shot + 1 with the timecode of its start. A split or a join
renumbers every shot after it, so the numbers stay that convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import opentimelineio as otio

from rereel.errors import RereelError
from rereel.timeline import KEY, choose_suggestion, is_hold, number_shots, remake_track, shot_end

MIN_PIECE_S = 0.25  # a piece shorter than the analysis's sampling step has no features to match with


def shot_info(tl: otio.schema.Timeline) -> list[dict]:
    """The metadata of each target shot, in time order (hold clips left out)."""
    return [item.metadata[KEY] for item in remake_track(tl) if KEY in item.metadata and not is_hold(item)]


def _span(tl: otio.schema.Timeline, shot: int) -> tuple[int, int]:
    """Track positions [first, last] of shot `shot`'s item and its hold clip, if any."""
    track = remake_track(tl)
    for i, item in enumerate(track):
        if item.metadata.get(KEY, {}).get("target_shot") == shot and not is_hold(item):
            return i, shot_end(track, i)
    count = len(shot_info(tl))
    raise RereelError(f"there is no shot {shot + 1}: the remake has shots 1 to {count}")


def _rate(tl) -> float:
    return float(tl.metadata[KEY]["target"]["fps"])


def _gap(info: dict, rate: float) -> otio.schema.Gap:
    frames = info["target_end_frame"] - info["target_start_frame"]
    gap = otio.schema.Gap(source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)))
    gap.name = f"shot {info['target_shot']} (black)"
    gap.metadata[KEY] = info
    return gap


def _replace(tl, shot: int, items: list) -> None:
    track = remake_track(tl)
    first, last = _span(tl, shot)
    for _ in range(last - first + 1):
        del track[first]
    for k, item in enumerate(items):
        track.insert(first + k, item)


def set_locked(tl: otio.schema.Timeline, shot: int, locked: bool) -> None:
    """A locked shot keeps its choice when the others are matched again."""
    track = remake_track(tl)
    track[_span(tl, shot)[0]].metadata[KEY]["locked"] = bool(locked)


def set_black(tl: otio.schema.Timeline, shot: int) -> None:
    """Shot `shot` shows black (a Gap); its suggestions stay, to fill it again. It is marked
    `user_black`, so that re-matching leaves it black until someone fills it."""
    track = remake_track(tl)
    info = dict(track[_span(tl, shot)[0]].metadata[KEY])
    for k in ("path", "start", "end", "hold", "shot_id"):
        info.pop(k, None)
    _replace(tl, shot, [_gap(info | {"chosen": None, "score": None, "user_black": True}, _rate(tl))])


def set_suggestions(tl: otio.schema.Timeline, shot: int, suggestions: list[dict], chosen: int | None) -> None:
    """Give shot `shot` new suggestions, with number `chosen` (0-based) swapped in, or black (None)."""
    track = remake_track(tl)
    track[_span(tl, shot)[0]].metadata[KEY]["suggestions"] = list(suggestions)
    if chosen is None:
        set_black(tl, shot)
    else:
        choose_suggestion(tl, shot, chosen)
        track[_span(tl, shot)[0]].metadata[KEY].pop("user_black", None)


def _renumber(tl: otio.schema.Timeline) -> None:
    """target_shot = place in time order again, on every item (hold clips and names too)."""
    n = -1
    for item in remake_track(tl):
        meta = item.metadata.get(KEY)
        if meta is None:
            continue
        if is_hold(item):
            meta["hold_of"] = n
            new = n
        else:
            n += 1
            new = n
            meta["target_shot"] = n
        item.name = re.sub(r"^shot \d+", f"shot {new}", item.name)
    number_shots(tl)  # `number`, `timecode` and item names as people see them (from 1)


def split(tl: otio.schema.Timeline, shot: int, frame: int) -> tuple[int, int]:
    """Cut target shot `shot` at target frame `frame`: two unmatched (black) shots take its place,
    with no suggestions until matched; returns their numbers (0-based). Locks and choices of the
    other shots are kept; the shots after it are renumbered."""
    track = remake_track(tl)
    info = dict(track[_span(tl, shot)[0]].metadata[KEY])
    rate = _rate(tl)
    a, b = info["target_start_frame"], info["target_end_frame"]
    if info.get("locked"):
        raise RereelError(f"shot {shot + 1} is locked; unlock it to split it")
    if not a < frame < b:
        raise RereelError(f"shot {shot + 1} runs from frame {a} to {b - 1}; a cut at frame {frame} is not inside it")
    if min(frame - a, b - frame) / rate < MIN_PIECE_S:
        raise RereelError(f"shot {shot + 1}: a cut at frame {frame} leaves a piece shorter than {MIN_PIECE_S} s, "
                          "too short to match")
    cut = frame / rate
    keep = {k: info[k] for k in ("black",) if k in info}
    first = keep | {"target_shot": shot, "target_start_frame": a, "target_end_frame": frame,
                    "target_start": info["target_start"], "target_end": cut,
                    "score": None, "suggestions": [], "chosen": None}
    second = keep | {"target_shot": shot + 1, "target_start_frame": frame, "target_end_frame": b,
                     "target_start": cut, "target_end": info["target_end"],
                     "score": None, "suggestions": [], "chosen": None}
    _replace(tl, shot, [_gap(first, rate), _gap(second, rate)])
    _renumber(tl)
    return shot, shot + 1


def join(tl: otio.schema.Timeline, shot: int) -> int:
    """Join target shot `shot` with the one after it: one unmatched shot takes their place (black in
    the target only if both were); returns its number. The shots after it are renumbered."""
    infos = shot_info(tl)
    if not 0 <= shot < len(infos) - 1:
        raise RereelError(f"shot {shot + 1} has no shot after it to join with (the remake has {len(infos)} shots)")
    x, y = infos[shot], infos[shot + 1]
    for n, info in ((shot, x), (shot + 1, y)):
        if info.get("locked"):
            raise RereelError(f"shot {n + 1} is locked; unlock it to join it with another")
    info = {"target_shot": shot, "target_start_frame": x["target_start_frame"],
            "target_end_frame": y["target_end_frame"], "target_start": x["target_start"],
            "target_end": y["target_end"], "black": bool(x.get("black")) and bool(y.get("black")),
            "score": None, "suggestions": [], "chosen": None}
    first, _ = _span(tl, shot)
    _, last = _span(tl, shot + 1)
    track = remake_track(tl)
    for _ in range(last - first + 1):
        del track[first]
    track.insert(first, _gap(info, _rate(tl)))
    _renumber(tl)
    return shot


def shot_at_frame(tl: otio.schema.Timeline, frame: int) -> int:
    """The number (0-based) of the target shot that holds target frame `frame`."""
    for info in shot_info(tl):
        if info["target_start_frame"] <= frame < info["target_end_frame"]:
            return info["target_shot"]
    raise RereelError(f"frame {frame} is outside the target")


# -- undo history -------------------------------------------------------------------------------
HISTORY_STEPS = 100  # undo steps kept (a 20-shot remake is ~110 kB a step); older ones are dropped


@dataclass
class History:
    """Timelines before (undo) and after (redo) each change, as OTIO JSON, newest last."""

    undo: list[tuple[str, str]] = field(default_factory=list)  # (what the change was, timeline before it)
    redo: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"undo": [list(e) for e in self.undo], "redo": [list(e) for e in self.redo]}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls([tuple(e) for e in data.get("undo", [])], [tuple(e) for e in data.get("redo", [])])

    def record(self, label: str, before: otio.schema.Timeline) -> None:
        """Call before a change is saved: `before` is the timeline it changes."""
        self.undo.append((label, before.to_json_string(indent=-1)))
        del self.undo[:-HISTORY_STEPS]
        self.redo.clear()

    def step_back(self, now: otio.schema.Timeline) -> tuple[str, otio.schema.Timeline]:
        """(what is undone, the timeline before it); `now` goes onto the redo list."""
        return self._step(self.undo, self.redo, now, "undo")

    def step_forward(self, now: otio.schema.Timeline) -> tuple[str, otio.schema.Timeline]:
        return self._step(self.redo, self.undo, now, "redo")

    @staticmethod
    def _step(take: list, keep: list, now: otio.schema.Timeline, word: str) -> tuple[str, otio.schema.Timeline]:
        if not take:
            raise RereelError(f"nothing to {word}")
        label, text = take.pop()
        keep.append((label, now.to_json_string(indent=-1)))
        return label, otio.adapters.read_from_string(text, "otio_json")
