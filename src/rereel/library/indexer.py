"""Index videos into a library: decode each file once and feed that one pass to the shot
detector, the encoder (frames sampled several times a second) and the shot thumbnails.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rereel.device import cpu_threads
from rereel.encoders import Encoder, Features
from rereel.errors import MediaError, RereelError
from rereel.library.catalog import AlreadyIndexed, FrameRecord, ShotRecord
from rereel.library.folder import Library
from rereel.media import VideoInfo, decode_frames, fingerprint, probe
from rereel.media.find import not_a_file_reason, scan_videos
from rereel.media.probe import still_reason
from rereel.media.decode import shown_length
from rereel.media.image import jpeg
from rereel.media.prefetch import prefetch
from rereel.shots import create_detector, shots_from_cuts
from rereel.shots.detector import Shot

SAMPLE_FPS = 4.0  # frames embedded per second of video: several per shot, so matching can follow a shot in time
# Archives are sampled by change: a frame is embedded when the picture has moved enough since
# the last embedded one (CHANGE: mean absolute difference of 32x18 RGB thumbnails, 0-255), at
# most SAMPLE_FPS and at least MIN_SAMPLE_FPS a second. A static stretch is then one frame a
# second, which matching (the frame shown at each moment, `match.score.place`) reads as four.
# Targets keep the fixed rate (min_sample_fps None): a target's score averages its frames.
MIN_SAMPLE_FPS = 1.0
CHANGE = 6.0
THUMB_WIDTH = 320


class ProgressSink:
    """What the indexer reports while it works; the CLI draws it with Rich."""

    def start_file(self, path: Path, duration: float) -> None: ...
    def advance(self, seconds: float) -> None: ...
    def end_file(self, path: Path, status: str, detail: str = "") -> None: ...


@dataclass
class IndexReport:
    indexed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class _Sampled:
    frame_index: int
    time: float
    offset: int  # thumbnail JPEG position in the spool
    length: int
    luma: float


class _Sampler:
    """Decides, frame by frame, which frames are embedded (see SAMPLE_FPS and MIN_SAMPLE_FPS)."""

    def __init__(self, fps: float, min_fps: float | None, change: float):
        self.step = 1.0 / fps
        self.floor = None if min_fps is None else 1.0 / min_fps
        self.change = change
        self.next_t = 0.0  # fixed rate: the next sampling time
        self.last_t: float | None = None
        self.last_tiny: np.ndarray | None = None

    def take(self, t: float, small: np.ndarray) -> bool:
        if t < self.next_t - 1e-6:
            return False  # the ceiling: a picture that never stops changing is sampled at the fixed rate
        if self.floor is not None:
            tiny = cv2.resize(small, (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)
            if not (self.last_t is None or t - self.last_t >= self.floor - 1e-6
                    or float(np.abs(tiny - self.last_tiny).mean()) >= self.change):
                return False
            self.last_t, self.last_tiny = t, tiny
        # On a grid of the fixed step, so a frame rate that is no multiple of it still gives it.
        self.next_t = max(self.next_t + self.step, t + self.step * 0.5)
        return True


def analyse_video(
    path: Path,
    encoder: Encoder,
    detector_name: str,
    fps: float,
    *,
    sample_fps: float = SAMPLE_FPS,
    min_sample_fps: float | None = None,
    on_time=None,
    timings: dict[str, float] | None = None,
) -> list[ShotRecord]:
    """One decode pass over `path`: shots, sampled-frame features and a thumbnail per shot.

    Frames are embedded at a fixed `sample_fps`, or, given `min_sample_fps`, by change between
    the two rates (what `index_paths` does for archives). `timings`, when given, is added the
    seconds spent in each stage (decode, scale, detect, encode, thumbs, wait): the decode
    thread's stages overlap the others.
    """
    detector = create_detector(detector_name, fps)
    dw, dh = detector.frame_size
    ew, eh = encoder.input_size
    sampler = _Sampler(sample_fps, min_sample_fps, CHANGE)
    clock = {k: 0.0 for k in ("decode", "scale", "detect", "encode", "thumbs", "wait")}

    def timed_next(it, key: str):
        """next(it, None), its seconds added to clock[key]; returns (item, when it came)."""
        t0 = time.perf_counter()
        item = next(it, None)
        t1 = time.perf_counter()
        clock[key] += t1 - t0
        return item, t1

    last: list = [None]  # the last frame decoded: its own length, where its file states one, ends the video

    def frames():
        tw = th = None
        frames_in = iter(decode_frames(path))
        while True:
            f, t1 = timed_next(frames_in, "decode")
            if f is None:
                return
            last[0] = f
            small = f.detector_rgb(dw, dh)
            sample = None
            if sampler.take(f.time, small):
                if tw is None:
                    w, h = f.display_size
                    tw = THUMB_WIDTH
                    th = max(2, round(tw * h / w / 2) * 2)
                sample = (f.rgb(ew, eh), f.rgb(tw, th))
            clock["scale"] += time.perf_counter() - t1
            yield f.index, f.time, small, sample

    times: list[float] = []
    sampled: list[_Sampled] = []
    feats: list[Features] = []
    batch: list[np.ndarray] = []
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # thumbnails of sampled frames until shots are known

    def embed():
        t = time.perf_counter()
        feats.append(encoder.embed(np.stack(batch)))
        batch.clear()
        clock["encode"] += time.perf_counter() - t

    # Decoding overlaps detection and embedding in a thread of its own, unless this process is
    # given one core (a worker of library.workers: the other cores run the other workers).
    source = prefetch(frames()) if cpu_threads() > 1 else frames()
    try:
        while True:
            item, t1 = timed_next(source, "wait")
            if item is None:
                break
            index, t, small, sample = item
            detector.push(index, t, small)
            times.append(t)
            t2 = time.perf_counter()
            clock["detect"] += t2 - t1
            if sample is not None:
                enc_rgb, thumb_rgb = sample
                data = jpeg(thumb_rgb, quality=82)
                offset = spool.tell()
                spool.write(data)
                sampled.append(_Sampled(index, t, offset, len(data), sum(cv2.mean(thumb_rgb)[:3]) / 3.0))
                batch.append(enc_rgb)
                clock["thumbs"] += time.perf_counter() - t2
                if len(batch) >= encoder.batch_size:
                    embed()
            if on_time is not None and index % 12 == 0:
                on_time(t)
        if batch:
            embed()
        if not times:
            raise MediaError(path, "no video frame could be decoded")
        t = time.perf_counter()
        # The video ends where its last frame's time is up: as long as the file says (an animated
        # GIF's frames each have their own), else the average step.
        frame_step = shown_length(last[0], None) or ((times[-1] - times[0]) / max(1, len(times) - 1) if len(times) > 1 else 1 / (fps or 25))
        shots = shots_from_cuts(detector.finish(), times, times[-1] + frame_step)
        clock["detect"] += time.perf_counter() - t
        embedding = np.concatenate([f.embedding for f in feats])
        grid = np.concatenate([f.grid for f in feats])
        colour = np.concatenate([f.colour for f in feats])
        sample_times = np.array([s.time for s in sampled])
        records = []
        for shot, inside in assign_samples(shots, sample_times):
            mid = inside[len(inside) // 2]
            s = sampled[mid]
            spool.seek(s.offset)
            thumb = spool.read(s.length)
            records.append(
                ShotRecord(
                    idx=shot.index,
                    start_frame=shot.start_frame,
                    end_frame=shot.end_frame,
                    start=shot.start,
                    end=shot.end,
                    luma=float(np.mean([sampled[i].luma for i in inside])),
                    thumb=thumb,
                    frames=[
                        FrameRecord(sampled[i].frame_index, sampled[i].time, embedding[i], grid[i], colour[i])
                        for i in inside
                    ],
                )
            )
        if timings is not None:
            for k, v in clock.items():
                timings[k] = timings.get(k, 0.0) + v
            timings["frames"] = timings.get("frames", 0) + len(times)
            timings["embedded"] = timings.get("embedded", 0) + len(sampled)
        return records
    finally:
        source.close()  # stops the decode thread when analysis fails part way
        spool.close()


def check_sampling(sample_fps: float, min_sample_fps: float | None) -> None:
    """Refuse a sampling rate that embeds nothing (0 divides by zero in the sampler, a negative
    step samples every frame), before anything is written."""
    if not sample_fps > 0:
        raise RereelError(f"the sampling rate must be more than 0 frames a second, not {sample_fps:g}")
    if min_sample_fps is not None and not min_sample_fps > 0:
        raise RereelError(f"the least sampling rate must be more than 0 frames a second, not {min_sample_fps:g}")


def assign_samples(shots: list[Shot], sample_times: np.ndarray) -> list[tuple[Shot, np.ndarray]]:
    """Each shot with the indices of the sampled frames inside it; every sample in one shot.

    A shot with no sampled frame of its own is shorter than the sampling step (under 0.25 s at
    4 samples/s), below the detectors' 0.5 s minimum: a cut a few frames before the end, or two
    detectors' cuts side by side. It is merged into the shot before it (after it, when first)
    rather than given a neighbour's frame: a frame listed under two shots breaks `reembed`, and
    a flash that short could not be matched through time anyway.
    """
    groups: list[tuple[Shot, np.ndarray]] = []
    pending: Shot | None = None  # a sample-less first shot, waiting for the next
    for shot in shots:
        inside = np.nonzero((sample_times >= shot.start - 1e-6) & (sample_times < shot.end - 1e-6))[0]
        if pending is not None:
            shot = Shot(shot.index, pending.start_frame, shot.end_frame, pending.start, shot.end)
            pending = None
        if len(inside) == 0:
            if groups:
                prev, idx = groups[-1]
                groups[-1] = (Shot(prev.index, prev.start_frame, shot.end_frame, prev.start, shot.end), idx)
            else:
                pending = shot
            continue
        groups.append((shot, inside))
    return [(Shot(i, s.start_frame, s.end_frame, s.start, s.end), inside) for i, (s, inside) in enumerate(groups)]


def index_paths(
    paths: list[Path],
    library: Library,
    encoder: Encoder,
    detector_name: str,
    progress: ProgressSink | None = None,
    *,
    sample_fps: float = SAMPLE_FPS,
    min_sample_fps: float | None = MIN_SAMPLE_FPS,
    timings: dict[str, float] | None = None,
    jobs: int = 1,
) -> IndexReport:
    """Index every video found under `paths`; a bad file is reported and the rest go on.
    Frames are sampled by change between `min_sample_fps` and `sample_fps` a second (None:
    fixed at `sample_fps`); `timings` as `analyse_video`'s, plus the catalog writes.

    `jobs` > 1 analyses that many files at once in worker processes (`library.workers`), each
    loading its own `encoder` (by name and device); this process alone writes the catalog.

    Several processes may index into one library at once: a file another run is analysing
    is put off to the end of the batch, then found indexed (skipped) or done here.
    """
    check_sampling(sample_fps, min_sample_fps)
    progress = progress or ProgressSink()
    library.claim_encoder(encoder.signature, encoder.dim)
    report = IndexReport()
    files, problems = scan_videos(paths)
    for path, reason in problems:
        report.failed.append((path, reason))
        progress.end_file(path, "failed", reason)
    sampling = {"sample_fps": sample_fps, "min_sample_fps": min_sample_fps, "timings": timings}
    with FileClaims(library.root) as claims:
        if jobs > 1 and len(files) > 1:
            from rereel.library.workers import index_in_workers

            later = index_in_workers(files, library, encoder, detector_name, progress, report, sampling, claims, jobs)
        else:
            later = [path for path in files
                     if _index_one(path, library, encoder, detector_name, progress, report, sampling, claims, wait=False)]
        for path in later:  # being analysed by another run: wait for it, then most likely skip
            _index_one(path, library, encoder, detector_name, progress, report, sampling, claims, wait=True)
    return report


@dataclass
class Pending:
    """A file claimed by this run, to be analysed: `prepare`'s answer."""

    path: Path
    fingerprint: str
    info: VideoInfo


