"""``create_app(config)``: wires the planes together into one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd import tokens
from governd.clock import Clock, SystemClock
from governd.config import GovernConfig
from governd.errors import GovernError
from governd.execution import Router, build_upstreams
from governd.execution.executors.choose import executor_for
from governd.execution.executors.nvml import discover
from governd.execution.upstream import Upstream
from governd.governance import KeyRing, PrincipalTree
from governd.governance.admission import Admission
from governd.governance.approvals import Approvals
from governd.governance.budget_setup import load_budgets, run_state
from governd.governance.budgets import Budgets
from governd.governance.runs import Runs
from governd.governance.scheduler import Discovered, inventory
from governd.intent.admin_api import AdminRoutes
from governd.intent.auth import check_admin
from governd.intent.budgets_api import BudgetRoutes
from governd.intent.http import json_response, on_govern_error, on_http_exception, on_unexpected
from governd.intent.jobs_api import JobRoutes
from governd.intent.mcp_gateway import McpGateway
from governd.intent.openai_api import OpenAIRoutes
from governd.intent.runs_api import RunRoutes
from governd.job_pipeline import Jobs
from governd.ledger import LedgerWriter, Storage
from governd.ledger.audit import signer_for
from governd.ledger.job_store import JobStore
from governd.observe.gauges import BudgetGauges, live_sources
from governd.observe.metrics import CONTENT_TYPE, Metrics
from governd.observe.traces import Tracing
from governd.pipeline import Pipeline


@dataclass
class Services:
    """Everything a request handler may use; built once per app."""

    config: GovernConfig
    clock: Clock
    storage: Storage
    writer: LedgerWriter
    tree: PrincipalTree
    keyring: KeyRing
    upstreams: dict[str, Upstream]
    router: Router
    budgets: Budgets
    pipeline: Pipeline
    metrics: Metrics


def build_services(cfg: GovernConfig, clock: Clock | None = None) -> Services:
    """Construct every component from the config (no I/O beyond opening storage)."""
    clock = clock or SystemClock()
    strict = cfg.ledger.durability == "strict"
    storage = Storage(cfg.storage, durable=strict)
    writer = LedgerWriter(
        storage,
        cfg.ledger.flush_ms,
        signer_for(cfg),
        cfg.ledger.checkpoint_every,
        cfg.ledger.checkpoint_s,
        strict=strict,
        max_pending=cfg.ledger.max_pending,
    )
    tree = PrincipalTree(cfg)
    upstreams = build_upstreams(cfg)
    router = Router(cfg, upstreams, clock)
    budgets = load_budgets(cfg, storage, clock)
    metrics = Metrics()
    return Services(
        config=cfg,
        clock=clock,
        storage=storage,
        writer=writer,
        tree=tree,
        keyring=KeyRing(storage, tree, clock),
        upstreams=upstreams,
        router=router,
        budgets=budgets,
        pipeline=Pipeline(
            Admission(
                cfg, tree, budgets, clock, Runs(cfg, tree, run_state(cfg, clock), clock, storage)
            ),
            router,
            writer,
            clock,
            metrics,
            Approvals(storage, clock, cfg.governance.approval_timeout_s),
            Tracing(cfg.observe) if cfg.observe.otlp_endpoint else None,
        ),
        metrics=metrics,
    )


def build_jobs(services: Services) -> Jobs:
    """The job pipeline over this machine's executor, with GPUs discovered where a node asks."""
    cfg = services.config
    found = discover() if any(n.discover for n in cfg.compute.nodes.values()) else []
    gpus = [Discovered(g.index, g.uuid, g.flavor) for g in found]
    discovered = {name: gpus for name, node in cfg.compute.nodes.items() if node.discover}
    units = inventory(cfg.compute, discovered)
    return Jobs(
        cfg,
        JobStore(services.storage),
        services.pipeline.admission,
        services.pipeline.approvals,
        services.budgets,
        services.writer,
        services.clock,
        executor_for(cfg.compute.executor, len(units)),
        units,
        services.metrics,
    )


def create_app(cfg: GovernConfig, clock: Clock | None = None) -> Starlette:
    """The governd ASGI application for ``cfg``."""
    services = build_services(cfg, clock)
    gateway = McpGateway(services)
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
        *OpenAIRoutes(services).routes(),
        *(admin := AdminRoutes(services)).routes(),
        *BudgetRoutes(services, admin.check).routes(),
        *gateway.admin_routes(admin.check),
        *RunRoutes(services, admin.check).routes(),
        *JobRoutes(services, jobs, admin.check).routes(),
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
