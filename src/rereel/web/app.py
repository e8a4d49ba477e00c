"""The FastAPI application: state shared by the routes, the pages, and the security guard."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import HTTPConnection

from rereel.errors import RereelError
from rereel.library import Library
from rereel.web.jobs import Jobs
from rereel.web.previews import Previews
from rereel.web.projects import Projects
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


class State:
    """What the routes share. The library connection is used by one thread at a time (`lock`)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.lib = Library(settings.library, shared=True)
        self.lib.require_content()
        self.lock = threading.RLock()
        self.previews = Previews(settings.workdir / "previews")
        self.projects = Projects(settings.workdir)
        self.gifs = settings.workdir / "gifs"
        self.gifs.mkdir(parents=True, exist_ok=True)
        self.jobs = Jobs()
        self._resolver = None
        self._mirror = None
        self.mirror_lock = threading.Lock()  # the mirror's own catalog connection, apart from the pages'
        # Grouping takes tens of seconds: started now, in the background, so the page has it sooner.
        # A daemon thread, so that Ctrl+C does not wait for it.
        self._clusters: Future = Future()
        threading.Thread(target=_fill, args=(self._clusters, _compute_clusters, settings.library),
                         name="clusters", daemon=True).start()

    def clusters(self) -> list[dict]:
        return self._clusters.result()

    @property
    def resolver(self):
        from rereel.explore.query import QueryResolver

        if self._resolver is None:
            self._resolver = QueryResolver(self.lib)
        return self._resolver

    def mirror(self):
        """The webcam matcher. It reads shot frames through a connection of its own (under
        `mirror_lock`), so browsing and the mirror do not wait on each other; the FAISS index
        is shared, searching it is read-only."""
        from rereel.web.mirror import Mirror

        with self.mirror_lock:
            if self._mirror is None:
                with self.lock:  # the network the image search already loaded, not a second copy
                    encoder, shots = self.resolver.encoder, self.lib.vectors("shots")
                self._mirror = Mirror(encoder, shots, Library(self.settings.library, shared=True).catalog)
            return self._mirror


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
        return JSONResponse({"detail": str(exc)}, status_code=400)

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


def _fill(future: Future, fn, *args) -> None:
    try:
        future.set_result(fn(*args))
    except BaseException as e:  # the page that asks gets the error
        future.set_exception(e)


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