LATER = "later"  # `prepare`'s answer for a file another run is analysing


def prepare(path: Path, library: Library, progress: ProgressSink, report: IndexReport, claims: "FileClaims", *,
            wait: bool) -> Pending | str | None:
    """Whether `path` is to be analysed: a Pending (claimed: release it), LATER (another run
    holds it and `wait` is False), or None (reported: skipped, or failed)."""
    catalog = library.catalog
    reason = not_a_file_reason(path)
    if reason is not None:
        report.failed.append((path, reason))
        progress.end_file(path, "failed", reason)
        return None
    try:
        fp = fingerprint(path)
    except OSError as e:
        report.failed.append((path, f"cannot read the file ({e.strerror})"))
        progress.end_file(path, "failed", report.failed[-1][1])
        return None
    if not claims.claim(fp, wait=wait):
        return LATER
    try:
        known = catalog.video_by_fingerprint(fp)
        if known is not None:
            follow_move(catalog, known, path)
            report.skipped.append(path)
            progress.end_file(path, "skipped", "already indexed")
        else:
            info = probe(path)  # raises MediaError for missing, empty, non-video, audio-only files
            reason = still_reason(info)
            if reason is not None:  # it would fill every shot it is matched to with one frame
                raise MediaError(path, reason)
            return Pending(path, fp, info)
    except Exception as e:  # one bad file must not end the batch
        fail(path, e, progress, report)
    claims.release(fp)
    return None


