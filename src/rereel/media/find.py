"""Expand the paths a user gives into the list of files to work on."""

from __future__ import annotations

from pathlib import Path

# Extensions looked for when a folder is given. A file named explicitly is always tried,
# whatever its extension: FFmpeg decides whether it is a video.
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .ogv .ogg .mpg .mpeg .ts .mts .m2ts .flv .wmv .3gp .mxf .dv .gif".split()
)


def find_videos(paths: list[Path]) -> list[Path]:
    """Files as given, and video files found recursively in folders, in a stable order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(
                f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and not f.is_dir()
            )
        else:
            found.append(p)  # missing or odd files are reported by the caller, by name
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
