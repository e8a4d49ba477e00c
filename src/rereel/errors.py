"""One error type for everything a user can cause, so the CLI can print it as one line."""

from pathlib import Path


class RereelError(Exception):
    """A problem with the user's input or set-up, reported without a traceback."""


class MediaError(RereelError):
    """A media file that cannot be used, with the file's path and the reason."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")
