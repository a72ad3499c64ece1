"""``governd explain PRINCIPAL``: what a principal may do, spend and risk, and where each comes from."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from governd.cli.common import admin, budget_left, emit, remote, when
from governd.durations import format_duration


@click.command()
@click.argument("principal")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@remote
def explain(url: str, admin_key: str | None, principal: str, as_json: bool) -> None:
    """Explain PRINCIPAL (TEAM[/PROJECT], a key id, or `self` with a governd key as --admin-key)."""
    out = admin(url, admin_key).call("GET", f"/admin/v1/explain/{quote(principal, safe='/')}")
    if as_json:
        emit(out)
        return
    for line in render(out):
        click.echo(line)


def render(out: dict[str, Any]) -> list[str]:
    """The explanation as the lines a person reads, section by section."""
    op, cost, risk = out["operating"], out["cost"], out["risk"]
    who = out["principal"] + (f" (key {out['key']})" if out["key"] else "")
    lines = [who, "", "operating"]
    for m in op["models"]:
        now = []
        if m["drained"]:
            now.append(f"drained: {', '.join(m['drained'])}")
        if m["degraded_to"]:
            now.append(f"served by {m['degraded_to']}")
        if m["shed"]:
            now.append(f"sheds {', '.join(m['shed'])}")
        extra = f"  NOW {'; '.join(now)}" if now else ""
        lines.append(
            f"  model {m['model']:<20} on {', '.join(m['deployments'])}{extra}  [{m['from']}]"
        )
    p = op["priority"]
    lowered = f" -> {p['now']} by {p['lowered_by']}" if p["lowered_by"] else ""
    lines.append(f"  priority {p['value']}{lowered}  [{p['from']}]")
    if op["max_tokens"]["value"]:
        lines.append(f"  max_tokens {op['max_tokens']['value']}  [{op['max_tokens']['from']}]")
    for r in op["rate_limits"]:
        parts = [f"{k} {r[k]}" for k in ("rpm", "tpm", "concurrency") if r[k]]
        lines.append(f"  rate limit on {r['node']}: {', '.join(parts)}  [{r['from']}]")
    tools = op["tools"]
    lines.append(
        f"  tools {', '.join(tools['allowed']) if tools['allowed'] else 'all'}  [{tools['from']}]"
    )
    for q in op["queues"]:
        lines.append(f"  queue {q['queue']}  [{q['from']}]")
    lines += ["", "cost"]
    for b in cost["budgets"]:
        f = b["forecast"]
        ahead = ""
        if f and f["exhausts_at"]:
            ahead = f"  runs out {when(f['exhausts_at'])}" + (" (EARLY)" if f["early"] else "")
        if b.get("overage"):
            ahead += f"  of which {b['overage']:.4g} OVERBILLED by an upstream past its bound"
        lines.append(
            f"  {b['node']} {b['unit']}/{b['period']}: {b['spent']:.4g} spent + {b['reserved']:.4g} "
            f"held of {b['limit']:.4g} ({b['left']:.4g} left){ahead}  [{b['from']}]"
        )
    lines += ["", "risk"]
    for pol in risk["policies"]:
        lines.append(
            f"  policy {pol['id']}: {pol['effect']} ({pol['mode']}) {pol['applies']}  [{pol['from']}]"
        )
    limits = {k: v for k, v in risk["run_limits"].items() if k != "from" and v is not None}
    if limits:
        lines.append(f"  run limits {', '.join(f'{k} {v}' for k, v in limits.items())}")
    for lv in risk["risk_levels"]:
        lines.append(f"  risk level {lv['name']} at {lv['at']:g}  [{lv['from']}]")
    for tier, t in risk["tightened_tiers"].items():
        lines.append(f"  NOW {tier} tools: {t['effect']} by {t['from']}")
    lines += ["", "slos"]
    for slo in out["slos"]:
        lines.append(
            f"  {slo['name']} {slo['objective']:g}% over {format_duration(slo['window_s'])}  [{slo['from']}]"
        )
        for g in slo["groups"]:
            group = " ".join(f"{k}={v}" for k, v in g["group"].items()) or "(all)"
            firing = f"  FIRING {', '.join(g['firing'])}" if g["firing"] else ""
            lines.append(f"    {group}: {budget_left(g['remaining'])}{firing}")
        for pol in slo["policies"]:
            lines.append(
                f"    on {pol['when']}: {pol['do']} {pol['target'] or '(the burning group)'}  [{pol['from']}]"
            )
    if out["overrides"]:
        lines += ["", "in force now"]
        lines += [f"  {o['describe']}  [{o['from']}]" for o in out["overrides"]]
    return lines
