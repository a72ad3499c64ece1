"""Runs the ASGI app on uvicorn (uvloop + httptools), the faster server measured here."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import subprocess
import sys

import uvicorn

from governd import tokens
from governd.config import GovernConfig
from governd.observe import outages
from governd.server.app import create_app


def tune_gc() -> None:
    """Keep the cycle collector off the request path.

    Everything built at start (config, clients, libraries, the tokenizer's
    vocabulary, which is why it is loaded first) lives as long as
    the process: frozen, full collections stop walking it, which took p99 at
    32 concurrent requests from ~45 ms to ~13 ms. A larger first-generation
    threshold then makes collections rarer (about 12% less CPU per request);
    request garbage is almost all acyclic and freed by reference counting.
    Measured with bench/gateway_overhead.py.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def tune_threads() -> None:
    """Let the event loop take the GIL back from a busy thread within 0.5 ms, not 5.

    The ledger writer shares the core with the event loop; a request that
    arrives while it hashes a batch waited up to the default 5 ms switch
    interval. At 0.5 ms, p99 at one connection fell from ~4.7 to ~2.7 ms with
    req/s within 1% (../shared/bench/peers lat-c1 and tput-c32, same window).
    """
    sys.setswitchinterval(0.0005)


def run(cfg: GovernConfig, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; the ledger is flushed on the way out."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The MCP client's HTTP library logs every request at INFO: the ledger already has them.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # The pool logs a traceback for every dead connection it fails to reset: while a database
    # is down that is thousands. The ledger writer says it once, then every 30 s.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    outages.install()
    migrate_apart(cfg.storage)
    app = create_app(cfg)
    tokens.warm()
    tune_gc()
    tune_threads()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # governd is the edge: no proxy in front whose headers to trust.
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def migrate_apart(url: str) -> None:
    """Bring the schema to the head in a child process, so that the server never holds alembic.

    Whatever fails there is left to the server's own storage, which migrates
    in process and says what is wrong (an unreachable database, ...).
    """
    env = {**os.environ, "GOVERND_MIGRATE_URL": url}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [sys.executable, "-m", "governd.ledger.migrate"],
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
