"""Output files: written under a hidden partial name beside their own, renamed when complete.

Every writer (videos, timelines, credits) goes through here for the two things that fail on a
user's path before any work is lost: a folder that cannot be made, and a name the partial file
would make too long. Both become one line naming the output, not a traceback.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path

from rereel.errors import RereelError

NAME_MAX = 255  # bytes in one file name (ext4, APFS, NTFS)


def partial_path(path: Path, tag: str) -> Path:
    """`.NAME.TAG` beside `path`; NAME cut short where the whole would pass NAME_MAX, so a legal
    output name (up to 255 bytes) never gets an illegal partial one. TAG ends with any suffix
    the writer needs (FFmpeg picks its muxer by it)."""
    name = path.name
    if len(os.fsencode(f".{name}.{tag}")) <= NAME_MAX:
        return path.with_name(f".{name}.{tag}")
    # Cut, and marked by a digest of the whole name: two long outputs of one render (NAME.mp4,
    # NAME-sbs.mp4) that differ only past the cut must not share a partial file.
    digest = hashlib.blake2b(os.fsencode(name), digest_size=6).hexdigest()
    while name and len(os.fsencode(f".{name}.{digest}.{tag}")) > NAME_MAX:
        name = name[:-1]
    return path.with_name(f".{name}.{digest}.{tag}")


def unwritable(path: Path, e: OSError) -> RereelError:
    return RereelError(f"{path}: cannot be written ({e.strerror or e})")


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output that could not be written: a folder by that name, one
    under a file, or in a folder this user may not write. (Whatever else goes wrong is said when
    it is written.)"""
    if len(os.fsencode(Path(path).name)) > NAME_MAX:  # as the file system counts: a name not in UTF-8 too
        raise RereelError(f"{path}: cannot be written, a file name is at most {NAME_MAX} bytes")
    if Path(path).is_dir():
        raise RereelError(f"{path}: is a folder; name the file to write")
    for up in Path(path).absolute().parents:
        if up.exists():
            if not up.is_dir():
                raise RereelError(f"{path}: cannot be written, {up} is a file, not a folder")
            if not os.access(up, os.W_OK | os.X_OK):
                raise RereelError(f"{path}: cannot be written, no permission to write in {up}")
            return


def check_not_a_source(outputs, sources, reads: str = "this command reads that file") -> None:
    """Refuse an output that is a file the command reads (its input, a library's footage): it
    would be replaced, while being read, by what is made from it."""
    read = {Path(p).resolve() for p in sources}
    for path in outputs:
        if Path(path).resolve() in read:
            raise RereelError(f"{path}: {reads}; writing the output there would replace it")


def ready(path: Path, partial: Path) -> None:
    """Make `path`'s folder and check that `partial` can be created there; a RereelError naming
    `path` otherwise (a file where a folder is needed, no permission, a read-only disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        for up in (path.parent, *path.parent.parents):
            if up.exists() and not up.is_dir():
                raise RereelError(f"{path}: cannot be written, {up} is a file, not a folder") from None
        raise unwritable(path, e) from None
    try:
        with open(partial, "wb"):
            pass
    except OSError as e:
        raise unwritable(path, e) from None
    _sweep_beside(path, partial)


def _sweep_beside(path: Path, partial: Path) -> None:
    """Remove the partial files a process now gone left for this same output (a killed job)."""
    m = _PARTIAL.match(partial.name)
    if not m:
        return
    prefix = partial.name[: m.start(1)]  # `.NAME.` as this output's partial names begin
    try:
        entries = [e for e in os.scandir(path.parent) if e.name != partial.name and e.name.startswith(prefix)
                   and _TAG.fullmatch(e.name[len(prefix):])]  # not `.NAME.sbs.mp4.PID...`, another output's
    except OSError:
        return
    for entry in entries:
        if _stale(Path(entry.path)):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def write_file(path: Path, write) -> Path:
    """Write `path` atomically (a reader never sees half of it): `write(tmp)` writes the whole
    file at `tmp`, a hidden partial name beside it, which takes the final name once complete and
    is removed on any failure or interruption."""
    path = Path(path)
    tmp = partial_path(path, f"{os.getpid()}.{threading.get_ident()}.tmp")  # per thread: the web app's
    ready(path, tmp)
    try:
        try:
            write(tmp)
            os.replace(tmp, path)
        except OSError as e:  # a full disk, a folder at the output's name
            raise unwritable(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (`write_file`)."""
    return write_file(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (`write_file`)."""
    return write_file(path, lambda tmp: tmp.write_bytes(data))


def save_image(image, path: Path, **options) -> Path:
    """Save a PIL image atomically (`write_file`), in the format its name's suffix says (PNG
    where the suffix names none: a partial file's own suffix must not decide it)."""
    from PIL import Image

    kind = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    return write_file(path, lambda tmp: image.save(tmp, format=kind, **options))


# `.NAME.<pid>.partial.SUFFIX` (videos) and `.NAME.<pid>.<thread>.tmp` (text): the pid says whose.
_TAG = re.compile(r"(\d+)\.(?:partial\.[A-Za-z0-9]+|\d+\.tmp)")
_PARTIAL = re.compile(r"^\..+\." + _TAG.pattern + "$")


# A partial file is taken for abandoned only when untouched this long as well: a live writer
# adds to its file every few seconds at most, and a process of the same folder seen from
# another machine (a network share) or container (another pid namespace) is not among ours.
ABANDONED_S = 600.0


def sweep_partials(folder: Path, depth: int = 2) -> list[Path]:
    """Remove, in `folder` and its subfolders down to `depth`, the partial files of processes that
    are gone (see `_stale`): a process killed with SIGKILL, or a machine that lost power, cannot
    remove its own. Returns the files removed."""
    removed = []
    folders = [Path(folder)]
    for _ in range(depth + 1):
        deeper = []
        for here in folders:
            try:
                entries = list(os.scandir(here))
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    deeper.append(Path(entry.path))
                elif _PARTIAL.match(entry.name) and _stale(Path(entry.path)):
                    try:
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
                    except OSError:  # not ours to remove: left as it is
                        pass
        folders = deeper
    return removed


def _stale(path: Path) -> bool:
    """A partial file (by its name) whose process is gone and which nothing has written for
    ABANDONED_S."""
    m = _PARTIAL.match(path.name)
    if not m or _alive(int(m.group(1))):
        return False
    try:
        return time.time() - path.stat().st_mtime > ABANDONED_S
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or not a pid at all): leave it
        return True
    return True
