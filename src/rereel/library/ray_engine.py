"""Index videos on a Ray cluster (`rereel index --engine ray`); the driver alone writes the catalog.

Ray Data spreads the per-video work over the cluster, in one pipeline: `_Analyser` actors in
a fixed-size pool (`map_batches(..., compute=ActorPoolStrategy(size=workers))`), one encoder
load per actor, CPU or GPU per actor, one file per call: fingerprint (a file whose content the
catalog held when the run began is skipped there), probe, then the indexer's `analyse_video`:
one decode pass feeding the shot detector, the encoder and the thumbnails. (Probing in separate
Ray tasks first cost a second pipeline's start-up, 10-14 s on this loaded machine.)

Results stream back as they finish (pickled ShotRecords, one row per video); the driver writes
each in one transaction with the same `Catalog.add_video` as the local engine, so both engines
make the same catalog. A run killed at any moment leaves only whole videos; the next run skips
them by fingerprint. A worker lost mid-video leaves nothing (the driver never saw a row): Ray
restarts the actor and runs the call again, up to `max_attempts` times in all.

Progress: a small `_Board` actor collects, from every analyser, the seconds of video each has
decoded; the driver sums them (seconds done across the cluster) beside the files done.

Ray is an optional extra pinned to one version (`pip install 'rereel[ray]'`): its actor-pool
API has changed twice (`compute=` → `concurrency=` → `compute=ActorPoolStrategy`).
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rereel.device import cpu_threads, keep_to_threads
from rereel.errors import MediaError, RereelError
from rereel.library.catalog import AlreadyIndexed
from rereel.library.folder import Library
from rereel.library.indexer import (MIN_SAMPLE_FPS, SAMPLE_FPS, IndexReport, ProgressSink, analyse_video, check_sampling,
                                    failure_reason, follow_move)
from rereel.media.find import scan_videos
from rereel.media.probe import still_reason

RAY_VERSION = "2.60.0"  # the version pyproject's `ray` extra pins; the API below is its API
LOCAL_OBJECT_STORE = 512 << 20  # a local Ray's shared memory: results are a few MB a video


@dataclass
class RayIndexReport(IndexReport):
    """IndexReport, plus which videos were analysed more than once (a worker lost) and timings."""

    retried: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class _Board:
    """Ray actor: who analyses what (attempts) and how many seconds of each are decoded."""

    def __init__(self):
        self.attempts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.durations: dict[str, float] = {}

    def started(self, path: str, duration: float) -> None:
        self.attempts[path] = self.attempts.get(path, 0) + 1
        self.seconds[path] = 0.0
        self.durations[path] = duration

    def advance(self, path: str, seconds: float) -> None:
        self.seconds[path] = seconds

    def state(self) -> tuple[dict[str, int], float, float]:
        """(attempts per path, seconds decoded, seconds of video probed so far)."""
        return self.attempts, sum(self.seconds.values()), sum(self.durations.values())


class _Analyser:
    """Ray Data actor: loads the encoder once, then takes one file per call through fingerprint,
    probe (a file the catalog holds is skipped here, on the worker) and `analyse_video`."""

    def __init__(self, encoder_factory, detector: str, sampling: dict, board, known: frozenset):
        import ray

        # The actor's share of its node: decoding, scaling and the networks keep to the CPUs Ray
        # gave it (`device.keep_to_threads`), as the local engine's workers do. Without it every
        # actor on a node ran a thread a core of the node (Ray sets OMP_NUM_THREADS, for torch
        # alone), and OpenVINO would pin each actor's inference to the node's first cores.
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus and "REREEL_THREADS" not in os.environ:
            keep_to_threads(max(1, int(cpus)))
        self.threads = cpu_threads()
        t = time.perf_counter()
        self.encoder = encoder_factory()
        self.encoder.load()  # compiled now, in the time counted as loading (it would be at first use)
        self.load_s = time.perf_counter() - t
        self.detector, self.sampling, self.board, self.known = detector, sampling, board, known
        self.calls = 0

    def __call__(self, batch: dict) -> dict:
        rows = [self.one(path) for path in batch["path"]]
        return {k: [r[k] for r in rows] for k in rows[0]}

    def one(self, path: str) -> dict:
        from rereel.media import fingerprint, probe
        from rereel.media.find import not_a_file_reason

        row = {"path": path, "fingerprint": "", "info": b"", "records": b"", "status": "failed", "error": "",
               "signature": self.encoder.signature, "dim": self.encoder.dim, "analyse_s": 0.0, "pickle_s": 0.0,
               "load_s": self.load_s if self.calls == 0 else 0.0, "done_at": 0.0, "pid": os.getpid(),
               "threads": self.threads}
        self.calls += 1
        p = Path(path)
        t0 = time.perf_counter()
        try:
            reason = not_a_file_reason(p)
            if reason is not None:
                raise MediaError(p, reason)
            try:
                row["fingerprint"] = fingerprint(p)
            except OSError as e:
                raise MediaError(p, f"cannot read the file ({e.strerror})") from None
            if row["fingerprint"] in self.known:
                row["status"] = "skipped"
                return row
            info = probe(p)  # raises MediaError for missing, empty, non-video, audio-only files
            reason = still_reason(info)
            if reason is not None:  # as index_paths: it would fill every shot it is matched to with one frame
                raise MediaError(p, reason)
            row["info"] = pickle.dumps(info.to_dict() | {"size": p.stat().st_size})
            self.board.started.remote(path, info.duration)
            last = [0.0]

            def on_time(t):
                if t - last[0] >= 1.0:  # a message a second of video, not a frame
                    last[0] = t
                    self.board.advance.remote(path, t)

            shots = analyse_video(p, self.encoder, self.detector, info.fps, on_time=on_time, **self.sampling)
            t1 = time.perf_counter()
            row["records"] = pickle.dumps(shots, protocol=5)
            row["pickle_s"] = time.perf_counter() - t1
            row["analyse_s"] = t1 - t0
            row["status"] = "analysed"
            self.board.advance.remote(path, info.duration)
        except Exception as e:  # noqa: BLE001 - one bad file must not end the batch
            row["error"] = failure_reason(e)
            row["analyse_s"] = time.perf_counter() - t0
        finally:
            row["done_at"] = time.time()
        return row


def _bound(encoder_factory, detector: str, sampling: dict, board, known: frozenset):
    """An `_Analyser` class with its arguments bound: shipped with the class, not as constructor
    arguments in the object store (which Ray warns could be lost before an actor restart)."""

    class Analyser(_Analyser):
        def __init__(self):
            super().__init__(encoder_factory, detector, sampling, board, known)

    return Analyser


def _encoder_factory(name: str, device: str | None):
    def make():
        from rereel.encoders import create_encoder

        return create_encoder(name, device=device)

    return make


REACH_S = 10  # seconds to wait for a cluster's head to answer before giving up


def _reachable(address: str) -> None:
    """Refuse, in one line, a cluster whose head does not answer: ray.init retried a closed port
    for minutes ("Failed to connect to GCS" every 40 s), with no word from rereel. `auto` and
    addresses that are no HOST:PORT are left to Ray."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = where.hostname, where.port
    except ValueError:
        return
    if not host or not port:
        return
    try:
        socket.create_connection((host, port), timeout=REACH_S).close()
    except OSError as e:
        raise RereelError(f"cannot join the Ray cluster at {address}: nothing answers at {host}:{port} "
                          f"({e.strerror or e}); is `ray start --head` running there?") from None


