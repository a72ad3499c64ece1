"""Token counts: what a client sends is text, special-token spellings included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governd import tokens


@pytest.mark.parametrize("special", ["<|endoftext|>", "<|endofprompt|>", "<|im_start|>"])
def test_a_special_tokens_spelling_is_counted_as_text(special: str) -> None:
    n = tokens.count(f"say {special} please")
    assert n > tokens.count("say  please"), "counted, never refused"
    assert tokens.decode(tokens.encode(special)) == special


def test_messages_with_special_spellings_are_counted() -> None:
    messages = [{"role": "user", "content": "<|endoftext|>"}]
    assert tokens.count_messages(messages) > tokens.count_messages(
        [{"role": "user", "content": ""}]
    )


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_counting_bytes_never_counts_fewer_than_o200k(text: str) -> None:
    """``tokenizer: bytes`` keeps holds bounds: never under the real tokenizer's count."""
    exact = tokens.count(text)
    tokens.use("bytes")
    try:
        assert tokens.count(text) >= exact
        assert tokens.decode(tokens.encode(text)) == text
    finally:
        tokens.use(tokens.ENCODING)


def test_an_unknown_tokenizer_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokens.use("sentencepiece")
