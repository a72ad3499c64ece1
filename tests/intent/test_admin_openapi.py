"""The admin API's OpenAPI document names every admin route the server has, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from governd.config import parse_config
from governd.intent.admin_openapi import OPERATIONS, document
from governd.server.app import create_app


def test_the_document_names_every_admin_route_and_only_those(tmp_path: Path) -> None:
    cfg = parse_config("principals: {org: acme}").model_copy(
        update={"storage": f"sqlite:///{tmp_path / 'ledger.db'}"}
    )
    app = create_app(cfg)
    served = {
        (method, re.sub(r"\{(\w+):path\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/admin/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_the_document_is_openapi_3_1_with_resolvable_references() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    text = str(doc)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in doc["components"]["schemas"], name
    assert "#/$defs/" not in text
    for path, ops in doc["paths"].items():
        for op in ops.values():
            named = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), path
