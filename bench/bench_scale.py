"""A million shots: the on-disk shot index (library/search.py's DiskSearch) and the remake's
matching against it.

A library of real clips is indexed (effnet-lite0), then filled to N shots (default 1M) with
synthetic ones, as bench_webcam.py fills its indexes: each vector a random mix of two real
frame vectors plus Gaussian noise (sigma 0.01 a dimension), normalised, so the filler lies
where real features lie. Each synthetic shot has one frame (that vector, and a real frame's
composition grid and colour) in the catalog, so the remake's matcher can place it like any
shot. Written to the catalog in chunks: memory stays in the hundreds of MB.

Prints, from one run:
  - build time of the on-disk index (rows file + IVF-PQ training and adding);
  - the shot index's memory in a fresh process after loading it and answering the queries:
    anonymous (held) and file-backed (pages of the memory-mapped files read so far);
  - single-query search p50 / p95 (k=10 and k=64, the matcher's pool);
  - recall@10 against exact search (brute force over the memory-mapped floats, in chunks);
  - the Sintel trailer's matching (match_shots, the remake's step) against the N-shot library.
Targets at 1M shots: memory <= 2 GB, p95 <= 30 ms, recall@10 >= 0.95, matching <= 15 s.

`--factory` tries another faiss index (e.g. "OPQ64,IVF{lists},PQ64" or "IVF{lists},PQ128"),
`--probes` another number of lists read, on a library already filled (`--keep DIR` keeps it).

Usage: python bench/bench_scale.py [--shots 1000000] [--queries 300] [--keep DIR]
       [--factory F] [--probes P] [--skip-match] [--reuse-index]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CLIPS = [  # short real clips: the real shots, the queries and the filler's material
    "cc0_mdn_flower_bloom.mp4", "cc0_mdn_stream_of_water.mp4", "ccby_intel_asl_sign_book.mkv",
    "pd_pixwarp_nasa_cyclone_freddy_vertical.mp4", "pd_steamboat_willie_1928_extract.mp4",
    "pd_chaplin_excerpt.mp4", "ccby_zwm_tears_of_steel_10s.mp4",
]
TRAILER = MEDIA / "trailers" / "sintel_trailer_320x180.webm"
CHUNK = 10_000  # synthetic shots a filler "video"


def filler(frame_vectors: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """bench_webcam's filler (mixes of two real frame vectors + noise), and which real frame each started from."""
    a_idx = rng.integers(0, len(frame_vectors), n)
    a = frame_vectors[a_idx]
    b = frame_vectors[rng.integers(0, len(frame_vectors), n)]
    w = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    x = w * a + (1 - w) * b + rng.normal(0, 0.01, a.shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), a_idx


def fill(lib_dir: Path, target: int) -> None:
    """Add synthetic shots (one frame each) until the catalog holds `target` shots."""
    db = sqlite3.connect(str(lib_dir / "catalog.sqlite"), isolation_level=None)
    have = db.execute("SELECT COUNT(*) FROM shots").fetchone()[0]
    real = db.execute("SELECT embedding, grid, colour FROM frames WHERE video_id IN"
                      " (SELECT id FROM videos WHERE codec!='synthetic')").fetchall()
    vecs = np.stack([np.frombuffer(r[0], np.float32) for r in real])
    enc = db.execute("SELECT value FROM meta WHERE key='encoder'").fetchone()[0]
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    n_video = 0
    while have < target:
        m = min(CHUNK, target - have)
        x, src = filler(vecs, m, rng)
        db.execute("BEGIN")
        vid = db.execute(
            "INSERT INTO videos(fingerprint, path, name, size, duration, fps, vfr, width, height, rotation, has_audio,"
            " codec, frames, detector, encoder, indexed_at) VALUES (?,?,?,0,?,25,0,320,180,0,0,'synthetic',?,'content',?,?)",
            (f"synthetic-{n_video}", f"/synthetic/{n_video}.mp4", f"synthetic {n_video}", 2.0 * m, 50 * m, enc, time.time()),
        ).lastrowid
        first = db.execute("SELECT COALESCE(MAX(id), 0) FROM shots").fetchone()[0] + 1
        db.executemany(
            "INSERT INTO shots(id, video_id, idx, start_frame, end_frame, start, end, luma, embedding, thumb)"
            " VALUES (?,?,?,?,?,?,?,100,?,x'')",
            ((first + i, vid, i, 50 * i, 50 * i + 50, 2.0 * i, 2.0 * i + 2, x[i].tobytes()) for i in range(m)),
        )
        db.executemany(
            "INSERT INTO frames(shot_id, video_id, frame_index, time, embedding, grid, colour) VALUES (?,?,?,?,?,?,?)",
            ((first + i, vid, 50 * i + 25, 2.0 * i + 1, x[i].tobytes(), real[src[i]][1], real[src[i]][2]) for i in range(m)),
        )
        db.execute("COMMIT")
        have += m
        n_video += 1
        if n_video % 10 == 0:
            print(f"  filled {have} shots ({time.perf_counter() - t:.0f} s)", flush=True)
    db.close()
    print(f"filled to {target} shots in {time.perf_counter() - t:.0f} s;"
          f" catalog {os.path.getsize(lib_dir / 'catalog.sqlite') / 1e9:.1f} GB")


