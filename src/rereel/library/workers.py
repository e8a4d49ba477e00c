"""Index several files at once, each in a worker process of one thread (`rereel index --jobs`).

Why: one process that indexes a file at a time keeps two cores only 1.5-1.7 busy, and the
threads it needs to do that cost CPU of their own (FFmpeg's frame threads: 18-20 CPU-s to
decode this archive against 13-15 one-threaded). Worker processes of one thread each, one file
at a time, fill the cores without that cost: on 2 cores this archive indexed in about two
thirds of the time (bench/bench_index.py). A long file gets no more than its one core, so files
go out largest first: no long file starts last while the other cores sit idle.

Each worker loads the encoder once, then takes files one after another through
`analyse_video` (REREEL_THREADS set to its share of the cores: FFmpeg's decoder and scaler,
OpenVINO and OpenCV keep to it) and sends the shot records back. This process does the rest, as
for a file indexed here: claims the file, skips one the library holds, probes it, writes it in
one transaction and draws the progress.

Our own small pool rather than concurrent.futures: when a worker dies (FFmpeg crashing on one
file, the kernel's out-of-memory killer), ProcessPoolExecutor fails every file in flight and
cannot say which one killed it. Here a worker holds one file, so that file is tried once more on
a fresh worker, then reported failed, and the batch goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import traceback
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path

from rereel.device import cpu_cores, keep_to_threads
from rereel.errors import MediaError, RereelError
from rereel.library.folder import Library
from rereel.library.indexer import (LATER, FileClaims, IndexReport, Pending, ProgressSink, analyse_video, fail,
                                    failure_reason, prepare, record)
from rereel.shots.detector import detector_class

ATTEMPTS = 2  # tries a file gets when the worker analysing it dies


WORKER_MEMORY = 1 << 30  # a worker held 0.38 GB here (OpenVINO's encoder, FFmpeg, OpenCV): room for it and its files


def default_jobs(device: str) -> int:
    """Worker processes `rereel index` starts by default: one a core where the encoder runs on
    the CPU, as many as the memory available holds (WORKER_MEMORY each). With a GPU, one:
    several processes sharing it have not been measured."""
    if device != "cpu":
        return 1
    return max(1, min(cpu_cores(), _available_memory() // WORKER_MEMORY))


def _available_memory() -> int:
    """Bytes of memory free for new work (Linux's MemAvailable; elsewhere all of it)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 1 << 62


def _serve(conn, parent: int, encoder: dict, detector: str, sampling: dict, threads: int) -> None:
    """A worker's life: load the encoder, then analyse each file it is sent until told to stop."""
    keep_to_threads(threads)
    if encoder["precision"] == "f32":  # the parent's encoder was asked for float32 (device.cpu_precision)
        os.environ["REREEL_PRECISION"] = "f32"
    if encoder["backend"]:
        os.environ["REREEL_BACKEND"] = encoder["backend"]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # blocked since the start (_signals_held)
    _die_with(parent)
    try:
        from rereel.encoders import create_encoder

        model = create_encoder(encoder["name"], device=encoder["device"])
        model.load()  # before "ready", which says which backend and precision it runs in
    except Exception as e:  # noqa: BLE001 - told to the parent, which stops the run
        conn.send(("broken", failure_reason(e)))
        return
    conn.send(("ready", _settings(model)))
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        path, fps = task
        timings: dict | None = {} if sampling["timings"] else None
        sent = [0.0]

        def on_time(t: float) -> None:
            if t - sent[0] >= 1.0:  # a message a second of video, not a frame
                sent[0] = t
                conn.send(("time", t))

        try:
            shots = analyse_video(Path(path), model, detector, fps, on_time=on_time,
                                  sample_fps=sampling["sample_fps"], min_sample_fps=sampling["min_sample_fps"],
                                  timings=timings)
        except Exception as e:  # noqa: BLE001 - one bad file must not end the batch
            if os.environ.get("REREEL_DEBUG") and not isinstance(e, (MediaError, RereelError)):
                traceback.print_exc()  # as in one process: the traceback, for whoever fixes the bug
            conn.send(("failed", failure_reason(e)))
        else:
            conn.send(("done", shots, timings))


def _die_with(parent: int) -> None:
    """Have Linux kill this worker when its parent dies (a `kill -9`), rather than let it finish a
    film nobody will write. Elsewhere it ends at its next message, on the broken pipe."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the line above: nobody will tell us
        os._exit(1)


def _settings(encoder) -> dict:
    """What a worker needs to load the same encoder, and to tell that it did."""
    return {"name": encoder.name, "signature": encoder.signature, "device": getattr(encoder, "device", "cpu"),
            "precision": getattr(encoder, "precision", None), "backend": getattr(encoder, "backend", None)}


_STOPS = {signal.SIGINT, signal.SIGTERM}  # what stops a run (the CLI makes SIGTERM a KeyboardInterrupt too)


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C (or `kill`) held off while a worker starts, then acted on.

    In this thread the signals are blocked, and the child inherits that mask through exec: one
    sent to the whole process group (a terminal's Ctrl-C) waits in the worker until `_serve`
    ignores it, instead of breaking its imports with a traceback. Another thread of ours (Rich's
    bar) may still take one, and Python would then raise KeyboardInterrupt here half-way
    through the start, leaving a child without its instructions: so the handlers only note it,
    and it is raised again once the worker has started."""
    # A spawned process needs multiprocessing's resource tracker, started by the first one. Its
    # start unblocks SIGINT and SIGTERM in this thread when done (CPython's `ensure_running`
    # ends so), which would let the first worker inherit them unblocked, and a Ctrl-C during
    # its imports then printed "Fatal Python error: init_import_site" with a traceback.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    caught: list[int] = []
    handlers = {}  # only the main thread may set handlers (and only it runs them)
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.signal(s, lambda signum, _: caught.append(signum)) for s in _STOPS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for s, handler in handlers.items():
            signal.signal(s, handler)
        for s in caught[:1]:
            signal.raise_signal(s)  # now handled as it would have been


class _Worker:
    def __init__(self, ctx, args: tuple):
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(theirs, *args), daemon=True, name="rereel-index-worker")
        try:
            with _signals_held():
                self.process.start()
        except BaseException:  # a Ctrl-C held off during the start: this worker is not kept
            if self.process.pid is not None:
                self.process.kill()
                self.process.join()
            raise
        finally:
            theirs.close()
        self.ready = False
        self.job: Pending | None = None
        self.seconds = 0.0  # of the job's video analysed
        self.delivered = False  # whether the job reached it

    def give(self, job: Pending) -> None:
        self.job, self.seconds, self.delivered = job, 0.0, False
        try:
            self.conn.send((os.path.abspath(job.path), job.info.fps))
            self.delivered = True
        except OSError:  # it died idle since it was last heard from: the loop finds it dead
            pass

    def messages(self):
        """What the worker has sent so far; stops at the end of the pipe (a dead worker)."""
        try:
            while self.conn.poll():
                yield self.conn.recv()
        except (EOFError, OSError):
            return

    def stop(self, at_once: bool) -> None:
        if not at_once:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _Bar(ProgressSink):
    """Files analysed at once, drawn on a sink made for one file at a time: one bar for the
    seconds of video of every file handed out (the sink keeps a bar given the same name again,
    its clock and speed going on), and each file's line as it ends."""

    def __init__(self, sink: ProgressSink, label: str):
        self.sink, self.label = sink, Path(label)
        self.total = self.finished = 0.0  # seconds of video handed out, and of those settled
        self.workers: list[_Worker] = []

    def add(self, seconds: float) -> None:
        self.total += seconds
        self._draw()

    def show(self) -> None:
        self.sink.advance(self.finished + sum(w.seconds for w in self.workers if w.job is not None))

    def end_file(self, path: Path, status: str, detail: str = "") -> None:
        self.sink.end_file(path, status, detail)
        self._draw()  # a sink that took its bar away with the line draws it again

    def _draw(self) -> None:
        if self.total:
            self.sink.start_file(self.label, self.total)
            self.show()


