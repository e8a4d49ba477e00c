"""Long work (a remake, a render) run in a background thread, polled by the pages for progress.

A thread per job, not a process pool: jobs are few, started by one person, and spend their time
in PyAV, FAISS and ONNX Runtime, which release the GIL.

When the server stops (Ctrl+C, `kill`), `Jobs.stop` asks the running jobs to stop and waits
for them: a job stops at its next progress report, unwinding as an error would, so a render
removes its partial file. Left running, a job thread was cut short inside native code as the
interpreter exited ("FATAL: exception not rethrown", exit 134), its partial file left behind.
"""

from __future__ import annotations

import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from rereel.errors import RereelError


class JobStopped(BaseException):
    """Raised inside a job, at a progress report, when the server is stopping. A BaseException,
    as KeyboardInterrupt is: no `except Exception` fallback on the way may take it for a failure
    to work around."""


@dataclass
class Job:
    id: str
    kind: str
    project: str | None = None
    state: str = "running"  # running, done, failed
    stage: str = "loading the network"
    done: float = 0.0
    total: float = 0.0
    error: str | None = None
    result: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    halt: threading.Event = field(default_factory=threading.Event, repr=False)  # set: stop at the next report

    # The remake and render functions report through these (see pipeline.Stages).
    def stage_start(self, name: str, total: float) -> None:
        self._check()
        self.stage, self.total, self.done = name, float(total or 0), 0.0

    def advance(self, done: float) -> None:
        self._check()
        self.done = float(done)

    def _check(self) -> None:
        if self.halt.is_set():
            raise JobStopped()

    def to_dict(self) -> dict:
        fraction = min(1.0, self.done / self.total) if self.total else (1.0 if self.state == "done" else 0.0)
        return {"id": self.id, "kind": self.kind, "project": self.project, "state": self.state, "stage": self.stage,
                "done": self.done, "total": self.total, "fraction": round(fraction, 4), "error": self.error,
                "result": self.result, "seconds": round((self.finished or time.time()) - self.started, 2)}


class StagesAdapter:
    """The `Stages` interface of rereel.pipeline, writing into a Job."""

    def __init__(self, job: Job):
        self.job = job

    def stage(self, name: str, total: float) -> None:
        self.job.stage_start(name, total)

    def advance(self, done: float) -> None:
        self.job.advance(done)


MAX_RUNNING = 2  # each job is CPU-bound: more at once only slows them all (and caps what a flood can start)


class Jobs:
    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, kind: str, work: Callable[[Job], dict | None], project: str | None = None) -> Job:
        job = Job(secrets.token_hex(6), kind, project, halt=self._stopping)
        with self._lock:
            if self._stopping.is_set():
                raise RereelError("the server is stopping; no new job is started")
            busy = sum(j.state == "running" for j in self._jobs.values())
            if busy >= MAX_RUNNING:
                raise RereelError(f"{busy} jobs are running; start this one when one of them has finished")
            self._jobs[job.id] = job
            thread = self._threads[job.id] = threading.Thread(
                target=self._run, args=(job, work), name=f"job-{kind}-{job.id}", daemon=True)
            thread.start()  # under the lock: `stop` never sees a thread it cannot join yet
        return job

    def _run(self, job: Job, work: Callable[[Job], dict | None]) -> None:
        try:
            job.result = work(job) or {}
            job.state, job.stage = "done", "done"
        except JobStopped:
            job.state, job.error = "failed", "stopped: the server was stopped during this job"
        except RereelError as e:  # the user's input: one line, as the CLI prints it
            job.state, job.error = "failed", str(e)
        except Exception as e:  # a bug: keep the trace on the server's console, a line for the page
            traceback.print_exc()
            job.state, job.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            job.finished = time.time()
            with self._lock:
                self._threads.pop(job.id, None)

    def stop(self, timeout: float = 120.0) -> list[Job]:
        """Ask every running job to stop and wait for them (up to `timeout` s in all); no job
        starts after. Returns the jobs still running after the wait."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return [self._jobs[i] for i in self._threads]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def latest(self, project: str, kind: str | None = None) -> Job | None:
        """The project's most recent job (of `kind`), finished or not: a failed one tells the page why."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.project == project and kind in (None, j.kind)]
        return max(jobs, key=lambda j: j.started, default=None)

    def running_jobs(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.state == "running"]

    def running(self, project: str) -> Job | None:
        with self._lock:
            jobs = list(self._jobs.values())
        return next((j for j in jobs if j.project == project and j.state == "running"), None)
