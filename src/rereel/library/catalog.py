"""The SQLite catalog: videos, shots, sampled frames and their features.

SQLite is the source of truth; the FAISS files beside it are a cache rebuilt from it when
they disagree. Each video is written in one transaction (WAL journal), so a run killed at
any moment leaves the catalog as it was before that video.

Video paths are stored absolute and resolved, so a library works from any folder (schema 2;
schema 1 stored paths as the user typed them, see `_migrate`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rereel.encoders import l2_normalise
from rereel.errors import RereelError
from rereel.media.fingerprint import fingerprint

SCHEMA_VERSION = "2"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    duration REAL NOT NULL,
    fps REAL NOT NULL,
    vfr INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    rotation INTEGER NOT NULL,
    has_audio INTEGER NOT NULL,
    codec TEXT NOT NULL,
    frames INTEGER NOT NULL,
    detector TEXT NOT NULL,
    encoder TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shots (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start_frame INTEGER NOT NULL,
    end_frame INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    luma REAL NOT NULL,
    embedding BLOB NOT NULL,
    thumb BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY,
    shot_id INTEGER NOT NULL REFERENCES shots(id) ON DELETE CASCADE,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    frame_index INTEGER NOT NULL,
    time REAL NOT NULL,
    embedding BLOB NOT NULL,
    grid BLOB NOT NULL,
    colour BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS shots_video ON shots(video_id, idx);
CREATE INDEX IF NOT EXISTS frames_shot ON frames(shot_id, time);
CREATE INDEX IF NOT EXISTS frames_video ON frames(video_id);
"""


@dataclass
class FrameRecord:
    frame_index: int
    time: float
    embedding: np.ndarray  # float32 [dim]
    grid: np.ndarray  # float16
    colour: np.ndarray  # float32


@dataclass
class ShotRecord:
    idx: int
    start_frame: int
    end_frame: int
    start: float
    end: float
    luma: float
    thumb: bytes  # JPEG
    frames: list[FrameRecord] = field(default_factory=list)

    def embedding(self) -> np.ndarray:
        """The shot's global vector (see `shot_vector`)."""
        return shot_vector(np.stack([f.embedding for f in self.frames]))


def shot_vector(frame_vectors: np.ndarray) -> np.ndarray:
    """A shot's global vector: the normalised mean of its frames' vectors [n, dim], float32."""
    return l2_normalise(frame_vectors.mean(0)).astype(np.float32)


class AlreadyIndexed(RereelError):
    """The video's content was committed by another process while this one analysed it."""