def follow_move(catalog, known, path: Path) -> None:
    """Store `path` for the indexed video `known` (found there again) where its stored path no
    longer holds it: moved, renamed with another file put in its place, or a relative path from
    schema 1."""
    stored = Path(known["path"])
    if stored != path.resolve() and (not stored.is_absolute() or not _holds(stored, known["fingerprint"])):
        catalog.update_path(known["id"], path)


def _holds(path: Path, fp: str) -> bool:
    try:
        return path.is_file() and fingerprint(path) == fp
    except OSError:
        return False


def record(job: Pending, shots: list[ShotRecord], library: Library, detector_name: str, signature: str,
           progress: ProgressSink, report: IndexReport, timings: dict | None) -> None:
    """Write an analysed file into the catalog (one transaction) and report it."""
    # What plays, not what the header states: frames may end a little short of it.
    meta = job.info.to_dict() | {"size": job.path.stat().st_size, "duration": shots[-1].end}
    t = time.perf_counter()
    try:
        library.catalog.add_video(meta, job.fingerprint, detector_name, signature, shots)
    except AlreadyIndexed:  # another run got there first (claims unavailable, e.g. on NFS)
        report.skipped.append(job.path)
        progress.end_file(job.path, "skipped", "indexed by another run")
        return
    if timings is not None:
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - t
    report.indexed.append(job.path)
    progress.end_file(job.path, "indexed", f"{len(shots)} shot{'' if len(shots) == 1 else 's'}")


