"""`rereel serve`: the local web app."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from rereel.cli import app, examples
from rereel.cli.library import LibraryOpt, count, out
from rereel.errors import RereelError


def _check_paths(allow: list[Path], models: list[Path], workdir: Optional[Path],
                 certfile: Optional[Path], keyfile: Optional[Path]) -> None:
    """Refuse, before the server starts, a path that cannot be what its option says."""
    for folder in allow:
        if not folder.is_dir():
            raise RereelError(f"--allow {folder}: {'is a file, not a folder' if folder.exists() else 'no such folder'}")
    for model in models:
        if not model.exists():
            raise RereelError(f"--models {model}: no such folder or model")
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        raise RereelError(f"--workdir {workdir}: is a file, not a folder")
    if keyfile is not None and certfile is None:
        raise RereelError(f"--ssl-keyfile {keyfile}: give the certificate too (--ssl-certfile)")
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is not None and not path.is_file():
            raise RereelError(f"{option} {path}: {'is a folder, not a file' if path.exists() else 'no such file'}")
    if certfile is not None:
        import ssl

        # Loaded here as uvicorn will load them, so that a wrong file is one line before the server
        # starts (uvicorn's was an SSLError traceback after the URL was printed).
        class Encrypted(Exception):
            pass

        def no_passphrase():  # asked only for an encrypted key, which uvicorn would ask for again
            raise Encrypted

        key = f"--ssl-keyfile {keyfile}" if keyfile else f"--ssl-certfile {certfile}"
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile, password=no_passphrase)
        except Encrypted:
            raise RereelError(f"{key}: the private key is encrypted (has a passphrase); give it unencrypted, "
                              "readable by you alone (openssl pkey -in KEY -out KEY.plain)") from None
        except (ssl.SSLError, OSError) as e:
            raise RereelError(f"--ssl-certfile {certfile}: not a PEM certificate with its private key "
                              f"({'in --ssl-keyfile ' + str(keyfile) if keyfile else 'in the same file'}), or the two "
                              f"do not match ({getattr(e, 'reason', None) or 'no PEM certificate read'})") from None


@app.command(epilog=examples("rereel serve --library ~/my-library --allow ~/trailers",
                             "rereel serve --host 0.0.0.0 --port 8080 --ssl-certfile cert.pem --ssl-keyfile key.pem"))
def serve(
    library: LibraryOpt = None,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Interface to bind. Anything but loopback requires a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port.", min=1, max=65535)] = 8000,
    allow: Annotated[Optional[list[Path]], typer.Option(
        metavar="DIR", help="Folder whose videos may be remake targets by path (repeatable). Uploads are always possible.")] = None,
    models: Annotated[Optional[list[Path]], typer.Option(
        metavar="DIR", help="Folder of learning-to-see models (`rereel see train --model DIR`), or one model (repeatable).")] = None,
    workdir: Annotated[Optional[Path], typer.Option(
        metavar="DIR", help="Where projects, previews and GIFs are written (default: LIBRARY/web).")] = None,
    token: Annotated[Optional[str], typer.Option(
        metavar="TEXT", help="Access token (default: $REREEL_TOKEN; made up and printed when binding beyond loopback).")] = None,
    max_upload_mb: Annotated[float, typer.Option(metavar="MB", help="Largest video upload, in MB.", min=1)] = 500.0,
    ssl_certfile: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Serve HTTPS with this certificate: browsers give the webcam only to https pages or localhost.")] = None,
    ssl_keyfile: Annotated[Optional[Path], typer.Option(metavar="FILE", help="The certificate's private key.")] = None,
) -> None:
    """Serve the archive browser, remake editor, webcam mirror and learning-to-see pages."""
    _check_paths(list(allow or []), list(models or []), workdir, ssl_certfile, ssl_keyfile)
    import uvicorn

    from rereel.library import library_path
    from rereel.web.app import Settings, create_app
    from rereel.web.security import is_loopback

    _check_port(host, port)  # before the library is loaded and "open http://..." is printed
    root = library_path(library).absolute()  # projects store paths under it: a restart from another folder finds them
    token = token or os.environ.get("REREEL_TOKEN")
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(18)
    # Absolute: the target picker lists paths under them, which a page may show and post back.
    settings = Settings(library=root, workdir=(workdir or root / "web").absolute(),
                        allow=[Path(os.path.abspath(a)) for a in allow or []], models=list(models or []), host=host,
                        token=token, max_upload_mb=max_upload_mb)
    web = create_app(settings)
    # 0.0.0.0 is where it listens, not an address to open: name this machine instead.
    shown = "localhost" if is_loopback(host) else socket.gethostname() if host in ("0.0.0.0", "::") else host
    scheme = "https" if ssl_certfile else "http"
    url = f"{scheme}://{shown}:{port}/" + (f"?token={token}" if token else "")
    info = web.state.rereel.lib.info()
    out.print(f"rereel: {count(info['videos'], 'video')}, {count(info['shots'], 'shot')} from {root}")
    out.print(f"open {url}  (Ctrl+C stops)")
    try:
        uvicorn.run(web, host=host, port=port, log_level="warning", ws_max_size=4 * 1024 * 1024,
                    ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                    ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
    except BaseException:  # a port in use, an error: its own exit status, once the jobs have stopped
        _stop_jobs(web.state.rereel.jobs)
        raise
    _stop_jobs(web.state.rereel.jobs)
    # The archive's grouping (tens of seconds after a start) or a rebuild may still run in a
    # daemon thread: cut short in native code by the interpreter's teardown, it aborts the
    # process. They hold no file open for writing, so the process ends here, without it.
    if any(t.daemon and t.is_alive() for t in threading.enumerate()):
        _exit_now(0)


def _check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address the server could not listen on (a port another server
    holds): uvicorn says so only after rereel has printed the URL, which then opens that other
    server, and exits 3."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise RereelError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    for family, kind, proto, _, address in addresses:  # each address uvicorn will listen on
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            if family == socket.AF_INET6:  # as asyncio binds: IPv6 alone, IPv4 is another address
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise RereelError(f"--port {port}: {host}:{port} is in use (another server, or rereel serve "
                                      "already running?); choose another port with --port") from None
                raise RereelError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None


def _stop_jobs(jobs) -> None:
    """Stop the running remakes and renders before the process ends (see web.jobs): each removes
    its partial files, and none is cut short inside native code, which aborted the process."""
    running = [j for j in jobs.running_jobs()]
    if running:
        out.print(f"stopping {len(running)} running job{'s' * (len(running) > 1)} ({', '.join(j.kind for j in running)}); "
                  "Ctrl+C again ends at once, leaving partial files (removed at the next start)")
    try:
        left = jobs.stop()
    except KeyboardInterrupt:  # a second Ctrl+C or kill: do not wait (the teardown would abort on the job threads)
        from rereel import cli

        out.print("stopped without waiting for the jobs")
        _exit_now(143 if cli._terminated else 130)
    if left:  # still inside one long native call after the wait: end now, without the interpreter's teardown
        out.print(f"{len(left)} job{'s' * (len(left) > 1)} did not stop in time; exiting without waiting")
        _exit_now(1)


def _exit_now(status: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