def _held(workers: list[_Worker], prepared: deque[Pending]) -> list[Pending]:
    """The files this run has claimed and not yet settled."""
    return [w.job for w in workers if w.job is not None] + list(prepared)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            pass
    return f"exit status {exitcode}"


def index_in_workers(files: list[Path], library: Library, encoder, detector_name: str, progress: ProgressSink,
                     report: IndexReport, sampling: dict, claims: FileClaims, jobs: int) -> list[Path]:
    """Index `files` into the report with `jobs` worker processes (see above); returns the files
    another run was analysing, left for the caller to wait on."""
    jobs = max(1, min(jobs, len(files)))
    # Largest first: the bytes of a file stand for its decoding work, without opening it here.
    queue = deque(sorted(files, key=lambda p: p.stat().st_size if p.is_file() else 0, reverse=True))
    # Files claimed and probed, waiting for a worker: the first ones, and those whose worker died.
    prepared: deque[Pending] = deque()
    tries: dict[str, int] = {}
    later: list[Path] = []
    ctx = mp.get_context("spawn")  # a fork would copy this process's threads' locks (Rich's bar, OpenVINO's) mid-use
    bar = _Bar(progress, f"{len(files)} files")
    run = _Run(library, encoder, detector_name, bar, report, sampling, claims)
    workers: list[_Worker] = []

    def claim(path: Path) -> Pending | None:
        """The next file claimed and probed, or None: failed, known, or left for later (another
        run holds it; or the same content under another name, a copy or a link, which this
        process's lock does not keep it from claiming twice: after the batch it is found indexed)."""
        job = prepare(path, library, bar, report, claims, wait=False)
        if job == LATER or (job is not None and any(j.fingerprint == job.fingerprint for j in _held(workers, prepared))):
            later.append(path)
            return None
        return job

    # Workers start once the run knows how many it needs: files are checked (the known ones
    # skipped) until there is one to analyse for each worker, or none left. A resumed run with
    # all its files indexed starts none, and one with a single new file starts one, given every
    # core (each worker costs seconds of imports and an encoder load).
    while queue and len(prepared) < jobs:
        job = claim(queue.popleft())
        if job is not None:
            prepared.append(job)
    if not prepared:
        return later
    jobs = len(prepared)
    bar.label = Path(f"{len(files)} files, {jobs} worker process{'es' if jobs > 1 else ''}")
    bar.add(sum(job.info.duration for job in prepared))  # drawn first now, with the number of workers
    # Here once (an export of TransNetV2), not in every worker at once; for the workers' backend.
    detector_class(detector_name).prepare(_settings(encoder)["backend"])
    args = (os.getpid(), _settings(encoder), detector_name,
            {"sample_fps": sampling["sample_fps"], "min_sample_fps": sampling["min_sample_fps"],
             "timings": sampling["timings"] is not None}, max(1, cpu_cores() // jobs))  # its share of the cores
    workers.extend(_Worker(ctx, args) for _ in range(jobs))
    bar.workers = workers
    interrupted = True
    try:
        while True:
            for w in workers:  # hand files to the idle workers
                while w.ready and w.job is None and (prepared or queue):
                    if prepared:
                        w.give(prepared.popleft())
                        continue
                    job = claim(queue.popleft())
                    if job is not None:
                        bar.add(job.info.duration)
                        w.give(job)
            if not prepared and not queue and not any(w.job for w in workers):
                break
            wait([w.conn for w in workers] + [w.process.sentinel for w in workers])
            for w in list(workers):
                alive = w.process.is_alive()  # before reading: a dead worker's last words are all in the pipe
                for msg in w.messages():
                    run.take(msg, w, workers)
                if alive:
                    continue
                workers.remove(w)
                w.stop(at_once=True)
                if not w.ready:
                    raise RereelError(f"an indexing worker process ended before it was ready ({_death(w.process.exitcode)}; "
                                      "a script indexing with jobs > 1 needs its work under `if __name__ == '__main__':`)")
                if w.job is not None:
                    job, w.job = w.job, None
                    if not w.delivered:  # it never reached the worker: no try spent on it
                        prepared.appendleft(job)
                        workers.append(_Worker(ctx, args))
                        continue
                    tries[job.fingerprint] = tries.get(job.fingerprint, 1) + 1
                    if tries[job.fingerprint] <= ATTEMPTS:
                        prepared.append(job)
                    else:
                        run.settle(job, f"the worker process analysing it died ({_death(w.process.exitcode)}), "
                                        f"{ATTEMPTS} times")
                if prepared or queue:
                    workers.append(_Worker(ctx, args))
        interrupted = False
    finally:
        for w in workers:
            if w.job is not None:
                claims.release(w.job.fingerprint)
            w.stop(at_once=interrupted)
    return later


class _Run:
    """What a worker's messages change here: the library, the report, the bar."""

    def __init__(self, library, encoder, detector_name, bar, report, sampling, claims):
        self.library, self.encoder, self.detector_name = library, encoder, detector_name
        self.bar, self.report, self.sampling, self.claims = bar, report, sampling, claims
        self.runtime: dict | None = None  # the backend and precision the first worker runs the encoder in

    def take(self, msg: tuple, w: _Worker, workers: list[_Worker]) -> None:
        kind = msg[0]
        if kind == "ready":
            # The same network as ours (another checkpoint's vectors must not go in), and every
            # worker in the same backend and precision. Those are the first worker's, not ours:
            # this process asks for them without compiling the network (see EffNetLite0.load),
            # so it cannot know that OpenVINO falls back to ONNX Runtime on this CPU.
            ours = {k: v for k, v in _settings(self.encoder).items() if k not in ("backend", "precision")}
            theirs = {k: v for k, v in msg[1].items() if k not in ("backend", "precision")}
            runtime = self.runtime or {k: msg[1][k] for k in ("backend", "precision")}
            if theirs != ours or any(msg[1][k] != v for k, v in runtime.items()):
                raise RereelError(f"an indexing worker loaded encoder {msg[1]}, not {ours | runtime}")
            self.runtime = runtime
            w.ready = True
        elif kind == "broken":
            raise RereelError(f"an indexing worker process could not load the encoder: {msg[1]}")
        elif kind == "time":
            w.seconds = msg[1]
            self.bar.show()
        else:  # "done" (shots, timings) or "failed" (reason)
            job, w.job = w.job, None
            if kind == "failed":
                self.settle(job, msg[1])
            else:
                self.settle(job, None, msg[1], msg[2])

    def settle(self, job: Pending, failure: str | None, shots=None, timings: dict | None = None) -> None:
        """Write or fail an analysed file, and release it."""
        self.bar.finished += job.info.duration
        try:
            if failure is not None:
                fail(job.path, failure, self.bar, self.report)
                return
            into = self.sampling["timings"]
            if into is not None and timings:
                for k, v in timings.items():
                    into[k] = into.get(k, 0) + v
            record(job, shots, self.library, self.detector_name, self.encoder.signature, self.bar, self.report, into)
        except Exception as e:  # noqa: BLE001 - the write of this file failed (the disk, say): name it, go on
            fail(job.path, e, self.bar, self.report)
        finally:
            self.claims.release(job.fingerprint)
