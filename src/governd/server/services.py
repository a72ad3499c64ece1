"""The components of one governd server, built from its config (the composition root's parts)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from governd.clock import Clock, SystemClock
from governd.config import GovernConfig
from governd.controllers.budget_burn import BudgetForecasts
from governd.controllers.release_commands import ReleaseCommands
from governd.controllers.releases import ReleaseController
from governd.controllers.slo_alerts import SloAlerts
from governd.controllers.slo_policies import PolicyBook, SloPolicies
from governd.execution import Router, build_upstreams
from governd.execution.executors.choose import executor_for
from governd.execution.executors.nvml import discover
from governd.execution.upstream import Upstream
from governd.governance import KeyRing, PrincipalTree
from governd.governance.admission import Admission
from governd.governance.approvals import Approvals
from governd.governance.budgets import Budgets
from governd.governance.overrides import Overrides
from governd.governance.releases import Releases
from governd.governance.runs import Runs
from governd.governance.scheduler import Discovered, inventory
from governd.governance.state.setup import load_budgets, run_state
from governd.ledger import LedgerWriter, Storage
from governd.ledger.audit import signer_for
from governd.ledger.control_states import ControlStates
from governd.ledger.job_store import JobStore
from governd.ledger.leases import Leases
from governd.ledger.releases.counts import ReleaseCounts
from governd.ledger.releases.store import ReleaseStore
from governd.ledger.sealing import Sealer
from governd.ledger.slos.evaluator import SloEvaluator
from governd.ledger.slos.store import SloStore
from governd.observe.alerts import AlertSender
from governd.observe.metrics import Metrics
from governd.observe.traces import Tracing
from governd.pipeline.jobs.leadership import Leadership
from governd.pipeline.jobs.pipeline import Jobs
from governd.pipeline.model_calls import ModelCalls
from governd.pipeline.recorder import Recorder
from governd.pipeline.tool_calls import ToolCalls


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
    admission: Admission
    approvals: Approvals
    recorder: Recorder
    model_calls: ModelCalls
    tool_calls: ToolCalls
    metrics: Metrics
    #: The SLOs' evaluation and alerts (None when the config has no SLOs).
    slos: SloAlerts | None
    alerts: AlertSender
    #: What controllers changed at runtime (admission and the router read it).
    overrides: Overrides
    #: Budget-burn forecasts (None when ``governance.forecast.action`` is off).
    forecasts: BudgetForecasts | None
    #: Releases: counted, judged and moved every tick; what people do to them.
    releases: ReleaseController
    release_commands: ReleaseCommands
    #: Seals secrets at rest (jobs' environment values) under a key derived from the signing key.
    sealer: Sealer


def build_services(cfg: GovernConfig, clock: Clock | None = None) -> Services:
    """Construct every component from the config (no I/O beyond opening storage)."""
    clock = clock or SystemClock()
    strict = cfg.ledger.durability == "strict"
    storage = Storage(cfg.storage, durable=strict)
    signer = signer_for(cfg)
    writer = LedgerWriter(
        storage,
        cfg.ledger.flush_ms,
        signer,
        cfg.ledger.checkpoint_every,
        cfg.ledger.checkpoint_s,
        strict=strict,
        max_pending=cfg.ledger.max_pending,
    )
    tree = PrincipalTree(cfg)
    upstreams = build_upstreams(cfg)
    overrides = Overrides()
    router = Router(cfg, upstreams, clock, drained=overrides.drained)
    budgets = load_budgets(cfg, storage, clock)
    metrics = Metrics()
    runs = Runs(cfg, tree, run_state(cfg, clock), clock, storage)
    admission = Admission(cfg, tree, budgets, clock, runs, overrides)
    approvals = Approvals(storage, clock, cfg.governance.approval_timeout_s)
    tracing = Tracing(cfg.observe) if cfg.observe.otlp_endpoint else None
    alerts = AlertSender(cfg.observe.alerts)
    evaluator = SloEvaluator(cfg.slos, clock.now()) if cfg.slos else None
    counts = ReleaseCounts()
    observers = [metrics.observe, counts.observe, *([evaluator.observe] if evaluator else [])]
    recorder = Recorder(writer, observers, clock, runs, tracing)
    release_store = ReleaseStore(storage.engine)

    async def pin(release: str, run_id: str, arm: str) -> str:
        return await asyncio.to_thread(release_store.pin, release, run_id, arm, clock.now())

    live = Releases(pin)
    releases = ReleaseController(
        cfg, release_store, counts, live, overrides, evaluator, budgets, recorder.append, clock
    )
    slos = _slo_alerts(cfg, evaluator, storage, recorder, alerts, overrides) if evaluator else None
    forecast = cfg.governance.forecast
    forecasts = (
        BudgetForecasts(
            forecast,
            budgets,
            ControlStates(storage.engine),
            overrides,
            recorder.record_control,
            clock,
        )
        if forecast.action != "off"
        else None
    )
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
        admission=admission,
        approvals=approvals,
        recorder=recorder,
        model_calls=ModelCalls(admission, router, recorder, clock, live, alerts),
        tool_calls=ToolCalls(admission, approvals, recorder, clock),
        metrics=metrics,
        slos=slos,
        alerts=alerts,
        overrides=overrides,
        forecasts=forecasts,
        releases=releases,
        release_commands=ReleaseCommands(releases, approvals),
        sealer=Sealer.of(signer),
    )


def _slo_alerts(
    cfg: GovernConfig,
    evaluator: SloEvaluator,
    storage: Storage,
    recorder: Recorder,
    alerts: AlertSender,
    overrides: Overrides,
) -> SloAlerts:
    store = SloStore(storage.engine)
    policies = None
    if any(slo.policies for slo in cfg.slos):
        book = PolicyBook(evaluator, cfg.principals.org)
        policies = SloPolicies(book, overrides, store, recorder.append)
    return SloAlerts(evaluator, store, recorder.append, alerts, recorder.clock, policies)


def build_jobs(services: Services) -> Jobs:
    """The job pipeline over this machine's executor, with GPUs discovered where a node asks."""
    cfg = services.config
    found = discover() if any(n.discover for n in cfg.compute.nodes.values()) else []
    gpus = [Discovered(g.index, g.uuid, g.flavor) for g in found]
    discovered = {name: gpus for name, node in cfg.compute.nodes.items() if node.discover}
    units = inventory(cfg.compute, discovered)
    return Jobs(
        cfg,
        JobStore(services.storage, services.sealer),
        services.admission,
        services.approvals,
        services.budgets,
        services.recorder,
        services.clock,
        executor_for(cfg.compute.executor, len(units)),
        units,
        Leadership(Leases(services.storage.engine), services.clock),
    )
