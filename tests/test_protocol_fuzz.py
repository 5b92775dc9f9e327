"""Property-based fuzzing of the protocol parser (hypothesis, derandomized: same examples every run).

For any input -- random text or bytes, or a valid frame mutated (fields dropped, added,
renamed, retyped; huge numbers, NaN/Infinity, deep nesting, lone surrogates, long strings)
-- ``parse_client_frame`` returns a valid frame or raises ``ProtocolError`` with a
documented code, never another exception; valid frames round-trip; oversized frames get 1009.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assist.protocol import (
    CLOSE_MESSAGE_TOO_BIG,
    MAX_TEXT_CHARS,
    EndFrame,
    ProtocolError,
    StartFrame,
    UtteranceFrame,
    parse_client_frame,
)

# The parser's codes as documented in docs/protocol.md (the others come from call state).
PARSER_CODES = {
    "invalid_json",
    "not_an_object",
    "missing_field",
    "invalid_field",
    "unknown_type",
    "binary_not_supported",
    "frame_too_large",
}
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

identifiers = st.from_regex(r"\A[A-Za-z0-9._:@\-]{1,40}\Z")
lone_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
any_text = st.one_of(
    st.text(max_size=60),
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=20), lone_surrogate, st.text(max_size=20)),
)
words = st.text(min_size=1, max_size=200)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e9)

start_frames = st.fixed_dictionaries(
    {"type": st.just("start"), "agent_id": identifiers},
    optional={
        "customer": st.fixed_dictionaries(
            {}, optional={"id": identifiers, "name": words.map(lambda s: s[:200]), "clv": finite}
        ),
        "language": st.sampled_from(["en", "fr", "es-MX"]),
        "team": identifiers,
        "started_at": finite,
    },
)
utterance_frames = st.fixed_dictionaries(
    {
        "type": st.just("utterance"),
        "speaker": st.sampled_from(["customer", "agent"]),
        "text": words,
        "timestamp": finite,
    },
    optional={"is_final": st.booleans(), "utterance_id": identifiers},
)
end_frames = st.fixed_dictionaries(
    {"type": st.just("end")}, optional={"reason": words.map(lambda s: s[:200])}
)
valid_frames = st.one_of(start_frames, utterance_frames, end_frames)

weird_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(10**300),
    st.floats(),  # NaN, +/-Infinity included
    any_text,
    st.text(min_size=MAX_TEXT_CHARS, max_size=MAX_TEXT_CHARS + 50, alphabet="ab "),
    st.recursive(st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3), max_leaves=8),
    st.integers(min_value=2, max_value=300).map(lambda n: _nested(n)),
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value} if depth % 2 else [value]
    return value


def check(data: str | bytes, **kwargs: Any) -> StartFrame | UtteranceFrame | EndFrame | None:
    """The property: a frame, or a ProtocolError with a documented code -- nothing else."""
    try:
        return parse_client_frame(data, **kwargs)
    except ProtocolError as error:
        assert error.code in PARSER_CODES, error.code
        assert error.close_code in (None, CLOSE_MESSAGE_TOO_BIG)
        assert (error.close_code is not None) == (error.code == "frame_too_large")
        return None


def dumps(frame: Any) -> str:
    return json.dumps(frame, ensure_ascii=False, allow_nan=True)


@FUZZ
@given(st.one_of(st.binary(max_size=400), any_text, st.text(max_size=400)))
def test_random_input(data: str | bytes) -> None:
    check(data)


@FUZZ
@given(valid_frames)
def test_valid_frames_parse_and_round_trip(frame: dict[str, Any]) -> None:
    parsed = check(dumps(frame))
    if frame["type"] in ("utterance", "end") and not str(frame.get("text", frame.get("reason", "x"))).strip():
        return  # whitespace-only text is stripped to nothing: a coded error is the right answer
    assert parsed is not None, frame
    again = parse_client_frame(parsed.model_dump_json())
    assert again == parsed
    assert parse_client_frame(dumps(parsed.model_dump(mode="json"))) == parsed


@FUZZ
@given(valid_frames, st.data())
def test_mutated_frames(frame: dict[str, Any], data: st.DataObject) -> None:
    mutation = data.draw(st.sampled_from(["drop", "extra", "rename", "retype", "truncate", "wrap"]))
    keys = sorted(frame)
    if mutation == "drop":
        frame.pop(data.draw(st.sampled_from(keys)))
    elif mutation == "extra":
        frame[data.draw(any_text)] = data.draw(weird_values)
    elif mutation == "rename":
        key = data.draw(st.sampled_from(keys))
        frame[data.draw(any_text)] = frame.pop(key)
    elif mutation == "retype":
        frame[data.draw(st.sampled_from([*keys, "customer", "started_at", "is_final"]))] = data.draw(
            weird_values
        )
    text = dumps(frame)
    if mutation == "truncate":
        text = text[: data.draw(st.integers(0, max(0, len(text) - 1)))]
    elif mutation == "wrap":
        text = data.draw(st.sampled_from(["[{}]", '{{"frame": {}}}', "{}{}", "\ufeff{}"])).replace(
            "{}", text, 1
        )
    parsed = check(text)
    if parsed is not None:  # whatever got through is clean: finite numbers, encodable text
        json.dumps(parsed.model_dump(mode="json"), ensure_ascii=False, allow_nan=False).encode("utf-8")


@FUZZ
@given(st.integers(1, 40).map(lambda n: n * 1000), st.sampled_from(["[", '{"a":', '[{"x":']))
def test_deep_nesting(depth: int, opener: str) -> None:
    assert check(opener * depth) is None


@FUZZ
@given(st.integers(64, 4096), st.sampled_from(["a", "é", "😀"]))
def test_oversized_frames_close_with_1009(limit: int, char: str) -> None:
    frame = dumps({"type": "utterance", "speaker": "agent", "text": char * limit, "timestamp": 1})
    try:
        parse_client_frame(frame, max_bytes=limit)
    except ProtocolError as error:
        assert error.code == "frame_too_large" and error.close_code == CLOSE_MESSAGE_TOO_BIG
    else:
        raise AssertionError("an oversized frame was accepted")


def test_non_json_numbers_and_surrogates_are_refused() -> None:
    """NaN/Infinity anywhere and lone surrogates are refused with a code (they would break
    clients' JSON.parse or the UTF-8 encoder later)."""
    cases = [
        '{"type":"start","agent_id":"a","started_at":Infinity}',
        '{"type":"start","agent_id":"a","customer":{"clv":1e400}}',
        '{"type":"start","agent_id":"a","customer":{"notes":NaN}}',
        '{"type":"start","agent_id":"a","customer":{"x":[[[[[1]]]]]}}',
        '{"type":"utterance","speaker":"agent","text":"a\\ud800b","timestamp":1}',
        '{"type":"utterance","speaker":"agent","text":"a\ud800b","timestamp":1}',
    ]
    for case in cases:
        assert check(case) is None, case
    emoji = check('{"type":"utterance","speaker":"agent","text":"a\\ud83d\\ude00b","timestamp":1}')
    assert isinstance(emoji, UtteranceFrame) and emoji.text == "a😀b"


async def test_listener_sockets_answer_deeply_nested_json(shared_server: Any) -> None:
    """Regression (bench/fuzz_frames.py): '[' * 5000 on the agent or supervisor socket raised
    RecursionError in the reader, which dropped the socket without a close frame (1006)."""
    import websockets

    for path in ("/v1/agents/fuzz-deep", "/v1/supervisor"):
        async with websockets.connect(f"{shared_server.ws}{path}") as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            for frame in ("[" * 5000, '{"a":' * 3000):
                await ws.send(frame)
                assert json.loads(await ws.recv())["code"] == "invalid_json"
            await ws.send('{"type":"ping"}')
            assert json.loads(await ws.recv()) == {"type": "pong"}
