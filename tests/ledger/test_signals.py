"""Behaviour signals of tool calls: redaction, digest, target, side-effect class."""

from __future__ import annotations

import hashlib

import orjson

from governd.config.agents import ToolConfig
from governd.ledger.signals import REDACTED, args_digest, redact, target_of, tool_signals

ARGS = {"path": "/etc/hosts", "body": {"text": "secret", "tags": ["a", "b"]}, "n": 3}


def test_values_are_redacted_unless_revealed() -> None:
    assert redact(ARGS, frozenset()) == {
        "path": REDACTED,
        "body": {"text": REDACTED, "tags": [REDACTED, REDACTED]},
        "n": REDACTED,
    }
    shown = redact(ARGS, frozenset({"path", "body.tags"}))
    assert shown == {
        "path": "/etc/hosts",
        "body": {"text": REDACTED, "tags": ["a", "b"]},
        "n": REDACTED,
    }


def test_the_digest_covers_the_full_arguments_in_any_key_order() -> None:
    reordered = {"n": 3, "body": {"tags": ["a", "b"], "text": "secret"}, "path": "/etc/hosts"}
    assert args_digest(ARGS) == args_digest(reordered)
    assert args_digest(ARGS) != args_digest({**ARGS, "n": 4})
    canonical = orjson.dumps(ARGS, option=orjson.OPT_SORT_KEYS)
    assert args_digest(ARGS) == hashlib.sha256(canonical).hexdigest()


def test_target_follows_a_dotted_path() -> None:
    assert target_of(ARGS, "path") == "/etc/hosts"
    assert target_of(ARGS, "body.tags") == '["a","b"]'
    assert target_of(ARGS, "body.missing") is None
    assert target_of(ARGS, None) is None
    assert target_of({"p": "x" * 1000}, "p") == "x" * 256


def test_side_effect_comes_from_config_or_tier_and_is_none_when_refused() -> None:
    spec = ToolConfig(target="path", reveal=["path"], side_effect="external")
    ran = tool_signals(spec, "write", ARGS, "ok")
    assert ran["side_effect"] == "external" and ran["target"] == "/etc/hosts"
    assert ran["args"]["path"] == "/etc/hosts" and ran["args"]["n"] == REDACTED
    assert tool_signals(None, "write", ARGS, "ok")["side_effect"] == "mutation"
    assert tool_signals(None, "destructive", ARGS, "failed")["side_effect"] == "irreversible"
    assert tool_signals(None, "read", ARGS, "ok")["side_effect"] == "none"
    assert tool_signals(spec, "write", ARGS, "refused")["side_effect"] == "none"