def exact_top(rows: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force top-k ids over the memory-mapped floats, a chunk at a time."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for at in range(0, len(rows), 65536):
        s = queries @ np.asarray(rows[at:at + 65536]).T
        s_all = np.concatenate([best_s, s], axis=1)
        i_all = np.concatenate([best_i, np.broadcast_to(ids[at:at + 65536], s.shape)], axis=1)
        top = np.argpartition(-s_all, k, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
    return best_i


def memory() -> dict:
    status = Path("/proc/self/status").read_text().splitlines()
    return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in status
            if line.startswith(("VmRSS", "RssAnon", "RssFile", "VmHWM"))}


def search_phase(lib_dir: Path, queries_path: Path, out: Path, skip_match: bool) -> None:
    """In a fresh process: load the index, answer the queries, match the trailer; memory as it goes."""
    import faiss

    from rereel.library import Library
    from rereel.library.search import DiskSearch

    import rereel.library.folder as folder

    folder.ON_DISK_ABOVE = 0  # measured from disk at any --shots (the library picks it above ON_DISK_ABOVE)
    before = memory()
    lib = Library(lib_dir)
    t = time.perf_counter()
    s = lib.searcher("shots")  # built here (on all cores) when the files are missing
    load_s = time.perf_counter() - t
    faiss.omp_set_num_threads(1)  # single queries: one thread (see search.one_thread)
    assert isinstance(s, DiskSearch), type(s)
    q = np.load(queries_path)
    lat = {10: [], 64: []}
    found = []
    for k in (10, 64):
        for row in q:
            t = time.perf_counter()
            _, ids = s.search(row, k)
            lat[k].append((time.perf_counter() - t) * 1000)
            if k == 10:
                found.append(ids[0])
    after = memory()
    result = {"load_s": load_s, "build_s": s.build_s, "found": np.stack(found).tolist(),
              "p50": {k: float(np.percentile(v, 50)) for k, v in lat.items()},
              "p95": {k: float(np.percentile(v, 95)) for k, v in lat.items()},
              "mem_before": before, "mem_after": after, "nlist": faiss.extract_index_ivf(s.index).nlist,
              "probes": s.probes}
    if not skip_match:
        from rereel.encoders import create_encoder
        from rereel.library import analyse_video
        from rereel.match.choose import MatchOptions, match_shots
        from rereel.media import probe

        t = time.perf_counter()
        enc = create_encoder("effnet-lite0")
        shots = analyse_video(TRAILER, enc, "content", probe(TRAILER).fps)
        result["analyse_s"] = time.perf_counter() - t
        t = time.perf_counter()
        matches = match_shots(shots, lib, MatchOptions())
        result["match_s"] = time.perf_counter() - t
        result["match_shots"] = len(matches)
        result["matched_real"] = sum(1 for m in matches if m.chosen is not None and not m.chosen.path.startswith("/synthetic/"))
        result["mem_end"] = memory()
    Path(out).write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shots", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--keep", type=Path, help="library folder to make (or reuse) and keep")
    ap.add_argument("--factory", help="faiss index_factory string for the on-disk index ({lists}, {m} filled in)")
    ap.add_argument("--probes", type=int)
    ap.add_argument("--skip-match", action="store_true")
    ap.add_argument("--reuse-index", action="store_true", help="keep an on-disk index already built (no build time)")
    ap.add_argument("--search-phase", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from rereel.library import search

    if args.factory:
        search.DISK_FACTORY = args.factory
        os.environ["REREEL_BENCH_FACTORY"] = args.factory
    if os.environ.get("REREEL_BENCH_FACTORY"):
        search.DISK_FACTORY = os.environ["REREEL_BENCH_FACTORY"]
    if args.probes:
        search.DISK_PROBES = args.probes
        os.environ["REREEL_BENCH_PROBES"] = str(args.probes)
    if os.environ.get("REREEL_BENCH_PROBES"):
        search.DISK_PROBES = int(os.environ["REREEL_BENCH_PROBES"])
    if args.search_phase:
        search_phase(Path(args.search_phase[0]), Path(args.search_phase[1]), Path(args.search_phase[2]), args.skip_match)
        return

    import faiss

    from rereel.encoders import create_encoder
    from rereel.library import Library, index_paths

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: times are under others' load)")
    tmp = None
    lib_dir = args.keep
    if lib_dir is None:
        tmp = tempfile.mkdtemp(prefix="bench_scale_", dir=ROOT / "out" if (ROOT / "out").exists() else None)
        lib_dir = Path(tmp) / "library"
    try:
        with Library(lib_dir, create=True) as lib:
            if lib.catalog.stats()["videos"] == 0:
                t = time.perf_counter()
                report = index_paths([MEDIA / "archive" / c for c in CLIPS], lib, create_encoder("effnet-lite0"), "content")
                assert not report.failed, report.failed
                print(f"real clips: {len(report.indexed)} indexed in {time.perf_counter() - t:.0f} s")
            real = "video_id IN (SELECT id FROM videos WHERE codec!='synthetic')"  # never all 1M rows at once
            real_shots = lib.catalog.db.execute(f"SELECT COUNT(*) FROM shots WHERE {real}").fetchone()[0]
            real_frames = np.stack([np.frombuffer(r[0], np.float32) for r in
                                    lib.catalog.db.execute(f"SELECT embedding FROM frames WHERE {real}")])
        fill(lib_dir, args.shots)
        rng = np.random.default_rng(1)
        # Queries: real frames of the clips (a frame's own shot is among the answers) and new mixes.
        half = args.queries // 2
        qs = np.concatenate([real_frames[rng.choice(len(real_frames), half, replace=half > len(real_frames))],
                             filler(real_frames, args.queries - args.queries // 2, rng)[0]]).astype(np.float32)
        qpath = Path(lib_dir).parent / "queries.npy"
        np.save(qpath, qs)
        for f in [] if args.reuse_index else Path(lib_dir).glob("shots.disk.*"):
            f.unlink()  # the build is measured
        res_path = Path(lib_dir).parent / "search.json"
        cmd = [sys.executable, __file__, "--search-phase", str(lib_dir), str(qpath), str(res_path)]
        t = time.perf_counter()
        subprocess.run(cmd + (["--skip-match"] if args.skip_match else []), check=True)
        res = json.loads(res_path.read_text())
        print(f"index built in {res['build_s']:.0f} s ({search.DISK_FACTORY.format(lists=res['nlist'], m=search.DISK_PQ_BYTES)},"
              f" {res['probes']} lists probed, {search.DISK_REFINE} candidates re-scored); subprocess {time.perf_counter() - t:.0f} s")
        # A second fresh process: the index loaded, not built, and its memory alone.
        subprocess.run(cmd + ["--skip-match"], check=True)
        warm = json.loads(res_path.read_text())
        ids = np.load(Path(lib_dir) / "shots.rows.ids.npy")
        rows = np.memmap(Path(lib_dir) / "shots.rows.f32", np.float32, "r", shape=(len(ids), qs.shape[1]))
        t = time.perf_counter()
        truth = exact_top(rows, ids, qs, 10)
        exact_s = time.perf_counter() - t
        found = np.array(warm["found"])
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
        m = warm["mem_after"]
        b = warm["mem_before"]
        anon = (m["RssAnon"] - b["RssAnon"]) / 1e9
        filed = (m["RssFile"] - b["RssFile"]) / 1e9
        print(f"library: {len(ids)} shots ({real_shots} real), dim {qs.shape[1]}; rows file "
              f"{os.path.getsize(Path(lib_dir) / 'shots.rows.f32') / 1e9:.2f} GB, index file "
              f"{os.path.getsize(Path(lib_dir) / 'shots.disk.faiss') / 1e6:.0f} MB")
        print(f"load (fresh process, index on disk): {warm['load_s']:.2f} s")
        print(f"shot-index memory after {2 * len(qs)} queries: {anon:.3f} GB held (anonymous) + {filed:.3f} GB"
              f" of mapped file pages read; process RSS {m['VmRSS'] / 1e9:.2f} GB, peak {m['VmHWM'] / 1e9:.2f} GB"
              f" (target <= 2 GB: {'met' if anon + filed <= 2 else 'MISSED'})")
        for k in (10, 64):
            print(f"search k={k}: p50 {warm['p50'][str(k)]:.1f} ms, p95 {warm['p95'][str(k)]:.1f} ms"
                  + (f" (target p95 <= 30 ms: {'met' if warm['p95'][str(k)] <= 30 else 'MISSED'})" if k == 10 else ""))
        print(f"recall@10 against exact ({len(qs)} queries; exact brute force took {exact_s:.0f} s): {recall:.3f}"
              f" (target >= 0.95: {'met' if recall >= 0.95 else 'MISSED'})")
        if not args.skip_match:
            print(f"Sintel trailer: analysed in {res['analyse_s']:.1f} s; matching {res['match_shots']} shots against "
                  f"{len(ids)} took {res['match_s']:.1f} s (target <= 15 s: {'met' if res['match_s'] <= 15 else 'MISSED'});"
                  f" {res['matched_real']} chose a real clip; RSS at the end {res['mem_end']['VmRSS'] / 1e9:.2f} GB")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
