"""The FastAPI application: state shared by the routes, the pages, and the security guard."""

from __future__ import annotations

import math
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import HTTPConnection

from rereel.errors import RereelError
from rereel.library import Library
from rereel.outputs import sweep_partials
from rereel.web.jobs import Jobs
from rereel.web.previews import Previews
from rereel.web.projects import Projects, StaleEdit
from rereel.web.security import Guard, is_loopback

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "browse.html", "/remake": "remake.html", "/mirror": "mirror.html", "/see": "see.html"}


@dataclass
class Settings:
    library: Path
    workdir: Path  # projects, previews, GIFs: the app's own outputs
    allow: list[Path] = field(default_factory=list)  # folders whose videos may be remake targets
    models: list[Path] = field(default_factory=list)  # folders holding learning-to-see models
    host: str = "127.0.0.1"
    token: str | None = None
    max_upload_mb: float = 500.0
    max_image_mb: float = 20.0
    extra_hosts: tuple[str, ...] = ()  # Host names accepted besides loopback ones (tests: "testserver")
    watch_seconds: float = 3.0  # how often (at most) a request checks the catalog for new footage


class State:
    """What the routes share. The library connection is used by one thread at a time (`lock`).

    Footage indexed while the server runs (`rereel index` in another process) is noticed by
    `watch()`: at most every `watch_seconds` a request compares the catalog's shot count, last
    shot id and generation with what the app last built from; on a change the FAISS index, the
    mirror and the groups are rebuilt in the background, the old ones served until then.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.lib = Library(settings.library, shared=True)
        self.lib.require_content()
        self.lock = threading.RLock()
        self.previews = Previews(settings.workdir / "previews")
        self.projects = Projects(settings.workdir)
        # What a server killed outright (SIGKILL, power) left half-written: in projects/ID/,
        # previews/ and gifs/, not in whatever else --workdir holds.
        sweep_partials(settings.workdir, depth=2)
        self.gifs = settings.workdir / "gifs"
        self.gifs.mkdir(parents=True, exist_ok=True)
        self.jobs = Jobs()
        self._resolver = None
        self._mirror = None
        self.mirror_lock = threading.Lock()  # the mirror's own catalog connection, apart from the pages'
        self._signature = library_signature(self.lib.catalog)
        self._checked = time.monotonic()
        self._rebuilding = threading.Lock()  # one rebuild at a time; a change meanwhile is seen next check
        # Grouping takes tens of seconds: started now, in the background, so the page has it sooner.
        self._clusters: Future = _background("clusters", _compute_clusters, settings.library)
        self._next_clusters: Future | None = None

    def clusters(self) -> list[dict]:
        self.watch()
        nxt = self._next_clusters
        if nxt is not None and nxt.done() and nxt.exception() is None:  # a failed regroup keeps the old groups
            self._clusters, self._next_clusters = nxt, None
        return self._clusters.result()

    @property
    def resolver(self):
        from rereel.explore.query import QueryResolver

        if self._resolver is None:
            self._resolver = QueryResolver(self.lib)
        return self._resolver

    def current_mirror(self):
        """The mirror now (call under `mirror_lock`): a socket's session moves to it after a rebuild."""
        return self._mirror

    def mirror(self):
        """The webcam matcher. It reads shot frames through a connection of its own (under
        `mirror_lock`), so browsing and the mirror do not wait on each other; the FAISS index
        is shared, searching it is read-only."""
        from rereel.web.mirror import Mirror

        self.watch()
        with self.mirror_lock:
            if self._mirror is None:
                with self.lock:  # the network the image search already loaded, not a second copy
                    encoder, shots = self.resolver.encoder, self.lib.searcher("shots")
                    if shots.is_approximate(None):
                        shots.approximate_index()  # loaded or built through the pages' catalog: under their lock
                self._mirror = Mirror(encoder, shots, Library(self.settings.library, shared=True).catalog)
            return self._mirror

    # -- footage indexed while the server runs ----------------------------------------------
    def watch(self) -> None:
        """Start a background rebuild if the catalog changed since the last check (cheap: one query)."""
        now = time.monotonic()
        if now - self._checked < self.settings.watch_seconds:
            return
        self._checked = now
        with self.lock:
            signature = library_signature(self.lib.catalog)
        if signature != self._signature and self._rebuilding.acquire(blocking=False):
            threading.Thread(target=self._rebuild, args=(signature,), name="library-rebuild", daemon=True).start()

    def _rebuild(self, signature: tuple) -> None:
        try:
            lib = Library(self.settings.library, shared=True)
            shots = lib.searcher("shots")  # loads the FAISS caches and appends the new rows: not under the lock
            mirror = None
            if self._mirror is not None:
                from rereel.web.mirror import Mirror

                mirror = Mirror(self._mirror.encoder, shots, Library(self.settings.library, shared=True).catalog)
            with self.lock:
                old, self.lib = self.lib, lib
                if self._resolver is not None:
                    self._resolver.lib = lib  # keeps the network it loaded
                old.close()
            if mirror is not None:
                with self.mirror_lock:  # no match is running on the old one's connection now
                    old_mirror, self._mirror = self._mirror, mirror
                    old_mirror.catalog.close()
            self._next_clusters = _background("clusters", _compute_clusters, self.settings.library)
            self._signature = signature
        except Exception:  # noqa: BLE001  a failed rebuild keeps serving what it had; tried again next check
            traceback.print_exc()
        finally:
            self._rebuilding.release()


