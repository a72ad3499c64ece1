"""Token counts: what a client sends is text, special-token spellings included."""

from __future__ import annotations

import pytest

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
