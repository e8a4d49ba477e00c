"""The `rereel` command: a thin Typer layer over the library modules.

Each sub-module registers its commands on `app`; errors a user can cause (RereelError)
print as one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console

from rereel.errors import RereelError

app = typer.Typer(
    name="rereel",
    help="Neural reinterpretation of film: index an archive, remake trailers, autoencode films, learn to see.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Importing the command modules registers their commands on `app`.
from rereel.cli import library as _library  # noqa: E402,F401
from rereel.cli import learn as _learn  # noqa: E402,F401
from rereel.cli import remake as _remake  # noqa: E402,F401
from rereel.cli import explore as _explore  # noqa: E402,F401
from rereel.cli import serve as _serve  # noqa: E402,F401
from rereel.cli import samples as _samples  # noqa: E402,F401


def _terminate(signum, frame) -> None:
    # `kill` (SIGTERM) unwinds like Ctrl+C: writers remove their partial files, transactions
    # roll back. Only SIGKILL can leave a hidden partial file behind.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except RereelError as e:
        err.print(f"[red]error:[/red] {e}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
