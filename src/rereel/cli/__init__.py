"""The `rereel` command: a thin Typer layer over the library modules.

Each sub-module registers its commands on `app`; errors a user can cause (RereelError), and a
file the system refuses (an OSError naming it), print as one line and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import PurePath

import typer
from rich.console import Console
from rich.text import Text

from rereel.errors import RereelError


def examples(*lines: str) -> str:
    """A command's epilog: its examples, one command line each (every command shows at least one)."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)


def _plain_help() -> None:
    """Help in the words a user types: each value's metavar (FILE, DIR, N, SECONDS), never a Python
    type (`<list[Path]>`, `<bool>` on a flag, `{target}`, `<int range> [x>=1]`).

    Typer draws the type column from the annotation; it offers no switch, so its three display
    methods are replaced here, once, for every command (learn's included). A parameter with
    `metavar=` shows it; one without shows a plain word for its kind (PATH, N, NUMBER, TEXT);
    a flag shows nothing; a numeric limit reads "at least 1". tests/test_first_contact.py reads
    every command's --help to hold this.
    """
    from typer import core

    def kind(param) -> str:
        desc = param.type_descriptor
        if desc.is_choice and desc.choices:
            return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
        ann = desc.annotation
        if desc.is_list:
            ann = (getattr(ann, "__args__", None) or (str,))[0]
        if desc.is_path or (isinstance(ann, type) and issubclass(ann, PurePath)):
            return "PATH"
        return {int: "N", float: "NUMBER", bool: "BOOL"}.get(ann, "TEXT")

    def option_type(self, ctx):
        if self.is_flag or self.count:
            return None  # a flag takes no value
        return self.metavar or kind(self)

    def argument_name(self) -> str:
        return self.metavar or self.name.upper()

    def argument_usage(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 and not name.endswith("...") else "")

    def number_range(self) -> str | None:
        lo, hi = self.min, self.max
        if lo is None and hi is None:
            return None
        return f"at least {lo}" if hi is None else f"at most {hi}" if lo is None else f"{lo} to {hi}"

    core.TyperOption.display_type_rich = option_type
    core.TyperArgument.display_type_rich = lambda self, ctx: None  # the name column says it
    core.TyperArgument.display_name_raw = property(argument_name)
    core.TyperArgument._usage_display_name = argument_usage
    core.TyperOption._get_number_range_help_str = number_range
    core.TyperArgument._get_number_range_help_str = number_range


def _one_line_usage_errors() -> None:
    """A wrong argument or option (`choose T 3 abc`, `--port 0`) in one line, as every other
    error a user can cause: `error: rereel choose: Invalid value for 'SUGGESTION': ... (see
    `rereel choose --help`)`. Typer draws its usage line, a hint and a boxed panel; it offers
    no switch, so its one error printer is replaced, as `_plain_help` replaces its help's type
    column. Click's parser raises a few errors (an option missing its value) without the
    command's context: parsing is wrapped to give them it, so they name the command too."""
    from typer import core, rich_utils

    for kind in (core.TyperCommand, core.TyperGroup):
        def parse_args(self, ctx, args, _parse=kind.parse_args):
            try:
                return _parse(self, ctx, args)
            except Exception as e:  # a usage error of Typer's own copy of Click: known by its ctx
                if hasattr(e, "ctx") and e.ctx is None:
                    e.ctx = ctx
                raise

        kind.parse_args = parse_args

    def one_line(e) -> None:
        if type(e).__name__ == "NoArgsIsHelpError":  # `rereel` alone: its help is shown instead
            return
        ctx = getattr(e, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = " ".join(e.format_message().split())  # Click's may span lines ("Did you mean")
        err.print(labelled("error:", "red", f"{where}{message}{hint}"))

    rich_utils.rich_format_error = one_line


_plain_help()

app = typer.Typer(
    name="rereel",
    help="Neural reinterpretation of film: index an archive, remake trailers, autoencode films, learn to see.",
    epilog=examples("rereel samples ~/rereel-media",
                    "rereel index ~/rereel-media/archive --library ~/my-library",
                    "rereel remake trailer.mp4 -o remake.mp4 --timeline remake.otio --library ~/my-library",
                    "rereel serve --library ~/my-library"),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# markup=False (and emoji=False) on every console and progress column: what is printed holds file
# names, and a name such as "take [final].mp4" would otherwise lose its brackets, "a[/]b.mp4" end
# the run in Rich's MarkupError, and "take:fire:.mp4" print an emoji. Colour goes through `labelled`, never through markup in the text.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def labelled(label: str, style: str, rest: object) -> Text:
    """`label` in `style` ("error:" in red), a space, then `rest` exactly as it is."""
    return Text.assemble((label, style), " ", str(rest))


_one_line_usage_errors()

# Importing the command modules registers their commands on `app`.
from rereel.cli import library as _library  # noqa: E402,F401
from rereel.cli import learn as _learn  # noqa: E402,F401
from rereel.cli import remake as _remake  # noqa: E402,F401
from rereel.cli import explore as _explore  # noqa: E402,F401
from rereel.cli import serve as _serve  # noqa: E402,F401
from rereel.cli import samples as _samples  # noqa: E402,F401


_terminated = False


def _terminate(signum, frame) -> None:
    # `kill` (SIGTERM) unwinds like Ctrl+C: writers remove their partial files, transactions
    # roll back. Only SIGKILL can leave a hidden partial file behind.
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def main() -> None:
    global _terminated
    _terminated = False
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except RereelError as e:
        err.print(labelled("error:", "red", e))
        sys.exit(2)
    except OSError as e:
        # The system refused a file the checks before the work did not foresee (a name longer
        # than the file system takes, a disk that filled, a folder where a file was to go): its
        # name and the system's reason, in one line, not a traceback. REREEL_DEBUG keeps those.
        if e.filename is None or os.environ.get("REREEL_DEBUG"):
            raise
        # A rename names both: the file in the way is the second (a folder at the output's name).
        where = f"{e.filename2}: {e.strerror or e} (writing it from {e.filename})" if e.filename2 else f"{e.filename}: {e.strerror or e}"
        err.print(labelled("error:", "red", where))
        sys.exit(2)
    except KeyboardInterrupt:
        _stopped()
    except SystemExit as e:
        if e.code == 130:  # Typer turns the KeyboardInterrupt into exit status 130 itself
            _stopped()
        raise


def _stopped() -> None:
    """Exit status 128 + the signal, as a shell reports a job it stopped: 130 Ctrl+C, 143 `kill`."""
    err.print(Text("terminated" if _terminated else "interrupted", "yellow"))
    sys.exit(143 if _terminated else 130)
