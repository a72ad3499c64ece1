"""The demo's SLO part: a deployment slows down, its latency SLO pages, its policy drains it.

Circuit breakers catch a deployment that fails; one that only slows down is
caught by its SLO. sim-b is told (admin API) to add 800 ms to every reply;
``mini-latency`` (99% of gpt-4o-mini calls within 500 ms, per deployment)
pages within its 5 s short window, its policy drains sim-b, traffic moves to
sim-a; sim-b is healed, the page resolves and, after the policy's hold, the
drain is undone. Every step is read back from the admin API and the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai

from governd.cli.admin_client import AdminClient

SLO = "mini-latency"
SLOW = "sim-b/sim-small"
_TIMEOUT_S = 60.0


def run_slo_drill(admin: AdminClient, url: str, key: str) -> list[str]:
    """Run the drill; returns what happened, one line per step."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    lines = []
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"latency_ms": 800})
    told = time.monotonic()
    fired = _until(client, lambda: _latest(admin, "transitions", "fired"))
    lines.append(
        f"sim-b told to add 800 ms: {SLO} paged for deployment={SLOW} after "
        f"{time.monotonic() - told:.1f} s ({_burns(fired)})"
    )
    action = _until(client, lambda: _latest(admin, "actions", "taken"))
    lines.append(f"its policy took {action['action']} on {action['target']}: no new calls to it")
    for _ in range(20):
        _call(client)
    moved = _served(admin, 20)
    lines.append(
        f"the next 20 calls: {moved.get(SLOW, 0)} to sim-b, "
        f"{moved.get('sim-a/sim-small', 0)} to sim-a"
    )
    admin.call("PUT", "/admin/v1/upstreams/sim-b/faults", {"latency_ms": 0})
    healed = time.monotonic()
    _until(client, lambda: _latest(admin, "transitions", "resolved"))
    _until(client, lambda: _latest(admin, "actions", "undone"))
    lines.append(
        f"sim-b healed: the page resolved and the drain was undone {time.monotonic() - healed:.1f} s "
        "later (its 5 s window cleared, its 5 s hold passed); each step is a ledger entry"
    )
    return lines


def _call(client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "status?"}], max_tokens=16
    )


def _until(client: openai.OpenAI, found: Callable[[], Any]) -> Any:
    """Keep calls flowing (the SLO judges calls) until ``found()`` has something."""
    deadline = time.monotonic() + _TIMEOUT_S
    while not (result := found()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the SLO drill did not see its step within {_TIMEOUT_S:.0f} s")
        _call(client)
    return result


def _latest(admin: AdminClient, what: str, state: str) -> dict[str, Any] | None:
    shown = admin.call("GET", f"/admin/v1/slos/{SLO}")[what]
    return shown[0] if shown and shown[0]["state"] == state else None


def _burns(fired: dict[str, Any]) -> str:
    return ", ".join(f"{w['window_s']:g} s burn {w['burn']:.1f}" for w in fired["windows"])


def _served(admin: AdminClient, last: int) -> dict[str, int]:
    """Where the ``last`` gpt-4o-mini calls ran, by deployment."""
    rows = admin.call("GET", "/admin/v1/ledger", order="desc", limit=last, model="gpt-4o-mini")
    out: dict[str, int] = {}
    for entry in rows["entries"]:
        if entry["deployment"]:
            out[entry["deployment"]] = out.get(entry["deployment"], 0) + 1
    return out
