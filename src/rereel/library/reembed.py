"""Re-embed a library with another encoder, keeping its shots and thumbnails.

Each video is decoded again (the frames themselves were never stored) and its frame and
shot vectors are rewritten in one transaction, marked with the new encoder; a run that is
interrupted resumes with the videos still on the old one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rereel.encoders import Encoder
from rereel.errors import MediaError, RereelError
from rereel.library.catalog import shot_vector
from rereel.library.folder import Library
from rereel.media import decode_frames, fingerprint



def _embed_frames(path: Path, rows, encoder: Encoder, progress):
    """(frame ids, embeddings, grids, colours) for the catalog's frame rows of one video.

    Frames are embedded in batches as they are decoded, so only features are held (pixels
    of every sampled frame of a two-hour film would be gigabytes). A frame_index listed by
    two rows (libraries indexed before shots stopped borrowing frames) gets the same features
    in both.
    """
    wanted: dict[int, list[int]] = {}
    for r in rows:
        wanted.setdefault(r["frame_index"], []).append(r["id"])
    ew, eh = encoder.input_size
    ids: list[int] = []
    feats = []
    batch: list[np.ndarray] = []
    batch_ids: list[list[int]] = []
    seen = 0

    def flush():
        f = encoder.embed(np.stack(batch))
        for i, fids in enumerate(batch_ids):
            ids.extend(fids)
            feats.append((np.repeat(f.embedding[i : i + 1], len(fids), 0), np.repeat(f.grid[i : i + 1], len(fids), 0),
                          np.repeat(f.colour[i : i + 1], len(fids), 0)))
        batch.clear()
        batch_ids.clear()

    for f in decode_frames(path):
        if f.index in wanted:
            batch.append(f.rgb(ew, eh))
            batch_ids.append(wanted[f.index])
            seen += 1
            if len(batch) >= encoder.batch_size:
                flush()
        if f.index % 12 == 0:
            progress.advance(f.time)
    if batch:
        flush()
    if seen != len(wanted):
        raise MediaError(path, f"decoded {seen} of the {len(wanted)} frames the catalog lists")
    return ids, *(np.concatenate([x[k] for x in feats]) for k in range(3))


def reembed_library(lib: Library, encoder: Encoder, progress) -> list[tuple[Path, str]]:
    db = lib.catalog.db
    if lib.encoder != encoder.signature:
        db.execute("BEGIN IMMEDIATE")
        lib.catalog.set_meta("encoder", encoder.signature)
        lib.catalog.set_meta("dim", str(encoder.dim))
        lib.catalog.set_meta("generation", str(lib.catalog.generation() + 1))  # the FAISS cache is stale
        db.execute("COMMIT")
    failed = []
    for video in lib.catalog.videos():
        path = Path(video["path"])
        if video["encoder"] == encoder.signature:
            progress.end_file(path, "skipped", "already on this encoder")
            continue
        try:
            if not path.exists():
                raise MediaError(path, "file has moved or gone; index its new location first")
            if fingerprint(path) != video["fingerprint"]:
                raise MediaError(path, "file has changed since it was indexed")
            progress.start_file(path, video["duration"])
            rows = db.execute("SELECT id, shot_id, frame_index FROM frames WHERE video_id=? ORDER BY frame_index",
                              (video["id"],)).fetchall()
            ids, emb, grid, colour = _embed_frames(path, rows, encoder, progress)
            shot_of = {r["id"]: r["shot_id"] for r in rows}
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "UPDATE frames SET embedding=?, grid=?, colour=? WHERE id=?",
                    [(emb[i].tobytes(), grid[i].tobytes(), colour[i].tobytes(), fid) for i, fid in enumerate(ids)],
                )
                by_shot: dict[int, list[int]] = {}
                for i, fid in enumerate(ids):
                    by_shot.setdefault(shot_of[fid], []).append(i)
                for shot_id, sel in sorted(by_shot.items()):
                    db.execute("UPDATE shots SET embedding=? WHERE id=?", (shot_vector(emb[sel]).tobytes(), shot_id))
                db.execute("UPDATE videos SET encoder=? WHERE id=?", (encoder.signature, video["id"]))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            progress.end_file(path, "indexed", "re-embedded")
        except (MediaError, RereelError) as e:
            failed.append((path, e.reason if isinstance(e, MediaError) else str(e)))
            progress.end_file(path, "failed", failed[-1][1])
    return failed
