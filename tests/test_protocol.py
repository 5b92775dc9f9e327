"""Protocol v1 parsing is pure: bytes in, frames or ProtocolError out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assist.protocol import (
    CLOSE_MESSAGE_TOO_BIG,
    EndFrame,
    ProtocolError,
    StartFrame,
    UtteranceFrame,
    json_schemas,
    parse_client_frame,
)


def error_code(data: str | bytes, **kwargs: int) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(data, **kwargs)
    return info.value.code


def test_start_frame_with_profile() -> None:
    """A start frame carries the agent and an optional caller profile."""
    frame = parse_client_frame(
        '{"type":"start","agent_id":"agent-7","customer":{"id":"c1","tier":"gold","clv":1200}}'
    )
    assert isinstance(frame, StartFrame)
    assert frame.agent_id == "agent-7" and frame.customer.tier == "gold" and frame.language == "en"


def test_utterance_defaults_to_final() -> None:
    """is_final defaults to true and utterance_id is optional."""
    frame = parse_client_frame('{"type":"utterance","speaker":"customer","text":"hi","timestamp":1.5}')
    assert isinstance(frame, UtteranceFrame) and frame.is_final and frame.utterance_id is None


def test_end_frame() -> None:
    """An end frame needs nothing but its type."""
    assert isinstance(parse_client_frame('{"type":"end"}'), EndFrame)


def test_unknown_fields_are_ignored() -> None:
    """Newer clients may add fields without breaking a v1 server."""
    frame = parse_client_frame('{"type":"end","future_field":1}')
    assert isinstance(frame, EndFrame)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("not json", "invalid_json"),
        ("[1,2]", "not_an_object"),
        ('{"speaker":"agent"}', "missing_field"),
        ('{"type":"dance"}', "unknown_type"),
        ('{"type":7}', "unknown_type"),
        ('{"type":"start"}', "missing_field"),
        ('{"type":"utterance","speaker":"customer","timestamp":1}', "missing_field"),
        ('{"type":"utterance","speaker":"robot","text":"x","timestamp":1}', "invalid_field"),
        ('{"type":"utterance","speaker":"agent","text":"x","timestamp":-1}', "invalid_field"),
        ('{"type":"utterance","speaker":"agent","text":"","timestamp":1}', "invalid_field"),
        ('{"type":"utterance","speaker":"agent","text":"x","timestamp":"soon"}', "invalid_field"),
        ('{"type":"start","agent_id":"bad id with spaces"}', "invalid_field"),
        (b'{"type":"end"}', "binary_not_supported"),
    ],
)
def test_malformed_frames_have_stable_codes(data: str | bytes, code: str) -> None:
    """Every malformed frame maps to a documented error code."""
    assert error_code(data) == code


def test_missing_field_names_the_field() -> None:
    """The error says which field is missing."""
    with pytest.raises(ProtocolError) as info:
        parse_client_frame('{"type":"utterance","speaker":"customer","timestamp":1}')
    assert info.value.field == "text"
    assert info.value.to_frame("u-1") == {
        "type": "error",
        "code": "missing_field",
        "message": "missing required field 'text'",
        "field": "text",
        "utterance_id": "u-1",
    }


def test_non_finite_timestamp_rejected() -> None:
    """NaN and infinity are not call times."""
    assert error_code('{"type":"utterance","speaker":"agent","text":"x","timestamp":NaN}') == "invalid_field"
    assert (
        error_code('{"type":"utterance","speaker":"agent","text":"x","timestamp":Infinity}')
        == "invalid_field"
    )


def test_oversized_frame_closes_with_1009() -> None:
    """Frames over the limit (counted in UTF-8 bytes) must close the connection with 1009."""
    text = json.dumps(
        {"type": "utterance", "speaker": "agent", "text": "é" * 600, "timestamp": 1}, ensure_ascii=False
    )
    assert len(text) < 1024 < len(text.encode())
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(text, max_bytes=1024)
    assert info.value.code == "frame_too_large" and info.value.close_code == CLOSE_MESSAGE_TOO_BIG


def test_every_message_has_a_schema() -> None:
    """docs/protocol.md documents a JSON Schema for each message type."""
    schemas = json_schemas()
    for name in (
        "start",
        "utterance",
        "end",
        "assist",
        "alert",
        "error",
        "snapshot",
        "transcript",
        "compliance",
    ):
        assert schemas[name]["type"] == "object"
    assert "utterance_id" in schemas["assist"]["properties"]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_parser_never_crashes_on_arbitrary_input(data: str | bytes) -> None:
    """Any input yields a frame or a ProtocolError, never another exception."""
    try:
        parse_client_frame(data)
    except ProtocolError as error:
        assert error.code


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["start", "utterance", "end", "other"])},
        optional={
            "agent_id": json_values,
            "speaker": st.sampled_from(["customer", "agent", "x"]) | json_values,
            "text": json_values,
            "timestamp": json_values,
            "is_final": json_values,
            "utterance_id": json_values,
            "customer": json_values,
        },
    )
)
def test_parser_on_structured_garbage(frame: dict[str, object]) -> None:
    """Frames that look almost right still produce a frame or a coded ProtocolError."""
    try:
        parse_client_frame(json.dumps(frame))
    except ProtocolError as error:
        assert error.code in {"missing_field", "invalid_field", "unknown_type"}


def test_protocol_doc_schemas_are_current() -> None:
    """docs/protocol.md carries the schemas generated from the code (run
    `callassist protocol schema --update-docs` after changing a message)."""
    from server.protocol_docs import DOC, render

    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text
