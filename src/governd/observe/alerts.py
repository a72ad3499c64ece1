"""Alerts out to Alertmanager (``POST /api/v2/alerts``) and to webhooks in its payload format.

Two kinds: SLO burn alerts (judged by every replica), and *incidents* that
stay firing until an operator resolves them (an upstream that billed past a
call's bound, tripping its deployment).

Alertmanager forgets an alert whose ``endsAt`` has passed, so, as Prometheus
does, every firing alert is sent again every ``resend_s`` with ``endsAt``
four re-sends ahead, and a resolved one once with ``endsAt`` at its
resolution. Every replica sends what it judged (Alertmanager merges alerts by
their labels); a webhook gets each transition once, from the replica that
recorded it. A destination that fails is logged and tried again at the next
send: an alert never waits on, or fails because of, its receivers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import httpx2
import orjson

from governd.config.slos import AlertsConfig
from governd.durations import format_duration
from governd.ledger.slos.alerts import summary
from governd.ledger.slos.evaluator import NO_DATA, Transition

log = logging.getLogger("governd.alerts")
#: How many re-sends ahead a firing alert's ``endsAt`` is (Prometheus uses 4).
_ENDS_AHEAD = 4
_ZERO_TIME = "0001-01-01T00:00:00Z"
#: An incident fires this long unless resolved first: it needs no re-sends (and outlives a
#: replica that died before resolving it, as an unresolved incident should).
_INCIDENT_S = 7 * 86_400


def rfc3339(ts: float) -> str:
    """Epoch seconds as Alertmanager writes times."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def labels(t: Transition) -> dict[str, str]:
    """The alert's identity: the SLO, its severity and group."""
    name = "SloNoData" if t.severity == NO_DATA else "SloErrorBudgetBurn"
    return {
        "alertname": name,
        "service": "governd",
        "slo": t.slo,
        "severity": t.severity,
        **dict(t.group),
    }


def describe(t: Transition) -> dict[str, str]:
    """What a person reads: the summary line, and each window's counts."""
    out = {"summary": f"{t.severity} {t.state}: {summary(t)}"}
    for w in t.windows:
        out[f"window_{format_duration(w.window)}"] = (
            f"{w.bad} bad of {w.good + w.bad}, burn {w.burn:.3g}"
        )
    if t.windows:
        out["budget_remaining"] = f"{t.remaining:.4f}"
    return out


def fingerprint(found: dict[str, str]) -> str:
    """A stable id of a label set (Alertmanager's is a hash of the sorted labels too)."""
    return hashlib.sha256(orjson.dumps(found, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class AlertSender:
    """Posts SLO alerts to the configured Alertmanagers and webhooks."""

    def __init__(self, cfg: AlertsConfig) -> None:
        self._cfg = cfg
        self._client: httpx2.AsyncClient | None = None
        self.resend_s = cfg.resend_s
        #: Alerts firing as this replica judged them, by fingerprint: the transition that fired.
        self.firing: dict[str, Transition] = {}
        #: Incidents open on this replica, by fingerprint: their labels, summary and start.
        self.incidents: dict[str, tuple[dict[str, str], str, float]] = {}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._cfg.timeout_s)
        return self._client

    def alert(self, t: Transition, now: float) -> dict[str, Any]:
        """The alert in Alertmanager's API form (``postableAlert``)."""
        resolved = t.state == "resolved"
        first = self.firing.get(fingerprint(labels(t)), t)
        return {
            "labels": labels(t),
            "annotations": describe(t),
            "startsAt": rfc3339(first.at),
            "endsAt": rfc3339(t.at if resolved else now + _ENDS_AHEAD * self._cfg.resend_s),
            "generatorURL": f"{self._cfg.external_url}/admin/v1/slos/{t.slo}",
        }

    async def judged(self, t: Transition, now: float) -> None:
        """Tell the Alertmanagers a transition this replica judged."""
        key = fingerprint(labels(t))
        alert = self.alert(t, now)
        if t.state == "fired":
            self.firing.setdefault(key, t)
        else:
            self.firing.pop(key, None)
        await self._to_alertmanagers([alert])

    async def recorded(self, t: Transition, now: float) -> None:
        """Tell the webhooks a transition this replica recorded (once per transition)."""
        if not self._cfg.webhooks:
            return
        body = webhook_payload([self.alert(t, now)], t.state, self._cfg.external_url)
        await asyncio.gather(*(self._post(url, body) for url in self._cfg.webhooks))

    async def resend(self, now: float) -> None:
        """Send every firing alert again, so Alertmanager keeps it until it resolves."""
        if self.firing:
            await self._to_alertmanagers([self.alert(t, now) for t in self.firing.values()])

    async def incident(self, name: str, where: dict[str, str], summary: str, now: float) -> None:
        """Open an incident (``name``, labelled ``where``): firing until ``resolve``."""
        found = {"alertname": name, "service": "governd", "severity": "page", **where}
        self.incidents[fingerprint(found)] = (found, summary, now)
        await self._tell(self._incident(found, summary, now, now + _INCIDENT_S), "fired")

    async def resolve(self, name: str, where: dict[str, str], now: float) -> None:
        """Close an incident opened with the same name and labels (nothing if none is open)."""
        found = {"alertname": name, "service": "governd", "severity": "page", **where}
        opened = self.incidents.pop(fingerprint(found), None)
        if opened is not None:
            await self._tell(self._incident(*opened, now), "resolved")

    def _incident(
        self, found: dict[str, str], summary: str, since: float, ends: float
    ) -> dict[str, Any]:
        return {
            "labels": found,
            "annotations": {"summary": summary},
            "startsAt": rfc3339(since),
            "endsAt": rfc3339(ends),
            "generatorURL": f"{self._cfg.external_url}/admin/v1/deployments",
        }

    async def _tell(self, alert: dict[str, Any], state: str) -> None:
        body = webhook_payload([alert], state, self._cfg.external_url)
        await asyncio.gather(
            self._to_alertmanagers([alert]), *(self._post(url, body) for url in self._cfg.webhooks)
        )

    async def _to_alertmanagers(self, alerts: list[dict[str, Any]]) -> None:
        await asyncio.gather(
            *(
                self._post(f"{url.rstrip('/')}/api/v2/alerts", alerts)
                for url in self._cfg.alertmanagers
            )
        )

    async def _post(self, url: str, body: Any) -> None:
        try:
            reply = await self._http().post(
                url, content=orjson.dumps(body), headers={"content-type": "application/json"}
            )
            if reply.status_code >= 300:
                log.warning(
                    "alert to %s refused: HTTP %d %s", url, reply.status_code, reply.text[:200]
                )
        except httpx2.HTTPError as exc:
            log.warning("alert to %s not sent: %s", url, exc)


def webhook_payload(alerts: list[dict[str, Any]], status: str, external_url: str) -> dict[str, Any]:
    """Alerts as Alertmanager's webhook receiver sends them (payload version 4)."""
    items = [
        {
            **a,
            "status": "firing" if status == "fired" else "resolved",
            "endsAt": a["endsAt"] if status != "fired" else _ZERO_TIME,
            "fingerprint": fingerprint(a["labels"]),
        }
        for a in alerts
    ]
    common = dict(set.intersection(*(set(a["labels"].items()) for a in alerts))) if alerts else {}
    group = {"alertname": common.get("alertname", ""), "slo": common.get("slo", "")}
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}",
        "truncatedAlerts": 0,
        "status": items[0]["status"] if items else "resolved",
        "receiver": "governd",
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": external_url,
        "alerts": items,
    }
