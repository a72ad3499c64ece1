"""Shared fixtures: a fake upstream process (the outside world) and helpers."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governd.launcher import free_port, serve_process


class FakeUpstreamProc:
    """Handle on a running ``governd.testing.fake_upstream``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base_url = url + "/v1"

    def requests(self) -> dict[str, Any]:
        """Counts per model and the last body it received."""
        with urllib.request.urlopen(self.url + "/control/requests") as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def count(self, model: str) -> int:
        """How many requests ``model`` got."""
        return int(self.requests()["count"].get(model, 0))


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstreamProc]:
    """A fake OpenAI-compatible server in its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("fake") / "fake.log"
    args = ["governd.testing.fake_upstream", "--port", str(port)]
    with serve_process(args, "/v1/models", port, log) as served:
        yield FakeUpstreamProc(served.url)


def write_yaml(path: Path, text: str) -> Path:
    """Write a config file and return its path."""
    path.write_text(text)
    return path
