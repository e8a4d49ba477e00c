"""Repair a library after its footage moved: rewrite the paths under one prefix to another.

Every file is checked by content before its path is rewritten: a file at the new place whose
fingerprint differs is a different file (a re-encode, a namesake) and is reported instead.
All paths change in one transaction, so a library is never left half relinked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rereel.errors import RereelError
from rereel.library.catalog import Catalog
from rereel.media.fingerprint import fingerprint


@dataclass
class RelinkReport:
    relinked: list[tuple[str, Path]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def _under(path: str, prefix: str) -> str | None:
    """The part of `path` below `prefix` ("" for the prefix itself), or None if not under it."""
    if path == prefix:
        return ""
    head = prefix.rstrip("/") + "/"
    return path[len(head):] if path.startswith(head) else None


def relink(catalog: Catalog, old: str, new: str | Path) -> RelinkReport:
    # OLD as typed (schema-1 libraries hold relative paths), made absolute, and resolved:
    # the stored path is one of these forms whatever folder the command runs in.
    prefixes = {os.path.normpath(old), os.path.abspath(old), os.path.realpath(old)}
    target = Path(os.path.realpath(new))
    if not target.exists():
        raise RereelError(f"{new}: no such file or folder (the new place of the footage)")
    report = RelinkReport()
    db = catalog.db
    db.execute("BEGIN IMMEDIATE")
    try:
        rows = db.execute("SELECT id, path, fingerprint FROM videos ORDER BY id").fetchall()
        matched = 0
        for row in rows:
            rest = next((r for p in sorted(prefixes, key=len, reverse=True) if (r := _under(row["path"], p)) is not None), None)
            if rest is None:
                continue
            matched += 1
            there = target / rest if rest else target
            if not there.is_file():
                report.problems.append((there, f"not found (was {row['path']}); not relinked"))
                continue
            try:
                same = fingerprint(there) == row["fingerprint"]
            except OSError as e:
                report.problems.append((there, f"cannot read the file ({e.strerror}); not relinked"))
                continue
            if not same:
                report.problems.append((there, f"content differs from the indexed {row['path']} (fingerprint); not relinked"))
                continue
            catalog.update_path(row["id"], there)
            report.relinked.append((row["path"], there))
        if not matched:
            example = rows[0]["path"] if rows else "none"
            raise RereelError(f"{old}: no video in the library lies under this path (its paths look like {example})")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return report