def connect(address: str | None, *, num_cpus: int | None = None):
    """Join the Ray cluster at `address`, or start a local one on this machine's cores.

    Nothing is done when this process is already connected (tests share one Ray session).
    """
    try:
        import ray
    except ImportError:
        raise RereelError("--engine ray needs Ray: pip install 'rereel[ray]'") from None
    if ray.__version__ != RAY_VERSION:
        raise RereelError(f"rereel's Ray engine is written for ray {RAY_VERSION}, found {ray.__version__}: "
                          f"pip install 'rereel[ray]'")
    if not ray.is_initialized():
        kwargs = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": True}
        try:
            if address:
                # Ray 2.60's `ray start --head` turns token authentication on and keeps the token in
                # ~/.ray/auth_token, but a driver joining with ray.init(address=...) only sends it
                # when RAY_AUTH_MODE says so: without it the join fails ("Failed to connect").
                if "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").exists():
                    os.environ["RAY_AUTH_MODE"] = "token"
                _reachable(address)
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count(), object_store_memory=LOCAL_OBJECT_STORE,
                         include_dashboard=False, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RereelError(f"cannot {'join the Ray cluster at ' + address if address else 'start a local Ray'}: {e}") from None
    from ray.data import DataContext

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-dataset chatter under the CLI's bars

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI draws its own
    ctx.print_on_execution_start = False
    return ray


