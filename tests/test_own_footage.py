"""When the archive holds the footage a target shot was cut from, that footage comes first.

The target is a montage made here from real clips, each segment re-framed (10% crop), re-graded
(gamma, colour), re-scaled and re-encoded with another codec (MPEG-4 Part 2), so its source
and source time are known from outside the code under test. Like a trailer, the montage plays
its sources at their own speed (re-timed to 24 fps, a 25 fps film included), so montage time
t in segment k is source time a + (t - start of k).
"""

from fractions import Fraction

import av
import numpy as np
from conftest import require_media

from rereel.encoders import create_encoder
from rereel.library import Library, index_paths
from rereel.media import decode_frames
from rereel.pipeline import remake

# (clip, start s, end s): each inside one shot of its clip (cuts by eye and by the detectors).
SEGMENTS = [
    ("ccby_mdn_tears_of_steel_battle_clip.webm", 2.6, 4.6),
    ("pd_nosferatu_1922_excerpt.mp4", 3.2, 5.6),
    ("ccby_bbb_film_first30s.webm", 24.0, 26.5),
    ("ccby_mdn_tears_of_steel_battle_clip.webm", 9.6, 11.8),
    ("pd_nosferatu_1922_excerpt.mp4", 27.8, 30.6),  # moving (9.6-19.9 is a still title card: no time to find)
]
DISTRACTORS = ["pd_chaplin_excerpt.mp4", "cc0pd_mdn_friday_his_girl_friday_1940.mp4", "ccby_zwm_tears_of_steel_10s.mp4"]
FPS, SIZE = 24, (480, 270)
BAR = 4  # of 5 segments matched to their own clip within 0.5 s


def regrade(rgb: np.ndarray, k: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    crop = rgb[h // 20 : h - h // 20, w // 20 : w - w // 20]  # 10% off each dimension
    x = (crop.astype(np.float32) / 255) ** (0.8 if k % 2 else 1.25)  # gamma
    x *= np.array([1.08, 1.0, 0.9] if k % 2 else [0.92, 1.0, 1.1])  # warmer / cooler
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def make_montage(archive, out) -> list[float]:
    """Write the montage; return the montage time each segment starts at, and its end (from frames written)."""
    starts = []
    with av.open(str(out), "w") as c:
        s = c.add_stream("mpeg4", rate=FPS)
        s.width, s.height, s.pix_fmt = *SIZE, "yuv420p"
        s.bit_rate = 1_500_000
        n = 0
        for k, (clip, a, b) in enumerate(SEGMENTS):
            starts.append(n / FPS)
            src = [(f.time, f.rgb(640, 360)) for f in decode_frames(archive / clip, start=a, end=b)]
            times = np.array([t for t, _ in src])
            for j in range(round((b - a) * FPS)):  # the source frame showing at a + j/FPS, at source speed
                i = max(int(np.searchsorted(times, a + j / FPS, side="right")) - 1, 0)
                frame = av.VideoFrame.from_ndarray(regrade(src[i][1], k), format="rgb24").reformat(*SIZE)
                frame.pts, frame.time_base = n, Fraction(1, FPS)
                n += 1
                c.mux(s.encode(frame))
        c.mux(s.encode())
    return starts + [n / FPS]


def test_own_footage_ranks_first(tmp_path):
    archive = require_media("archive")
    target = tmp_path / "montage.mp4"
    starts = make_montage(archive, target)
    lib_dir = tmp_path / "lib"
    sources = sorted({s[0] for s in SEGMENTS}) + DISTRACTORS
    with Library(lib_dir, create=True) as lib:
        report = index_paths([archive / n for n in sources], lib, create_encoder("effnet-lite0"), "content")
        assert not report.failed, report.failed
        result = remake(target, lib, [])
    hits = []
    for k, (clip, a, b) in enumerate(SEGMENTS):
        # the target shots lying inside this segment (the detector may split or shift by a frame)
        inside = [m for m in result.matches if starts[k] - 0.1 <= m.start and m.end <= starts[k + 1] + 0.1]
        ok = bool(inside) and all(
            m.chosen is not None and m.chosen.name == clip
            and abs(m.chosen.placement.start - (a + m.start - starts[k])) <= 0.5 for m in inside)
        hits.append(ok)
    detail = [(m.start, m.end, m.chosen and (m.chosen.name, round(m.chosen.placement.start, 2))) for m in result.matches]
    assert sum(hits) >= BAR, (hits, detail)