class Catalog:
    """A connection to `catalog.sqlite` in a library folder."""

    def __init__(self, path: Path, *, shared: bool = False):
        """`shared`: the connection may be used from several threads; the caller serialises use
        (the web app holds a lock), which sqlite3's own check cannot know."""
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=not shared)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
            self._add_columns()
        except sqlite3.DatabaseError as e:
            raise RereelError(f"{path}: not a rereel catalog or damaged ({e})") from None
        version = self.get_meta("schema")
        if version != SCHEMA_VERSION:
            self._migrate()

    def _add_columns(self) -> None:
        """Columns added since schema 2, with defaults: no new schema version, so an older rereel
        still opens the library (it names its columns, and an insert of its gets the default).
        `sar`: the pixels' aspect; 1.0 for videos indexed before it was read (index again to read it)."""
        have = {r[1] for r in self.db.execute("PRAGMA table_info(videos)")}
        self.has_sar = "sar" in have
        if not self.has_sar:
            try:
                self.db.execute("ALTER TABLE videos ADD COLUMN sar REAL NOT NULL DEFAULT 1.0")
                self.has_sar = True
            except sqlite3.OperationalError as e:
                # Another process added it a moment ago; or a library on a read-only disk, or
                # locked by a long write: read as it is (pixels square), added at a later open.
                self.has_sar = "duplicate column" in str(e)

    def _migrate(self) -> None:
        """Bring an older catalog to SCHEMA_VERSION, once, in one transaction.

        Schema 1 stored paths as typed, often relative to a folder it never recorded. The only
        folder one can guess is the current one, so a relative path is made absolute against it
        only when the file there has the fingerprint the catalog knows (then it is certainly the
        same file); any other is left as it was, and the user is told to run `rereel relink`
        (or to index the archive again: a file found by content gets its new path).
        """
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")  # a second process opening now waits, then finds it done
        except sqlite3.OperationalError as e:
            raise RereelError(f"{self.path}: cannot update the catalog to this rereel's format ({e})") from None
        try:
            version = self.get_meta("schema")
            if version is None:  # a new catalog
                self.set_meta("schema", SCHEMA_VERSION)
            elif version == "1":
                for row in db.execute("SELECT id, path, fingerprint FROM videos").fetchall():
                    here = Path(row["path"])
                    if here.is_absolute() or not here.is_file():
                        continue
                    try:
                        same = fingerprint(here) == row["fingerprint"]
                    except OSError:
                        same = False
                    if same:
                        db.execute("UPDATE videos SET path=? WHERE id=?", (os.path.realpath(here), row["id"]))
                self.set_meta("schema", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise RereelError(f"{self.path}: catalog schema {version}, this rereel reads {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        left = self.relative_paths()
        if version == "1" and left:
            print(f"warning: {self.path}: {len(left)} videos keep the relative paths an older rereel stored "
                  f"(e.g. {left[0]}), not found from this folder; repair them with `rereel relink OLD NEW`",
                  file=sys.stderr)

    def video_paths(self) -> list[Path]:
        """Every indexed video's path: the footage the library's commands read."""
        return [Path(r[0]) for r in self.db.execute("SELECT path FROM videos")]

    def relative_paths(self) -> list[str]:
        """Paths left relative by schema 1 that the migration could not place."""
        return [r[0] for r in self.db.execute("SELECT path FROM videos ORDER BY id") if not Path(r[0]).is_absolute()]

    def missing_paths(self) -> set[str]:
        """Paths of videos not there any more (moved, deleted, a disk not mounted): one stat a video."""
        return {r[0] for r in self.db.execute("SELECT path FROM videos") if not Path(r[0]).exists()}

    def close(self) -> None:
        self.db.close()

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """Bumped on every change that removes or rewrites vectors: the FAISS cache checks it."""
        return int(self.get_meta("generation") or 0)

    # -- writing -----------------------------------------------------------------------------
    def add_video(self, info: dict, fingerprint: str, detector: str, encoder: str, shots: list[ShotRecord]) -> int:
        """Insert a video with all its shots and frames, atomically; its path is stored absolute.

        A video stored at the same path with other content (the file was replaced: re-exported
        under its name) is removed in the same transaction: its shots would otherwise be matched
        and then rendered from the new file's pictures. Raises AlreadyIndexed when another
        process committed the same content first.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.video_by_fingerprint(fingerprint) is not None:
                raise AlreadyIndexed(f"{info['path']}: indexed meanwhile by another run")
            path = os.path.realpath(info["path"])
            cur = db.execute(
                "INSERT INTO videos(fingerprint, path, name, size, duration, fps, vfr, width, height, rotation,"
                " has_audio, codec, frames, detector, encoder, indexed_at" + (", sar" if self.has_sar else "") +
                ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?" + (",?" if self.has_sar else "") + ")",
                (
                    fingerprint, path, Path(info["path"]).name, info["size"], info["duration"],
                    info["fps"], int(info["vfr"]), info["width"], info["height"], info["rotation"],
                    int(info["has_audio"]), info["codec"], info["frames"], detector, encoder, time.time(),
                ) + ((float(info.get("sar") or 1.0),) if self.has_sar else ()),
            )
            video_id = cur.lastrowid
            for s in shots:
                sid = db.execute(
                    "INSERT INTO shots(video_id, idx, start_frame, end_frame, start, end, luma, embedding, thumb)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (video_id, s.idx, s.start_frame, s.end_frame, s.start, s.end, s.luma,
                     s.embedding().tobytes(), s.thumb),
                ).lastrowid
                db.executemany(
                    "INSERT INTO frames(shot_id, video_id, frame_index, time, embedding, grid, colour)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [
                        (sid, video_id, f.frame_index, f.time, f.embedding.astype(np.float32).tobytes(),
                         f.grid.astype(np.float16).tobytes(), f.colour.astype(np.float32).tobytes())
                        for f in s.frames
                    ],
                )
            # Removed after the new rows are in, so no id of its is ever given again (SQLite hands
            # out the highest id + 1): a vector index or timeline that still holds one finds nothing.
            if db.execute("DELETE FROM videos WHERE path=? AND id!=?", (path, video_id)).rowcount:
                # its shots and frames go with it (ON DELETE CASCADE); the vector caches rebuild
                self.set_meta("generation", str(self.generation() + 1))
            db.execute("COMMIT")
            return video_id
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def update_path(self, video_id: int, path: Path) -> None:
        self.db.execute("UPDATE videos SET path=?, name=? WHERE id=?", (os.path.realpath(path), path.name, video_id))

    # -- reading -----------------------------------------------------------------------------
    def video_by_fingerprint(self, fingerprint: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM videos WHERE fingerprint=?", (fingerprint,)).fetchone()

    def videos(self) -> list[sqlite3.Row]:
        """Every video, with its `shot_count`, and its `sar` also where the column could not be added."""
        sar = "" if self.has_sar else ", 1.0 AS sar"
        return self.db.execute(
            f"SELECT v.*{sar}, (SELECT COUNT(*) FROM shots s WHERE s.video_id=v.id) AS shot_count FROM videos v ORDER BY v.id"
        ).fetchall()

    def video(self, video_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM videos WHERE id=?", (video_id,)).fetchone()

    def shots(self, video_id: int | None = None) -> list[sqlite3.Row]:
        cols = "id, video_id, idx, start_frame, end_frame, start, end, luma"
        if video_id is None:
            return self.db.execute(f"SELECT {cols} FROM shots ORDER BY video_id, idx").fetchall()
        return self.db.execute(f"SELECT {cols} FROM shots WHERE video_id=? ORDER BY idx", (video_id,)).fetchall()

    def shot(self, shot_id: int) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT s.id, s.video_id, s.idx, s.start_frame, s.end_frame, s.start, s.end, s.luma, v.path, v.name, v.fps,"
            " v.duration AS video_duration, v.fingerprint"
            " FROM shots s JOIN videos v ON v.id=s.video_id WHERE s.id=?",
            (shot_id,),
        ).fetchone()

    def thumbnail(self, shot_id: int) -> bytes | None:
        row = self.db.execute("SELECT thumb FROM shots WHERE id=?", (shot_id,)).fetchone()
        return row[0] if row else None

    def shot_frames(self, shot_id: int) -> dict[str, np.ndarray]:
        """Times and features of a shot's sampled frames, in time order."""
        rows = self.db.execute(
            "SELECT time, embedding, grid, colour FROM frames WHERE shot_id=? ORDER BY time", (shot_id,)
        ).fetchall()
        return {
            "time": np.array([r[0] for r in rows], np.float64),
            "embedding": np.stack([np.frombuffer(r[1], np.float32) for r in rows]),
            "grid": np.stack([np.frombuffer(r[2], np.float16) for r in rows]),
            "colour": np.stack([np.frombuffer(r[3], np.float32) for r in rows]),
        }

    def embeddings(self, kind: str, after_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of shots or frames with id > after_id, as numpy arrays (the FAISS cache is `Library.vectors`)."""
        table = {"shots": "shots", "frames": "frames"}[kind]
        rows = self.db.execute(f"SELECT id, embedding FROM {table} WHERE id>? ORDER BY id", (after_id,)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.array([r[0] for r in rows], np.int64)
        return ids, np.stack([np.frombuffer(r[1], np.float32) for r in rows])

    def iter_embeddings(self, kind: str, after_id: int = 0, chunk: int = 16384):
        """(ids, vectors) of shots or frames with id > after_id, `chunk` rows at a time: a million
        rows without a million blobs in memory at once (the on-disk index of library/search.py)."""
        table = {"shots": "shots", "frames": "frames"}[kind]
        while True:
            rows = self.db.execute(f"SELECT id, embedding FROM {table} WHERE id>? ORDER BY id LIMIT ?",
                                   (after_id, chunk)).fetchall()
            if not rows:
                return
            ids = np.array([r[0] for r in rows], np.int64)
            yield ids, np.stack([np.frombuffer(r[1], np.float32) for r in rows])
            after_id = int(ids[-1])

    def count(self, kind: str, up_to: int | None = None) -> int:
        """How many shots or frames there are (with id <= up_to)."""
        table = {"shots": "shots", "frames": "frames"}[kind]
        if up_to is None:
            return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return self.db.execute(f"SELECT COUNT(*) FROM {table} WHERE id<=?", (up_to,)).fetchone()[0]

    def ids(self, kind: str, up_to: int) -> np.ndarray:
        """Sorted row ids of shots or frames with id <= up_to: what the FAISS cache must hold."""
        table = {"shots": "shots", "frames": "frames"}[kind]
        rows = self.db.execute(f"SELECT id FROM {table} WHERE id<=? ORDER BY id", (up_to,)).fetchall()
        return np.array([r[0] for r in rows], np.int64)

    def stats(self) -> dict:
        v, secs = self.db.execute("SELECT COUNT(*), COALESCE(SUM(duration), 0) FROM videos").fetchone()
        shots = self.db.execute("SELECT COUNT(*) FROM shots").fetchone()[0]
        frames = self.db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        return {"videos": v, "shots": shots, "frames": frames, "seconds": round(secs, 3)}

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
