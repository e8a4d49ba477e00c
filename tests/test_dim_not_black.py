"""A target shot stays black in the remake only if a viewer cannot see anything in it.

The shots are cut from the real Sintel trailer at frames chosen by eye
(tests/data/cuts_sintel_trailer.json), and their luma and thumbnail are made as the indexer
makes them: thumbnails 320 px wide sampled 4 times a second, luma the mean of their means,
the middle one kept as the shot's thumbnail.
"""

import io

import numpy as np
import pytest
from conftest import require_media
from PIL import Image

from rereel.library import ShotRecord
from rereel.match.choose import BLACK_LUMA, is_black_shot
from rereel.media import decode_frames

FPS = 24
SHOTS = {  # (first frame, end frame), by eye
    "dim face by firelight (14.75-15.67 s)": ((354, 377), False),
    "credits, small text on black": ((1163, 1220), False),
    "'coming soon', small text on black": ((1140, 1163), False),
    "opening black": ((0, 14), True),
    "black pause after the cut at 420": ((420, 434), True),
    "black after the credits": ((1220, 1253), True),
}


@pytest.fixture(scope="module")
def thumbs():
    path = require_media("trailers", "sintel_trailer_480x270.webm")
    frames = {}
    for f in decode_frames(path):
        if f.index % (FPS // 4) == 0 or any(f.index == (a + b) // 2 for (a, b), _ in SHOTS.values()):
            frames[f.index] = f.rgb(320, 180)
    return frames


def jpeg(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=82)
    return buf.getvalue()


@pytest.mark.parametrize("what", list(SHOTS))
def test_black_only_when_nothing_is_visible(thumbs, what):
    (a, b), black = SHOTS[what]
    sampled = [thumbs[i] for i in range(a, b) if i % (FPS // 4) == 0]
    luma = float(np.mean([s.mean() for s in sampled]))
    shot = ShotRecord(0, a, b, a / FPS, b / FPS, luma, jpeg(thumbs[(a + b) // 2]))
    assert is_black_shot(shot) is black, (what, luma)
    if not black:
        assert luma < BLACK_LUMA  # dark on average all the same: the mean alone would call it black


def test_black_by_count_agrees_with_the_percentile(thumbs):
    """`is_black` decides most frames by counting lit pixels; the percentile it stands for
    (`visible_level`, NumPy's) decides every frame of the trailer's samples the same way, and
    frames made to sit at the threshold: dark noise with a few bright specks, in counts around
    the half percent that makes the difference, at sizes whose percentile falls between pixels."""
    from rereel.shots.black import VISIBLE_LUMA, is_black, visible_level

    frames = list(thumbs.values())
    rng = np.random.default_rng(7)
    for _ in range(3000):
        h, w = rng.integers(8, 90, size=2)
        frame = np.clip(rng.normal(rng.integers(0, 14), rng.uniform(0, 4), (h, w, 3)), 0, 255).astype(np.uint8)
        specks = rng.random((h, w)) < rng.uniform(0, 0.012)
        frame[specks] = rng.integers(10, 16)
        frames.append(frame)
    decided = [is_black(f) for f in frames]
    wrong = [(i, f.shape, visible_level(f)) for i, (f, black) in enumerate(zip(frames, decided))
             if black != (visible_level(f) < VISIBLE_LUMA)]
    assert not wrong, wrong[:5]
    assert 100 < sum(decided) < len(frames) - 100  # both answers, many times
