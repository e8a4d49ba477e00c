"""Expand the paths a user gives into the list of files to work on."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Extensions looked for when a folder is given. A file named explicitly is always tried,
# whatever its extension: FFmpeg decides whether it is a video.
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .ogv .ogg .mpg .mpeg .ts .mts .m2ts .flv .wmv .3gp .mxf .dv .gif".split()
)


def named_files(spec: str) -> list[Path]:
    """The file a command-line spec names, if it names one: the spec itself, or what comes before
    its last @ (VIDEO@SECONDS, VIDEO@12.5-15)."""
    return [p for p in dict.fromkeys((Path(spec), Path(spec.rpartition("@")[0] or spec))) if _is_file(p)]


def _is_file(path: Path) -> bool:
    """Path.is_file(), except that a spec may be words, not a path: a long query is a name too long
    for the OS (OSError, which is_file passes on), and a NUL byte a ValueError; either way no file."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def not_a_file_reason(path: Path) -> str | None:
    """Why `path` cannot be a video file (folder, symlink loop, broken link, device...), or None."""
    try:
        st = path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop (the link points back to itself)"
        if path.is_symlink():
            return "broken symbolic link (its target does not exist)"
        if e.errno == errno.ENOENT:
            return "no such file"
        return f"cannot read the file ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder with no video files in it"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a device, pipe or socket)"
    return None


def scan_videos(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files, problems): files as given and video files found recursively in folders, in a
    stable order; problems are the paths passed over, each with the reason, so that nothing a
    user gave or that looks like a video disappears silently.

    A folder given (or met) that holds no video is a problem; so is an entry with a video
    extension that is a symlink loop, a broken link or not a regular file.
    """
    found: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for p in paths:
        if p.is_dir():
            inside: list[Path] = []
            for root, dirs, names in os.walk(p):  # does not follow links to folders: no loops
                dirs.sort()
                for name in sorted(names + [d for d in dirs if Path(d).suffix.lower() in VIDEO_EXTENSIONS]):
                    f = Path(root) / name
                    if f.suffix.lower() not in VIDEO_EXTENSIONS:
                        continue
                    reason = not_a_file_reason(f)
                    if reason is None:
                        inside.append(f)
                    elif not (f.is_dir() and _holds_video(f)):  # a folder named x.mp4 full of videos is fine
                        problems.append((f, reason))
            if not inside and not any(p in q.parents for q, _ in problems):
                problems.append((p, "is a folder with no video files in it"))
            found += sorted(inside)
        else:
            found.append(p)  # missing or odd files are reported by the caller, by name
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


def _holds_video(folder: Path) -> bool:
    return any(f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file() for f in folder.rglob("*"))


def find_videos(paths: list[Path]) -> list[Path]:
    """Files as given, and video files found recursively in folders, in a stable order."""
    return scan_videos(paths)[0]
