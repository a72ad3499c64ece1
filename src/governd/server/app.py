"""``create_app(config)``: the composition root, wiring the planes into one ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd import tokens
from governd.clock import Clock
from governd.config import GovernConfig
from governd.controllers.release_commands import describe
from governd.errors import GovernError
from governd.intent.admin_api import AdminRoutes
from governd.intent.auth import check_admin
from governd.intent.budgets_api import BudgetRoutes
from governd.intent.deployments_api import DeploymentRoutes
from governd.intent.edge import Edge
from governd.intent.explain_api import ExplainRoutes
from governd.intent.faults_api import FaultRoutes
from governd.intent.http import json_response, on_govern_error, on_http_exception, on_unexpected
from governd.intent.jobs_api import JobRoutes
from governd.intent.mcp_gateway import McpGateway
from governd.intent.openai_api import OpenAIRoutes
from governd.intent.releases_api import ReleaseRoutes
from governd.intent.runs_api import RunRoutes
from governd.intent.slos_api import SloRoutes
from governd.observe.gauges import BudgetGauges, live_sources
from governd.observe.metrics import CONTENT_TYPE
from governd.observe.slo_metrics import SloCollector
from governd.pipeline.jobs.pipeline import Jobs
from governd.pipeline.jobs.samples import job_samples, unit_samples
from governd.server.explain import explain
from governd.server.services import Services, build_jobs, build_services


def create_app(cfg: GovernConfig, clock: Clock | None = None) -> Starlette:
    """The governd ASGI application for ``cfg``."""
    tokens.use(cfg.governance.tokenizer)
    s = build_services(cfg, clock)
    gateway = McpGateway(
        config=cfg,
        keyring=s.keyring,
        tree=s.tree,
        storage=s.storage,
        clock=s.clock,
        tool_calls=s.tool_calls,
        recorder=s.recorder,
    )
    jobs = build_jobs(s)
    gauges = BudgetGauges()
    s.metrics.live(
        {
            **live_sources(s.router, cfg.models, s.writer, gauges),
            "governd_jobs": (
                "Unfinished jobs by queue and status",
                lambda: job_samples(jobs.unfinished),
            ),
            "governd_devices_in_use": (
                "Accelerator units held by running jobs",
                lambda: unit_samples(jobs.unfinished, jobs.terms.unit),
            ),
        }
    )
    app = Starlette(
        middleware=[
            Middleware(
                Edge,
                failures_per_minute=cfg.server.auth_failures_per_minute,
                max_headers=cfg.server.max_headers,
            )
        ],
        routes=one_per_path(_routes(s, gateway, jobs)),
        lifespan=_lifespan(s, gateway, jobs, gauges),
        exception_handlers={
            HTTPException: on_http_exception,
            GovernError: on_govern_error,
            Exception: on_unexpected,
        },
    )
    if s.slos is not None:
        s.metrics.registry.register(SloCollector(s.slos.evaluator))
    if s.forecasts is not None:
        forecasts = s.forecasts
        s.metrics.live(
            {
                "governd_budget_exhaustion_seconds": (
                    "Seconds until a budget runs out at its recent burn",
                    forecasts.samples,
                )
            }
        )
    app.state.services = s
    return app


def _lifespan(
    s: Services, gateway: McpGateway, jobs: Jobs, gauges: BudgetGauges
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Start what needs the event loop, in order; stop it in the reverse order, whatever fails."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.to_thread(tokens.warm)
            stack.callback(s.storage.close)
            for state in (s.admission.runs.state, s.admission.limits.state, s.budgets.state):
                stack.push_async_callback(state.aclose)
            stack.push_async_callback(asyncio.to_thread, s.recorder.close)
            s.writer.start()
            stack.push_async_callback(asyncio.to_thread, s.writer.close)
            for upstream in s.upstreams.values():
                await upstream.start()
                stack.push_async_callback(upstream.aclose)
            stack.push_async_callback(gateway.aclose)
            await s.budgets.sync()
            stack.push_async_callback(s.alerts.aclose)
            if s.slos is not None:
                await s.slos.start()
                # Last, a tick that shares the counts of the final seconds.
                stack.push_async_callback(s.slos.tick)
                ticking = asyncio.create_task(s.slos.run())
                stack.callback(ticking.cancel)
            await s.releases.start()
            releasing = asyncio.create_task(s.releases.run())
            stack.callback(releasing.cancel)
            await jobs.start()
            stack.push_async_callback(jobs.aclose)
            refresher = asyncio.create_task(gauges.refresh_forever(s.budgets))
            stack.callback(refresher.cancel)
            if s.forecasts is not None:
                await s.forecasts.start()
                forecasting = asyncio.create_task(s.forecasts.run())
                stack.callback(forecasting.cancel)
            await stack.enter_async_context(gateway.sessions.run())
            yield

    return lifespan


def _routes(s: Services, gateway: McpGateway, jobs: Jobs) -> list[Route]:
    cfg = s.config
    admin = AdminRoutes(
        config=cfg,
        keyring=s.keyring,
        tree=s.tree,
        storage=s.storage,
        router=s.router,
        writer=s.writer,
        clock=s.clock,
        approvals=s.approvals,
    )

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def metrics(request: Request) -> Response:
        if not cfg.server.public_metrics:
            key = cfg.admin_key
            check_admin(request, key.get_secret_value() if key else None)
        return Response(s.metrics.render(), media_type=CONTENT_TYPE)

    async def readyz(request: Request) -> Response:
        # Batched durability buffers while the store fails: ready, and it says so (degraded).
        # Strict refuses new work then: not ready. Every replica shares the store, so a
        # load balancer that dropped the degraded ones would drop them all.
        try:
            await asyncio.to_thread(s.storage.count)
            reachable = True
        except Exception:
            reachable = False
        w = s.writer
        ledger = {"lag": w.lag, "bound": w.bound, "store": "ok" if reachable else "unreachable"}
        if not w.accepting or (w.strict and not reachable):
            return json_response({"status": "unavailable", "ledger": ledger}, 503)
        status = "ready" if reachable and not w.failing else "degraded"
        return json_response({"status": status, "ledger_lag": w.lag, "ledger": ledger})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/mcp", gateway),
        *OpenAIRoutes(
            config=cfg, keyring=s.keyring, tree=s.tree, model_calls=s.model_calls, writer=s.writer
        ).routes(),
        *admin.routes(),
        *BudgetRoutes(
            budgets=s.budgets,
            keyring=s.keyring,
            tree=s.tree,
            recorder=s.recorder,
            admin=admin.check,
        ).routes(),
        *gateway.admin_routes(admin.check),
        *RunRoutes(
            storage=s.storage,
            tree=s.tree,
            runs=s.admission.runs,
            writer=s.writer,
            check=admin.check,
        ).routes(),
        *SloRoutes(slos=s.slos, writer=s.writer, check=admin.check).routes(),
        *ExplainRoutes(
            explain=lambda who: explain(s, who),
            keyring=s.keyring,
            tree=s.tree,
            admin_key=cfg.admin_key.get_secret_value() if cfg.admin_key else None,
        ).routes(),
        *FaultRoutes(upstreams=s.upstreams, recorder=s.recorder, check=admin.check).routes(),
        *DeploymentRoutes(
            router=s.router, recorder=s.recorder, alerts=s.alerts, check=admin.check
        ).routes(),
        *ReleaseRoutes(
            controller=s.releases,
            commands=s.release_commands,
            describe=lambda row: describe(s.releases, row),
            writer=s.writer,
            check=admin.check,
            max_body_bytes=cfg.server.max_body_bytes,
        ).routes(),
        *JobRoutes(
            config=cfg, keyring=s.keyring, tree=s.tree, jobs=jobs, check=admin.check
        ).routes(),
    ]


def one_per_path(routes: list[Route]) -> list[Route]:
    """The routes with those of one path joined, so that a method the path lacks gets a 405
    whose ``Allow`` lists every method it has (Starlette answers from the first match)."""
    groups: dict[str, list[Route]] = {}
    for route in routes:
        groups.setdefault(route.path, []).append(route)
    out = []
    for path, group in groups.items():
        if len(group) == 1 or any(r.methods is None for r in group):
            out.extend(group)
            continue
        handlers = {method: r.endpoint for r in group for method in r.methods or ()}

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            response: Response = await handlers[request.method](request)
            return response

        out.append(Route(path, dispatch, methods=sorted(handlers)))
    return out
