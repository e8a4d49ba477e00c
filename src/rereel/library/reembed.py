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
from rereel.library.library import Library
from rereel.media import decode_frames, fingerprint


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
            wanted = {r["frame_index"]: r for r in rows}
            ew, eh = encoder.input_size
            ids, images = [], []
            for f in decode_frames(path):
                if f.index in wanted:
                    ids.append(wanted[f.index]["id"])
                    images.append(f.rgb(ew, eh))
                if f.index % 12 == 0:
                    progress.advance(f.time)
            if len(ids) != len(rows):
                raise MediaError(path, f"decoded {len(ids)} of the {len(rows)} frames the catalog lists")
            feats = [encoder.embed(np.stack(images[i : i + 32])) for i in range(0, len(images), 32)]
            emb = np.concatenate([f.embedding for f in feats])
            grid = np.concatenate([f.grid for f in feats])
            colour = np.concatenate([f.colour for f in feats])
            shot_of = {r["id"]: r["shot_id"] for r in rows}
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "UPDATE frames SET embedding=?, grid=?, colour=? WHERE id=?",
                    [(emb[i].tobytes(), grid[i].tobytes(), colour[i].tobytes(), fid) for i, fid in enumerate(ids)],
                )
                for shot_id in sorted(set(shot_of.values())):
                    sel = [i for i, fid in enumerate(ids) if shot_of[fid] == shot_id]
                    m = emb[sel].mean(0)
                    m = (m / max(np.linalg.norm(m), 1e-8)).astype(np.float32)
                    db.execute("UPDATE shots SET embedding=? WHERE id=?", (m.tobytes(), shot_id))
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
