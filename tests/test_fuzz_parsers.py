"""Hypothesis against what users type: times, `clip@a-b` ranges, shot ids, model sizes, query
text, timecodes, upload names. Any input gives a valid parse or a clean RereelError (an HTTP 4xx
for uploads), never another exception; where a format can be written back, it reads back the same.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from conftest import require_module


def need(module: str):
    return require_module(module, "the dev extra: pip install -e '.[dev]'")


need("hypothesis")
from fastapi import HTTPException, UploadFile  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rereel.errors import RereelError  # noqa: E402
from rereel.explore.footage import parse_seconds, parse_shot_id, parse_time_range, resolve_footage  # noqa: E402
from rereel.learn.autoencoder import parse_size  # noqa: E402
from rereel.web.projects import timecode  # noqa: E402
from rereel.web.security import save_upload  # noqa: E402

FAST = settings(max_examples=300, deadline=None, database=None)
# Text near the formats, so that the parsers' corners are reached, not only their first refusal.
TIMEISH = st.text(alphabet="0123456789:.-+eEinfatx _\u0660\u0661", max_size=14)
RANGEISH = st.builds(lambda a, b, c: f"{a}@{b}-{c}", st.text(max_size=12), TIMEISH, TIMEISH)
ANY = st.one_of(st.text(max_size=40), TIMEISH, RANGEISH)


@FAST
@given(ANY)
def test_a_time_is_a_finite_non_negative_number_or_a_clean_error(text):
    try:
        value = parse_seconds(text)
    except RereelError as e:
        assert repr(text) in str(e)
        return
    assert value >= 0 and value < float("inf")


@FAST
@given(st.integers(0, 10**6), st.integers(0, 59), st.floats(0, 59.999, allow_nan=False))
def test_times_read_back(hours, minutes, seconds):
    assert parse_seconds(repr(seconds)) == seconds
    assert parse_seconds(f"{minutes}:{seconds!r}") == pytest.approx(minutes * 60 + seconds)
    assert parse_seconds(f"{hours}:{minutes:02d}:{seconds!r}") == pytest.approx(hours * 3600 + minutes * 60 + seconds)


@FAST
@given(ANY)
def test_a_range_parses_to_an_ordered_range_or_a_clean_error(text):
    try:
        parsed = parse_time_range(text)
    except RereelError:
        return
    if parsed is not None:
        path, start, end = parsed
        assert str(path) and 0 <= start and (end is None or end > start)


@FAST
@given(st.text(min_size=1, max_size=20).filter(lambda s: "\n" not in s),
       st.integers(0, 10**9), st.integers(1, 10**9))
def test_ranges_read_back(name, start_ms, length_ms):
    start, end = start_ms / 1000, (start_ms + length_ms) / 1000  # the grammar is decimal: 12.5, no exponents
    assert parse_time_range(f"{name}@{start:.3f}-{end:.3f}") == (Path(name), start, end)
    assert parse_time_range(f"{name}@{start:.3f}-") == (Path(name), start, None)
    minutes, seconds = divmod(start_ms, 60_000)
    assert parse_time_range(f"{name}@{minutes}:{seconds / 1000:06.3f}-")[1] == pytest.approx(start)


@FAST
@given(st.one_of(st.text(max_size=30), st.integers(0, 10**30).map(lambda n: f"#{n}"),
                 st.integers(0, 10**30).map(lambda n: f"shot:{n}")))
def test_shot_ids_are_sqlite_integers_or_a_clean_error(text):
    try:
        shot = parse_shot_id(text)
    except RereelError:
        return
    assert shot is None or 0 <= shot < 2**63
    if re.fullmatch(r"(shot:|#)[0-9]+", text) and int(text.split(":")[-1].lstrip("#")) < 2**63:
        assert shot == int(text.split(":")[-1].lstrip("#"))


@FAST
@given(st.one_of(st.text(max_size=20), st.builds(lambda w, sep, h: f"{w}{sep}{h}", st.integers(-10, 10**6),
                                                 st.sampled_from(["x", "X", " x ", "*"]), st.integers(-10, 10**6))))
def test_a_model_size_is_two_sides_of_16_or_more_or_a_clean_error(text):
    try:
        w, h = parse_size(text)
    except RereelError as e:
        assert repr(text) in str(e)
        return
    assert w >= 16 and h >= 16 and w % 4 == 0 and h % 4 == 0


@FAST
@given(st.integers(4, 4096).map(lambda n: 4 * n), st.integers(4, 4096).map(lambda n: 4 * n))
def test_sizes_read_back(w, h):
    assert parse_size(f"{w}x{h}") == (w, h)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANY)
def test_footage_is_a_shot_a_range_or_a_file_or_a_clean_error(text, tmp_path):
    try:
        resolve_footage(text, None)  # no catalog: shot ids refused; other text probed as files (none exist)
    except RereelError:
        pass


@FAST
@given(st.floats(0, 1e6, allow_nan=False), st.sampled_from([23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0]))
def test_timecodes_read_back_as_the_frame_they_name(seconds, fps):
    tc = timecode(seconds, fps)
    hh, mm, ss, ff = (int(x) for x in tc.split(":"))
    rate = round(fps)
    assert 0 <= mm < 60 and 0 <= ss < 60 and 0 <= ff < rate
    assert ((hh * 60 + mm) * 60 + ss) * rate + ff == round(seconds * fps)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.none(), st.text(max_size=40), st.text(max_size=10).map(lambda s: s + ".mp4")),
       data=st.binary(max_size=64))
def test_an_upload_of_any_name_is_saved_as_an_allowed_type_or_refused(name, data, tmp_path):
    allowed = frozenset({".mp4", ".webm"})
    try:
        saved = save_upload(UploadFile(io.BytesIO(data), filename=name), tmp_path / "up" / "target", 32, allowed)
    except HTTPException as e:
        assert 400 <= e.status_code < 500 and e.detail and "\n" not in e.detail.replace(repr(name), "")
        return
    assert saved.parent == tmp_path / "up" and saved.suffix in allowed and saved.read_bytes() == data
    saved.unlink()
