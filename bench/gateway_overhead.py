"""Gateway overhead: direct-to-upstream vs through governd, streaming and not, c=1 and c=32.

Usage: python bench/gateway_overhead.py [--seconds 8] [--delay-ms 20]

governd runs pinned to CPU 0; the upstream (governd's fake OpenAI server) and
the load generator (wrk, ``apt-get install wrk``) share CPU 1. Ratios within
one run are what to read: absolute numbers move with the machine's load.
The ``delay`` rows add a fixed upstream latency, so ``+p50`` there is the
unloaded overhead a client sees. Prints a markdown table and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from governd.server.launcher import free_port, governd_server, serve_process

HERE = Path(__file__).resolve().parent
CONFIG = """
principals: {{org: bench, teams: {{bench: {team}}}}}
upstreams: {{fake: {{kind: openai, base_url: "{url}", api_key: sk-bench}}}}
ledger: {{durability: {durability}}}
models:
  fast: {{deployments: [{{upstream: fake, model: ok}}], pricing: {{input: 0.15, output: 0.6}}}}
  delayed: {{deployments: [{{upstream: fake, model: "slow:{delay}"}}], pricing: {{input: 0.15, output: 0.6}}}}
{policies}
"""
# Governance on: budgets on two levels, rate limits far above the load, 20 CEL policies.
GOVERNED_TEAM = (
    "{budgets: [{unit: usd, period: day, limit: 1000000}, {unit: tokens, period: hour, limit: 100000000000}],"
    " limits: {rpm: 100000000, tpm: 100000000000, concurrency: 100000}, max_tokens: 4096}"
)


def policies_yaml() -> str:
    from decision import CONDITIONS  # bench/ is on the path when run as a script

    lines = ["policies:"]
    for i in range(20):
        lines.append(
            f"  - {{id: p{i}, when: '{CONDITIONS[i % len(CONDITIONS)]}', effect: deny, mode: shadow}}"
        )
    return "\n".join(lines)


def wrk(
    url: str, model: str, conc: int, seconds: int, stream: bool, key: str | None
) -> dict[str, float]:
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "chat.lua"),
        url + "/chat/completions",
    ]
    if key:
        cmd[4:4] = ["-H", f"Authorization: Bearer {key}"]
    env = {**os.environ, "STREAM": "1" if stream else "0", "MODEL": model}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT")), "")
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])} or {"rps": 0.0}


def scenarios(delay_ms: int) -> list[tuple[str, str, str, int, bool]]:
    """(name, direct model, governd alias, concurrency, stream)."""
    rows = [
        ("non-stream c1", "ok", "fast", 1, False),
        ("non-stream c32", "ok", "fast", 32, False),
        ("stream c1", "ok", "fast", 1, True),
        ("stream c32", "ok", "fast", 32, True),
    ]
    if delay_ms:
        slow = f"slow:{delay_ms / 1000}"
        rows += [
            (f"delay{delay_ms} c1", slow, "delayed", 1, False),
            (f"delay{delay_ms} c32", slow, "delayed", 32, False),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--durability", choices=["batched", "strict"], default="batched")
    parser.add_argument(
        "--governance",
        choices=["off", "on", "both"],
        default="both",
        help="on: budgets, rate limits and 20 policies; both: one after the other, same upstream",
    )
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        fake_args = ["governd.testing.fake_upstream", "--port", str(port)]
        with serve_process(
            fake_args, "/v1/models", port, tmp / "fake.log", prefix=["taskset", "-c", "1"]
        ) as fake:
            modes = ["off", "on"] if args.governance == "both" else [args.governance]
            for mode in modes:
                _print(
                    measure(tmp / mode, fake.url + "/v1", args, governed=mode == "on"), args, mode
                )


def measure(
    tmp: Path, direct: str, args: argparse.Namespace, governed: bool
) -> list[tuple[str, dict[str, float], dict[str, float]]]:
    """Every scenario, direct and through one governd."""
    tmp.mkdir()
    cfg = tmp / "governd.yaml"
    cfg.write_text(
        CONFIG.format(
            url=direct,
            delay=args.delay_ms / 1000,
            durability=args.durability,
            team=GOVERNED_TEAM if governed else "{}",
            policies=policies_yaml() if governed else "",
        )
    )
    rows = []
    with governd_server(tmp, cfg, "adm-bench", prefix=["taskset", "-c", "0"]) as gw:
        key = _key(gw.url)
        for name, model, alias, conc, stream in scenarios(args.delay_ms):
            wrk(gw.url + "/v1", alias, 8, 2, stream, key)  # warm-up
            d = wrk(direct, model, conc, args.seconds, stream, None)
            g = wrk(gw.url + "/v1", alias, conc, args.seconds, stream, key)
            rows.append((name, d, g))
    return rows


def _key(url: str) -> str:
    req = urllib.request.Request(
        url + "/admin/v1/keys",
        data=b'{"principal": "bench"}',
        method="POST",
        headers={"authorization": "Bearer adm-bench", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        return str(json.loads(resp.read())["key"])


def _print(
    rows: list[tuple[str, dict[str, float], dict[str, float]]], args: argparse.Namespace, mode: str
) -> None:
    print(
        f"\ngovernance {mode} ({args.seconds} s per cell, ledger {args.durability}; "
        "governd on CPU 0, fake upstream + wrk on CPU 1)\n"
    )
    print(
        "| scenario | direct req/s | governd req/s | ratio | direct p50 / p99 ms | governd p50 / p99 ms | +p50 ms | +p99 ms | bad |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, d, g in rows:
        ratio = g["rps"] / d["rps"] if d.get("rps") else 0.0
        print(
            f"| {name} | {d['rps']:,.0f} | {g['rps']:,.0f} | {ratio:.2f} | "
            f"{d.get('p50_ms', 0):.2f} / {d.get('p99_ms', 0):.2f} | {g.get('p50_ms', 0):.2f} / {g.get('p99_ms', 0):.2f} | "
            f"{g.get('p50_ms', 0) - d.get('p50_ms', 0):+.2f} | {g.get('p99_ms', 0) - d.get('p99_ms', 0):+.2f} | "
            f"{int(d.get('bad', 0) + g.get('bad', 0) + d.get('errors', 0) + g.get('errors', 0))} |"
        )


if __name__ == "__main__":
    main()