def failure_reason(e: BaseException) -> str:
    """One line for the report: a MediaError's reason, a RereelError's message, else the type too."""
    if isinstance(e, MediaError):
        return e.reason
    if isinstance(e, RereelError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def fail(path: Path, e: BaseException | str, progress: ProgressSink, report: IndexReport) -> None:
    """Report `path` failed, for exception `e` or a reason already put in words."""
    reason = e if isinstance(e, str) else failure_reason(e)
    report.failed.append((path, reason))
    progress.end_file(path, "failed", reason)
    if not isinstance(e, (str, MediaError, RereelError)) and os.environ.get("REREEL_DEBUG"):
        traceback.print_exception(e)  # a bug or an FFmpeg surprise: the traceback, for whoever fixes it


def _index_one(path, library, encoder, detector_name, progress, report, sampling, claims, *, wait) -> bool:
    """Index one file into the report, in this process; True when another run holds it and
    `wait` is False."""
    job = prepare(path, library, progress, report, claims, wait=wait)
    if job is None or job == LATER:
        return job == LATER
    try:
        progress.start_file(path, job.info.duration)
        shots = analyse_video(path, encoder, detector_name, job.info.fps, on_time=progress.advance, **sampling)
        record(job, shots, library, detector_name, encoder.signature, progress, report, sampling["timings"])
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a bug or an FFmpeg surprise on one file must not end the batch
        fail(path, e, progress, report)
    finally:
        claims.release(job.fingerprint)
    return False


class FileClaims:
    """Which run is analysing which file, as POSIX byte-range locks on one `index.lock` file.

    The byte at a position drawn from the fingerprint stands for the file: the kernel drops a
    dead run's locks, so nothing is left to clean after a crash or `kill -9`. (Two fingerprints
    sharing a byte only make one run wait for the other.)
    """

    def __init__(self, root: Path):
        try:
            self.fd = os.open(root / "index.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            self.fd = None  # read-only or odd file system: the catalog's unique fingerprint still guards

    def __enter__(self) -> "FileClaims":
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)

    @staticmethod
    def _where(fp: str) -> int:
        return int(fp[:6], 16)

    def claim(self, fp: str, *, wait: bool) -> bool:
        if self.fd is None:
            return True
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, self._where(fp))
            return True
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return False
            return True  # locks unsupported here: go on unguarded

    def release(self, fp: str) -> None:
        if self.fd is not None:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self._where(fp))
            except OSError:
                pass
