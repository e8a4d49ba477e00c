"""The webcam mirror's matcher on real archive frames, sent as a browser would (320-px JPEG)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from rereel.errors import RereelError
from rereel.library import Library, VectorIndex
from rereel.media import decode_frames
from rereel.web.mirror import HOLD, MARGIN, Mirror, decode_jpeg

FLOWER = "cc0_mdn_flower_bloom.mp4"  # a time-lapse: every moment looks different
TEARS = "ccby_zwm_tears_of_steel_10s.mp4"  # five shots
WATER = "cc0_mdn_stream_of_water.mp4"


def webcam_jpeg(path, t: float) -> tuple[float, bytes]:
    """(frame time, JPEG bytes) of the frame at t, 320 px wide, as the mirror page sends it."""
    frame = next(decode_frames(path, start=t))
    im = Image.fromarray(frame.frame.to_ndarray(format="rgb24"))
    im = im.resize((320, round(im.height * 320 / im.width)), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return frame.time, buf.getvalue()


@pytest.fixture(scope="module")
def lib(web_library):
    with Library(web_library) as lib:
        yield lib


@pytest.fixture(scope="module")
def mirror(lib):
    return Mirror.from_library(lib)


@pytest.mark.parametrize("name, t", [(FLOWER, 2.0), (FLOWER, 3.6), (TEARS, 1.5), (TEARS, 5.1)])
def test_a_frame_finds_its_own_video_near_its_time(lib, mirror, archive, name, t):
    when, data = webcam_jpeg(archive / name, t)
    m = mirror.match(decode_jpeg(data))
    assert lib.catalog.video(m.video_id)["name"] == name
    shot = lib.catalog.shot(m.shot_id)
    assert shot["video_id"] == m.video_id and shot["start"] - 1e-6 <= m.time < shot["end"]
    assert abs(m.time - when) <= 0.5  # two sampling steps (4 frames/s are indexed)
    assert m.best_shot_id == m.shot_id and not m.switched and 0.5 < m.score <= 1.0 + 1e-5
    assert 0 < m.embed_ms < m.total_ms and 0 < m.search_ms < m.total_ms


def test_hysteresis_holds_a_near_tie_and_yields_to_a_clear_winner(mirror):
    s = mirror.session()
    assert s.choose(1, 0.80, 0.80) == 1  # nothing shown yet: the best
    for _ in range(5):  # two look-alikes trading first place: the shown one stays
        assert s.choose(2, 0.81, 0.80) == 1
        assert s.choose(1, 0.81, 0.81) == 1
    assert s.choose(3, 0.80 + MARGIN, 0.80) == 3  # clearly better: at once
    for _ in range(HOLD - 1):  # a little better, but steadily: after HOLD frames
        assert s.choose(4, 0.82, 0.81) == 3
    assert s.choose(4, 0.82, 0.81) == 4


def test_a_session_switches_when_the_scene_changes(lib, mirror, archive):
    s = mirror.session()
    first = [s.match(decode_jpeg(webcam_jpeg(archive / FLOWER, t)[1])) for t in (2.0, 2.1, 2.2)]
    assert len({m.shot_id for m in first}) == 1 and not any(m.switched for m in first)
    water = s.match(decode_jpeg(webcam_jpeg(archive / WATER, 1.5)[1]))
    assert water.switched and lib.catalog.video(water.video_id)["name"] == WATER


def test_garbage_frames_get_a_clear_error(archive):
    for data in (b"", b"this is not a jpeg", webcam_jpeg(archive / FLOWER, 1.0)[1][:600]):
        with pytest.raises(RereelError, match="webcam frame: .*(JPEG|damaged)"):
            decode_jpeg(data)


def test_a_large_index_is_searched_through_an_inverted_file(lib, mirror, archive):
    """Above flat_limit the mirror searches an IVF index; it must return the flat index's answers."""
    import faiss

    ids, vectors = lib.catalog.embeddings("shots")
    rng = np.random.default_rng(0)
    filler = rng.normal(size=(3000, vectors.shape[1])).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(np.concatenate([vectors, filler]), np.concatenate([ids, 10_000 + np.arange(3000)]))
    shots = VectorIndex(index, vectors.shape[1])
    big = Mirror(mirror.encoder, shots, flat_limit=1000)
    assert big.shots.is_approximate(None) and big.shots.approximate_index().ntotal == shots.count
    for vector, shot_id in zip(vectors, ids):
        scores, found = big.search(vector)
        assert found[0] == shot_id and scores[0] == pytest.approx(1.0, abs=1e-4)
    m = big.match(decode_jpeg(webcam_jpeg(archive / FLOWER, 2.0)[1]))
    assert m.shot_id == mirror.match(decode_jpeg(webcam_jpeg(archive / FLOWER, 2.0)[1])).shot_id
    assert m.video_id is None and m.time is None  # no catalog: the shot alone


def test_the_score_hint_tells_an_indexed_frame_from_footage_the_library_lacks(mirror, media, archive):
    """The page's words for a mirror score (web/archive.py MATCH_HINTS): a frame of an indexed clip is a
    strong match; a frame of the Sintel trailer, which the web library does not hold, is not."""
    from rereel.web.archive import match_hint

    own = mirror.match(decode_jpeg(webcam_jpeg(archive / TEARS, 1.5)[1]))
    assert match_hint(own.score, "mirror") == "strong", own.score
    for t in (8.0, 22.0):
        other = mirror.match(decode_jpeg(webcam_jpeg(media / "trailers" / "sintel_trailer_320x180.webm", t)[1]))
        assert match_hint(other.score, "mirror") != "strong", (t, other.score)