def library_signature(catalog) -> tuple:
    """What changes when footage is added or removed: (generation, shot count, last shot id).
    Count and max come from the shots table's primary key, a few ms at 100k shots."""
    count, last = catalog.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM shots").fetchone()
    return catalog.generation(), count, last


def create_app(settings: Settings) -> FastAPI:
    """The app for one library. Raises RereelError when the library cannot be served."""
    loopback = is_loopback(settings.host)
    if not loopback and not settings.token:
        raise RereelError(f"--host {settings.host}: serving beyond loopback needs a token (--token or REREEL_TOKEN)")
    state = State(settings)
    app = FastAPI(title="rereel", docs_url="/api/docs", redoc_url=None)
    app.state.rereel = state
    max_body = int(max(settings.max_upload_mb, settings.max_image_mb) * 1e6) + 1_000_000  # + multipart framing
    app.add_middleware(Guard, token=settings.token, loopback_only=loopback, max_body=max_body,
                       extra_hosts=settings.extra_hosts)

    @app.exception_handler(RereelError)
    async def user_error(request: Request, exc: RereelError):
        # 409: the request was fine, the timeline it was aimed at has changed since (reload).
        return JSONResponse({"detail": str(exc)}, status_code=409 if isinstance(exc, StaleEdit) else 400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's own handler echoes the input back, and fails itself (a 500) on NaN or 1e400,
        # which JSON cannot carry: the place and the problem say enough.
        return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                                        for e in exc.errors()]}, status_code=422)

    for route, page in PAGES.items():
        app.add_api_route(route, _page(page), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    from rereel.web import archive, editor, live

    app.include_router(archive.router)
    app.include_router(editor.router)
    app.include_router(live.router)

    @app.get("/api/health")
    def health():
        return {"ok": True}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return RedirectResponse("/static/favicon.svg")

    return app


def _background(name: str, fn, *args) -> Future:
    """fn(*args) in a daemon thread (Ctrl+C does not wait for it); its result or error in the Future."""
    future: Future = Future()

    def fill():
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # the page that asks gets the error
            future.set_exception(e)

    threading.Thread(target=fill, name=name, daemon=True).start()
    return future


def _compute_clusters(library: Path) -> list[dict]:
    from rereel.web.archive import compute_clusters

    return compute_clusters(library)


def _page(name: str):
    def page():
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})
    return page


def state_of(conn: HTTPConnection) -> State:
    return conn.app.state.rereel


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what}: not found")


def finite(name: str, value: float, low: float = 0.0, high: float = 1e9) -> float:
    """A number from a request, refused (400) unless finite and within [low, high]: inf or 1e308
    seconds would overflow a seek, NaN would slip through every min() and max()."""
    if not (math.isfinite(value) and low <= value <= high):
        raise HTTPException(status_code=400, detail=f"{name}={value!r}: expected a number from {low:g} to {high:g}")
    return value
