"""Fuzz governd from OpenAPI documents (schemathesis): OpenAI's, and governd's own admin API.

Starts ``governd serve`` over sim deployments named as the document's
examples name models, runs schemathesis against ``/v1`` with a key (OpenAI's
document) and against ``/admin/v1`` with the admin key (the document governd
serves at ``/admin/v1/openapi.json``), then checks what the issue asks: no
response >= 500, every error in the envelope, and a ledger that still
verifies. Prints a table and exits 1 on a failure.

    pip install -e '.[fuzz]'
    python bench/fuzz.py [--spec ../shared/external/openai-openapi.yaml] [--examples 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from governd.cli.admin_client import AdminClient
from governd.server.launcher import governd_server

ADMIN = "adm-fuzz"
MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-ada-002",
    "o3-mini",
    "VAR_chat_model_id",
    "VAR_completion_model_id",
    "VAR_embedding_model_id",
]
PATHS = r"^/(chat/completions|completions|embeddings|models|models/\{model\})$"


def config() -> str:
    models = "\n".join(
        f"  {m}: {{deployments: [{{upstream: sim, model: sim}}]"
        + (", kind: embedding" if "embedding" in m else "")
        + "}"
        for m in MODELS
    )
    return f"""
principals: {{org: acme, teams: {{fuzz: {{}}}}}}
upstreams: {{sim: {{kind: sim, prefill_tps: 10000000, decode_tps: 1000000, max_concurrency: 256}}}}
server: {{auth_failures_per_minute: 100000}}
ledger: {{flush_ms: 5}}
models:
{models}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--spec", default=str(here.parent / "shared/external/openai-openapi.yaml"))
    parser.add_argument("--examples", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "governd.yaml"
        cfg.write_text(config())
        with governd_server(Path(tmp), cfg, ADMIN) as served:
            admin = AdminClient(served.url, ADMIN)
            key = admin.call("POST", "/admin/v1/keys", {"principal": "fuzz"})["key"]
            openai_doc = [
                str(Path(args.spec).resolve()),
                "--url",
                served.url + "/v1",
                "--include-path-regex",
                PATHS,
                "--exclude-method",
                "DELETE",
                "--exclude-operation-id",
                "listChatCompletions",
                "-H",
                f"Authorization: Bearer {key}",
            ]
            admin_doc = Path(tmp) / "admin-openapi.json"
            admin_doc.write_text(json.dumps(admin.call("GET", "/admin/v1/openapi.json")))
            # Revoking keys would end the run's own access to nothing (the admin key is not
            # one), but would turn the rest of the fuzzing into 401s: keys are left alone.
            admin_run = [
                str(admin_doc),
                "--url",
                served.url,
                "--exclude-operation-id",
                "delete/keys/{key_id}",
                "-H",
                f"Authorization: Bearer {ADMIN}",
            ]
            rows = {
                "OpenAI /v1": _fuzz(openai_doc, Path(tmp) / "openai", args.examples),
                "admin /admin/v1": _fuzz(admin_run, Path(tmp) / "admin", args.examples),
            }
            log = served.output()
        verify = subprocess.run(
            [sys.executable, "-m", "governd", "audit", "verify", "--json"],
            env={**os.environ, "GOVERND_STORAGE": f"sqlite:///{Path(tmp) / 'ledger.db'}"},
            capture_output=True,
            text=True,
        )
    intact = verify.returncode == 0 and json.loads(verify.stdout)["intact"]
    print("| document | replies | >= 500 | errors outside the envelope |")
    print("|---|--:|--:|--:|")
    failed = False
    for name, (statuses, bad, _) in rows.items():
        five = sum(n for st, n in statuses.items() if st >= 500)
        failed |= five > 0 or bad > 0
        print(f"| {name} | {sum(statuses.values())} | {five} | {bad} |")
    print(f"\ntracebacks in the log: {log.count('Traceback')}; ledger verifies: {intact}")
    for name, (statuses, _, out) in rows.items():
        print(f"\n{name} statuses:", dict(sorted(statuses.items())))
        print("\n".join(out.splitlines()[-60:]))
    return 0 if not failed and intact else 1


def _fuzz(target: list[str], report: Path, examples: int) -> tuple[Counter[int], int, str]:
    """Run schemathesis on ``target`` (document, URL, headers...): statuses, bad envelopes, output."""
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        *target,
        "--phases",
        "examples,coverage,fuzzing",
        "--exclude-checks",
        "status_code_conformance",
        "--max-examples",
        str(examples),
        "--report",
        "har",
        "--report-dir",
        str(report),
    ]
    # In the run's folder: schemathesis keeps a cache where it runs.
    run = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, cwd=report.parent)
    statuses, bad = _replies(report)
    return statuses, bad, run.stdout


def _replies(report: Path) -> tuple[Counter[int], int]:
    """Status counts, and error replies whose body is not the OpenAI envelope."""
    statuses: Counter[int] = Counter()
    bad = 0
    for har in report.glob("har-*.json"):
        for e in json.loads(har.read_text())["log"]["entries"]:
            status = e["response"]["status"]
            statuses[status] += 1
            if status >= 400:
                try:
                    err = json.loads(e["response"]["content"].get("text") or "")["error"]
                    ok = {"message", "type", "code", "param"} <= set(err)
                except (ValueError, KeyError, TypeError):
                    ok = False
                bad += not ok
    return statuses, bad


if __name__ == "__main__":
    sys.exit(main())
