"""Fuzzing the web app: every route of its OpenAPI schema through Schemathesis, and the two
WebSockets through Hypothesis, on the small library of real clips. Whatever arrives, the answer
is a response (a 4xx saying what is wrong), never a server error or a traceback.

Bounded to fit the suite's budget: a few dozen examples per route, each under a deadline.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import require_module


def need(module: str):
    return require_module(module, "the dev extra: pip install -e '.[dev]'")


schemathesis = need("schemathesis")
hypothesis = need("hypothesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from rereel.web.app import Settings, create_app  # noqa: E402

EXAMPLES = 25
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=20), derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def app(web_library, tmp_path_factory):
    empty = tmp_path_factory.mktemp("allowed")  # an --allow folder with no videos: no remake jobs start
    return create_app(Settings(library=web_library, workdir=tmp_path_factory.mktemp("fuzzwork"), allow=[empty],
                               extra_hosts=("testserver",)))


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def routes() -> list[tuple[str, str]]:
    """(method, path) of every API route, known at collection so each is a test of its own.
    (Schemathesis's own pytest loader, `from_fixture`, does not run under pytest 9.)"""
    from fastapi.routing import APIRoute

    from rereel.web import archive, editor, live

    found = [(m, r.path) for router in (archive.router, editor.router, live.router) for r in router.routes
             if isinstance(r, APIRoute) for m in sorted(r.methods)]
    return sorted(found + [("GET", "/api/health")])


def cases() -> list[tuple[str, str, str]]:
    """Valid requests for every route; invalid ones too where the route takes an input that can be invalid."""
    from rereel.web import archive, editor, live

    def spoilable(d) -> bool:  # any text is a valid path string: only other inputs can be made invalid
        return bool(d.query_params or d.body_params or any(f.field_info.annotation is not str for f in d.path_params))

    takes = {(m, r.path) for router in (archive.router, editor.router, live.router) for r in router.routes
             for m in getattr(r, "methods", ()) if spoilable(r.dependant)}
    return [(m, p, mode) for m, p in routes() for mode in ("positive", "negative") if mode == "positive" or (m, p) in takes]


def test_every_route_is_fuzzed(api_schema):
    schema_ops = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert schema_ops == set(routes())


def no_traceback(ctx, response, case):
    """A refusal names the problem in JSON `detail`; no stack trace leaks into any answer."""
    assert b"Traceback" not in response.content, f"a traceback in the answer to {case.method} {case.path}"
    if 400 <= response.status_code < 500:
        detail = json.loads(response.content).get("detail")
        assert detail, f"{response.status_code} without a detail for {case.method} {case.path}"


@pytest.mark.parametrize("method, path, mode", cases())
def test_no_route_answers_with_a_server_error(api_schema, method, path, mode):
    from schemathesis.generation.modes import GenerationMode

    operation = api_schema[path][method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    def fuzz(case):
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, no_traceback])

    fuzz()


# -- the WebSockets (not in the OpenAPI schema) ---------------------------------------------------------
JSONISH = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                       max_leaves=6)
CONTROL = st.one_of(
    st.text(max_size=60),
    st.fixed_dictionaries({}, optional={"model": JSONISH, "smooth": JSONISH}).map(json.dumps),
    JSONISH.map(json.dumps),
)


@FUZZ
@given(message=CONTROL)
def test_see_socket_answers_every_control_message(app, message):
    with TestClient(app).websocket_connect("/ws/see") as ws:
        ws.send_text(message)
        answer = ws.receive_json()
        assert "error" in answer or 0.0 <= answer["smooth"] <= 0.95, answer
        ws.send_text(json.dumps({"smooth": 0.5}))  # still there
        assert ws.receive_json()["smooth"] == 0.5


@FUZZ
@given(message=st.one_of(st.binary(max_size=2000), st.text(max_size=200)))
def test_mirror_socket_answers_every_message(app, message):
    with TestClient(app).websocket_connect("/ws/mirror") as ws:
        (ws.send_bytes if isinstance(message, bytes) else ws.send_text)(message)
        answer = ws.receive_json()
        assert "error" in answer or "shot_id" in answer, answer