def index_paths_ray(
    paths: list[Path],
    library: Library,
    encoder: str = "effnet-lite0",
    detector_name: str = "content",
    progress: ProgressSink | None = None,
    *,
    sample_fps: float = SAMPLE_FPS,
    min_sample_fps: float | None = MIN_SAMPLE_FPS,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    device: str | None = None,
    max_attempts: int = 3,
    encoder_factory=None,
) -> RayIndexReport:
    """Index every video under `paths` on Ray; a bad file is reported and the rest go on.

    Frames are sampled as `index_paths` samples them (`sample_fps`, `min_sample_fps`).
    `address`: a Ray cluster to join ("ray://host:10001" or "host:6379"); None starts a local
    Ray on this machine's cores. `workers`: analyser actors (default: the cluster's CPUs over
    `cpus_per_worker`, or its GPUs over `gpus_per_worker` when that is set). `encoder_factory`:
    builds the encoder in each actor (default: `create_encoder(encoder, device=...)`).
    """
    check_sampling(sample_fps, min_sample_fps)
    ray = connect(address)
    from ray.data import ActorPoolStrategy

    progress = progress or ProgressSink()
    if encoder_factory is None:
        library.require_encoder_name(encoder)  # before any actor loads a network
    report = RayIndexReport()
    catalog = library.catalog
    start = time.perf_counter()
    files, problems = scan_videos(paths)
    for path, reason in problems:
        report.failed.append((path, reason))
        progress.end_file(path, "failed", reason)
    if not files:
        return report
    # Workers get absolute paths (their working folder is not the driver's); reports name the
    # files as the user gave them. Not resolved here: a path the driver cannot open stays as given.
    given = {os.path.abspath(p): p for p in files}

    # Videos already indexed are skipped on the workers, by fingerprint; a copy of one file
    # under two names in this batch is analysed twice and the second write finds it indexed.
    known = frozenset(r[0] for r in catalog.db.execute("SELECT fingerprint FROM videos"))
    if workers is None:
        res = ray.cluster_resources()
        workers = int(res.get("GPU", 0) // gpus_per_worker) if gpus_per_worker else int(res.get("CPU", 1) // cpus_per_worker)
    workers = max(1, min(workers, len(files)))
    board = ray.remote(num_cpus=0)(_Board).remote()
    factory = encoder_factory or _encoder_factory(encoder, device or ("cuda" if gpus_per_worker else None))
    # One file a block, one a call: videos spread over the actors as each becomes free.
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for the retries, and warns that **ray_remote_args will go in 2.64.
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ray.data.from_items([{"path": p} for p in given], override_num_blocks=len(files)).map_batches(
            _bound(factory, detector_name, {"sample_fps": sample_fps, "min_sample_fps": min_sample_fps}, board, known),
            batch_size=1,
            compute=ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker or None,
            max_restarts=-1,  # a lost actor is started again...
            max_task_retries=max_attempts - 1,  # ...and its video analysed again, this many times in all
        )
    lock = threading.Lock()  # the sink is drawn from here and from the poller
    label = Path(f"{len(files)} files, {workers} Ray workers")
    shown = {"done": 0.0, "total": 0.0}
    stop = threading.Event()

    def show(done: float, total: float, restart: bool = False) -> None:
        with lock:
            if restart or total > shown["total"]:  # the total grows as workers probe their files
                shown["total"] = max(total, shown["total"])
                progress.start_file(label, shown["total"])
            shown["done"] = max(done, shown["done"])
            progress.advance(shown["done"])

    def poll():  # seconds decoded across the cluster, twice a second
        while not stop.wait(0.5):
            try:
                _, done, total = ray.get(board.state.remote(), timeout=5)
            except Exception:  # noqa: BLE001 - progress only
                continue
            show(done, total)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    t = report.timings
    for k in ("analyse_s", "pickle_s", "unpickle_s", "write_s", "load_s", "wait_s"):
        t[k] = 0.0
    finished: set[str] = set()
    try:
        for row in ds.iter_rows():
            received = time.time()
            path = given[row["path"]]
            finished.add(row["path"])
            for k in ("analyse_s", "pickle_s", "load_s"):
                t[k] += row[k]
            t["threads_per_worker"] = max(t.get("threads_per_worker", 0), row["threads"])
            t["wait_s"] += max(0.0, received - row["done_at"])  # worker done -> row on the driver
            try:
                status, detail = _write(row, path, library, detector_name, report, t)
            except RereelError:
                raise  # the library refuses these vectors (another encoder): nothing more can be written
            except Exception as e:  # noqa: BLE001 - this video's write failed (e.g. the disk): name it, go on
                detail = f"not written: {type(e).__name__}: {str(e).strip()[:200]}"
                report.failed.append((path, detail))
                status = "failed"
            with lock:
                progress.end_file(path, status, detail)
            show(shown["done"], shown["total"], restart=True)  # a sink whose seconds bar ends with each file draws it again
    except RereelError:
        raise  # the library refuses these vectors (another encoder): nothing more can be written
    except Exception as e:  # the pool gave up (a video lost its worker max_attempts times) or the cluster went away
        reason = f"not analysed: the Ray job failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]})"
        for absolute, p in given.items():
            if absolute not in finished:
                report.failed.append((p, reason))
                with lock:
                    progress.end_file(p, "failed", reason)
    finally:
        stop.set()
        poller.join()
        try:
            attempts, _, _ = ray.get(board.state.remote(), timeout=10)
            report.retried = [given.get(p, Path(p)) for p, n in attempts.items() if n > 1]
        except Exception:  # noqa: BLE001 - the cluster is gone: nothing more to learn
            pass
        try:
            ray.kill(board)
        except Exception:  # noqa: BLE001 - the cluster went away first: the actor went with it
            pass
    t["wall_s"] = time.perf_counter() - start
    t["workers"] = workers
    return report


def _write(row: dict, path: Path, library: Library, detector: str, report: RayIndexReport,
           t: dict) -> tuple[str, str]:
    """Write one analysed video (`path` as given) in one transaction; (status, detail) for the progress line."""
    if row["status"] == "failed":
        report.failed.append((path, row["error"]))
        return "failed", row["error"]
    known = library.catalog.video_by_fingerprint(row["fingerprint"])
    if row["status"] == "skipped":
        if known is None:  # removed since the run began (a file put at its old path replaced it)
            reason = "its library entry was replaced during this run; index it again to add it back"
            report.failed.append((path, reason))
            return "failed", reason
        follow_move(library.catalog, known, path)  # moved: follow it, as the local engine does
        report.skipped.append(path)
        return "skipped", "already indexed"
    u = time.perf_counter()
    shots = pickle.loads(row["records"])
    w = time.perf_counter()
    t["unpickle_s"] += w - u
    try:
        library.claim_encoder(row["signature"], int(row["dim"]))
        meta = pickle.loads(row["info"]) | {"duration": shots[-1].end}  # what plays, as the local engine stores
        library.catalog.add_video(meta, row["fingerprint"], detector, row["signature"], shots)
    except AlreadyIndexed:
        report.skipped.append(path)
        return "skipped", "indexed by another run"
    finally:
        t["write_s"] += time.perf_counter() - w
    report.indexed.append(path)
    return "indexed", f"{len(shots)} shot{'' if len(shots) == 1 else 's'}"
