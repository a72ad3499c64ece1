"""``create_app(config)``: the composition root, wiring the planes into one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd import tokens
from governd.clock import Clock
from governd.config import GovernConfig
from governd.errors import GovernError
from governd.intent.admin_api import AdminRoutes
from governd.intent.auth import check_admin
from governd.intent.budgets_api import BudgetRoutes
from governd.intent.http import json_response, on_govern_error, on_http_exception, on_unexpected
from governd.intent.jobs_api import JobRoutes
from governd.intent.mcp_gateway import McpGateway
from governd.intent.openai_api import OpenAIRoutes
from governd.intent.runs_api import RunRoutes
from governd.observe.gauges import BudgetGauges, live_sources
from governd.observe.metrics import CONTENT_TYPE
from governd.server.services import Services, build_jobs, build_services


def create_app(cfg: GovernConfig, clock: Clock | None = None) -> Starlette:
    """The governd ASGI application for ``cfg``."""
    services = build_services(cfg, clock)
    s = services
    gateway = McpGateway(
        config=cfg,
        keyring=s.keyring,
        tree=s.tree,
        storage=s.storage,
        clock=s.clock,
        pipeline=s.pipeline,
    )
    jobs = build_jobs(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(tokens.warm)
        for upstream in services.upstreams.values():
            await upstream.start()
        services.writer.start()
        await services.budgets.sync()
        await jobs.start()
        refresher = asyncio.create_task(budget_gauges.refresh_forever(services.budgets))
        try:
            async with gateway.sessions.run():
                yield
        finally:
            refresher.cancel()
            await jobs.aclose()
            await gateway.aclose()
            for upstream in services.upstreams.values():
                await upstream.aclose()
            await asyncio.to_thread(services.writer.close)
            await asyncio.to_thread(services.pipeline.close)
            await services.budgets.state.aclose()
            await services.pipeline.admission.limits.state.aclose()
            await services.pipeline.admission.runs.state.aclose()
            services.storage.close()

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    budget_gauges = BudgetGauges()
    services.metrics.live(
        {
            **live_sources(services.router, cfg.models, services.writer, budget_gauges),
            "governd_jobs": ("Unfinished jobs by queue and status", jobs.job_samples),
            "governd_devices_in_use": (
                "Accelerator units held by running jobs",
                jobs.unit_samples,
            ),
        }
    )

    async def metrics(request: Request) -> Response:
        if not cfg.server.public_metrics:
            key = cfg.admin_key
            check_admin(request, key.get_secret_value() if key else None)
        return Response(services.metrics.render(), media_type=CONTENT_TYPE)

    async def readyz(request: Request) -> Response:
        try:
            await asyncio.to_thread(services.storage.count)
        except Exception:
            return json_response({"status": "unavailable", "storage": "unreachable"}, 503)
        return json_response({"status": "ready", "ledger_lag": services.writer.lag})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/mcp", gateway),
        *OpenAIRoutes(
            config=cfg, keyring=s.keyring, tree=s.tree, pipeline=s.pipeline, writer=s.writer
        ).routes(),
        *(admin := _admin_routes(s)).routes(),
        *BudgetRoutes(
            budgets=s.budgets,
            keyring=s.keyring,
            tree=s.tree,
            pipeline=s.pipeline,
            admin=admin.check,
        ).routes(),
        *gateway.admin_routes(admin.check),
        *RunRoutes(
            storage=s.storage, tree=s.tree, pipeline=s.pipeline, writer=s.writer, check=admin.check
        ).routes(),
        *JobRoutes(
            config=cfg, keyring=s.keyring, tree=s.tree, jobs=jobs, check=admin.check
        ).routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: on_http_exception,
            GovernError: on_govern_error,
            Exception: on_unexpected,
        },
    )
    app.state.services = services
    return app


def _admin_routes(s: Services) -> AdminRoutes:
    return AdminRoutes(
        config=s.config,
        keyring=s.keyring,
        tree=s.tree,
        storage=s.storage,
        router=s.router,
        writer=s.writer,
        clock=s.clock,
        pipeline=s.pipeline,
    )
