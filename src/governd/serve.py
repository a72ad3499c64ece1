"""Runs the ASGI app on uvicorn (uvloop + httptools), the faster server measured here."""

from __future__ import annotations

import logging

import uvicorn

from governd.config import GovernConfig
from governd.intent import create_app


def run(cfg: GovernConfig, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; the ledger is flushed on the way out."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(cfg),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
