"""Content fingerprints: a file is known by what it holds, not where it lies."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def fingerprint(path: Path) -> str:
    """BLAKE2b of the size and three 1 MiB samples (start, middle, end) of the file.

    Hashing every byte of a feature film costs as long as reading it; three samples and the
    exact size tell two video files apart just as surely, because any re-encode or edit
    changes the bytes at the start (headers) and the end (index or trailing packets).
    """
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    h.update(size.to_bytes(8, "little"))
    with path.open("rb") as f:
        if size <= 3 * _CHUNK:
            h.update(f.read())
        else:
            for offset in (0, size // 2 - _CHUNK // 2, size - _CHUNK):
                f.seek(offset)
                h.update(f.read(_CHUNK))
    return h.hexdigest()
