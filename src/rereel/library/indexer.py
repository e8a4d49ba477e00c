"""Index videos into a library: decode each file once and feed that one pass to the shot
detector, the encoder (frames sampled several times a second) and the shot thumbnails.
"""

from __future__ import annotations

import io
import os
import queue
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from rereel.encoders import Encoder, Features
from rereel.errors import MediaError, RereelError
from rereel.library.catalog import FrameRecord, ShotRecord
from rereel.library.library import Library
from rereel.media import decode_frames, find_videos, fingerprint, probe
from rereel.media.decode import display_size
from rereel.shots import create_detector, shots_from_cuts

SAMPLE_FPS = 4.0  # frames embedded per second of video: several per shot, so matching can follow a shot in time
BATCH = 32
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


def _prefetch(frames: Iterator, size: int = 48) -> Iterator:
    """Run a generator in a thread so decoding overlaps detection and embedding.

    PyAV and FFmpeg's scaler release the GIL, so on two cores this nearly hides the decode.
    """
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in frames:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock the producer so the thread ends
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def analyse_video(
    path: Path,
    encoder: Encoder,
    detector_name: str,
    fps: float,
    *,
    sample_fps: float = SAMPLE_FPS,
    on_time=None,
) -> list[ShotRecord]:
    """One decode pass over `path`: shots, sampled-frame features and a thumbnail per shot."""
    detector = create_detector(detector_name, fps)
    dw, dh = detector.frame_size
    ew, eh = encoder.input_size
    step = 1.0 / sample_fps

    def frames():
        next_t = 0.0
        for f in decode_frames(path):
            small = f.rgb(dw, dh)
            sample = None
            if f.time >= next_t - 1e-6:
                next_t = max(next_t + step, f.time + step * 0.5)
                w, h = display_size(f.frame)
                tw = THUMB_WIDTH
                th = max(2, round(tw * h / w / 2) * 2)
                sample = (f.rgb(ew, eh), f.rgb(tw, th))
            yield f.index, f.time, small, sample

    times: list[float] = []
    sampled: list[_Sampled] = []
    feats: list[Features] = []
    batch: list[np.ndarray] = []
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # thumbnails of sampled frames until shots are known
    try:
        for index, t, small, sample in _prefetch(frames()):
            detector.push(index, t, small)
            times.append(t)
            if sample is not None:
                enc_rgb, thumb_rgb = sample
                buf = io.BytesIO()
                Image.fromarray(thumb_rgb).save(buf, format="JPEG", quality=82)
                offset = spool.tell()
                spool.write(buf.getvalue())
                sampled.append(_Sampled(index, t, offset, buf.tell(), float(thumb_rgb.mean())))
                batch.append(enc_rgb)
                if len(batch) >= BATCH:
                    feats.append(encoder.embed(np.stack(batch)))
                    batch = []
            if on_time is not None and index % 12 == 0:
                on_time(t)
        if batch:
            feats.append(encoder.embed(np.stack(batch)))
        if not times:
            raise MediaError(path, "no video frame could be decoded")
        frame_step = (times[-1] - times[0]) / max(1, len(times) - 1) if len(times) > 1 else 1 / (fps or 25)
        shots = shots_from_cuts(detector.finish(), times, times[-1] + frame_step)
        embedding = np.concatenate([f.embedding for f in feats])
        grid = np.concatenate([f.grid for f in feats])
        colour = np.concatenate([f.colour for f in feats])
        sample_times = np.array([s.time for s in sampled])
        records = []
        for shot in shots:
            inside = np.nonzero((sample_times >= shot.start - 1e-6) & (sample_times < shot.end - 1e-6))[0]
            if len(inside) == 0:  # shorter than the sampling step: borrow the nearest sampled frame
                inside = np.array([int(np.argmin(np.abs(sample_times - (shot.start + shot.end) / 2)))])
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
        return records
    finally:
        spool.close()


def index_paths(
    paths: list[Path],
    library: Library,
    encoder: Encoder,
    detector_name: str,
    progress: ProgressSink | None = None,
    *,
    sample_fps: float = SAMPLE_FPS,
) -> IndexReport:
    """Index every video found under `paths`; a bad file is reported and the rest go on."""
    progress = progress or ProgressSink()
    library.claim_encoder(encoder.signature, encoder.dim)
    report = IndexReport()
    catalog = library.catalog
    for path in find_videos(paths):
        try:
            fp = fingerprint(path) if path.is_file() else None
        except OSError as e:
            fp = None
            report.failed.append((path, f"cannot read the file ({e.strerror})"))
            progress.end_file(path, "failed", report.failed[-1][1])
            continue
        try:
            if fp is not None:
                known = catalog.video_by_fingerprint(fp)
                if known is not None:
                    if not Path(known["path"]).exists() and Path(known["path"]) != path:
                        catalog.update_path(known["id"], path)  # the file moved: follow it
                    report.skipped.append(path)
                    progress.end_file(path, "skipped", "already indexed")
                    continue
            info = probe(path)  # raises MediaError for missing, empty, non-video, audio-only files
            progress.start_file(path, info.duration)
            shots = analyse_video(path, encoder, detector_name, info.fps, sample_fps=sample_fps, on_time=progress.advance)
            meta = info.to_dict() | {"size": path.stat().st_size}
            catalog.add_video(meta, fp, detector_name, encoder.signature, shots)
            report.indexed.append(path)
            progress.end_file(path, "indexed", f"{len(shots)} shots")
        except (MediaError, RereelError) as e:
            reason = e.reason if isinstance(e, MediaError) else str(e)
            report.failed.append((path, reason))
            progress.end_file(path, "failed", reason)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a bug or an FFmpeg surprise on one file must not end the batch
            reason = f"{type(e).__name__}: {e}"
            report.failed.append((path, reason))
            progress.end_file(path, "failed", reason)
            if os.environ.get("REREEL_DEBUG"):  # the traceback, for whoever fixes the bug
                traceback.print_exc()
    return report
