"""Usage metering of streams: events split anywhere, CRLF, the hidden usage chunk, counting."""

from __future__ import annotations

import orjson
import pytest

from governd import tokens
from governd.errors import UpstreamError
from governd.execution.usage import StreamMeter, reply_usage


def ev(data: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


CONTENT = [
    ev({"choices": [{"index": 0, "delta": {"content": w}}]}) for w in ("Hello", " world", " again")
]
USAGE = ev(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    }
)
STREAM = b"".join(CONTENT) + USAGE + b"data: [DONE]\n\n"


def run(meter: StreamMeter, data: bytes, size: int) -> bytes:
    out = b"".join(meter.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + meter.tail()


@pytest.mark.parametrize("size", [1, 3, 17, 64, len(STREAM)])
def test_any_chunking_forwards_whole_events_and_finds_usage(size: int) -> None:
    meter = StreamMeter(forward_usage=True, prompt_tokens=lambda: 0)
    assert run(meter, STREAM, size) == STREAM
    usage = meter.result()
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens, usage.source) == (
        7,
        2,
        3,
        "upstream",
    )
    assert meter.done


@pytest.mark.parametrize("size", [1, 5, len(STREAM)])
def test_usage_chunk_is_hidden_when_the_client_did_not_ask(size: int) -> None:
    meter = StreamMeter(forward_usage=False, prompt_tokens=lambda: 0)
    out = run(meter, STREAM, size)
    assert out == b"".join(CONTENT) + b"data: [DONE]\n\n"
    assert meter.result().output_tokens == 3


def test_crlf_streams_are_understood() -> None:
    meter = StreamMeter(forward_usage=True, prompt_tokens=lambda: 0)
    out = run(meter, STREAM.replace(b"\n", b"\r\n"), 7)
    assert out == STREAM and meter.result().source == "upstream"


def test_without_usage_the_streamed_text_is_counted() -> None:
    meter = StreamMeter(forward_usage=True, prompt_tokens=lambda: 11)
    run(meter, b"".join(CONTENT[:2]), 4)
    usage = meter.result()
    assert not meter.done
    assert (usage.input_tokens, usage.output_tokens, usage.source) == (
        11,
        tokens.count("Hello world"),
        "counted",
    )


def test_usage_chunk_with_choices_is_kept() -> None:
    # Some servers put usage on the last content chunk; it must still reach the client.
    last = ev(
        {
            "choices": [{"index": 0, "delta": {"content": "!"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        }
    )
    meter = StreamMeter(forward_usage=False, prompt_tokens=lambda: 0)
    assert run(meter, last, 5) == last
    assert meter.result().source == "upstream"


REPLY = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"}}]}


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 4, "completion_tokens": 2}, (4, 0, 2, "upstream")),
        (
            {
                "prompt_tokens": 4,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 3},
            },
            (4, 3, 2, "upstream"),
        ),
        (None, (7, 0, 2, "counted")),  # no usage: the reply's text is counted
        ({"prompt_tokens": "4", "completion_tokens": "2"}, (7, 0, 2, "counted")),
        ({"prompt_tokens": 4, "completion_tokens": "lots"}, (7, 0, 2, "counted")),
        ({"prompt_tokens": 4, "completion_tokens": -1}, (7, 0, 2, "counted")),
        ({"prompt_tokens": 4.5, "completion_tokens": 2}, (7, 0, 2, "counted")),
        ({"prompt_tokens": True, "completion_tokens": 2}, (7, 0, 2, "counted")),
    ],
)
def test_a_reply_usage_is_taken_only_when_its_counts_are_counts(
    usage: dict[str, object] | None, expected: tuple[int, int, int, str]
) -> None:
    body = orjson.dumps({**REPLY, "usage": usage})
    found = reply_usage(body, "up", lambda: 7)
    assert (found.input_tokens, found.cached_tokens, found.output_tokens, found.source) == expected


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b""])
def test_a_reply_that_is_not_a_json_object_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="upstream up sent a reply that is not a JSON object"):
        reply_usage(body, "up", lambda: 7)
