"""Incidents reach Alertmanager and webhooks: firing until resolved, then resolved once."""

from __future__ import annotations

from governd.config.slos import AlertsConfig
from governd.observe.alerts import AlertSender, rfc3339
from governd.testing.receiver import Receiver

WHERE = {"deployment": "up/m"}


async def test_an_incident_fires_until_resolved() -> None:
    async with Receiver() as far:
        sender = AlertSender(AlertsConfig(alertmanagers=[far.url], webhooks=[f"{far.url}/hook"]))
        await sender.incident("UpstreamOverbilled", WHERE, "up/m billed 100,000 for 16", 1000.0)
        await sender.resolve("UpstreamOverbilled", WHERE, 2000.0)
        await sender.resolve("UpstreamOverbilled", WHERE, 3000.0)  # nothing open: nothing sent
        await sender.aclose()
    fired, resolved = far.at("/api/v2/alerts")
    assert fired[0]["labels"] == {
        "alertname": "UpstreamOverbilled",
        "service": "governd",
        "severity": "page",
        "deployment": "up/m",
    }
    assert fired[0]["annotations"]["summary"] == "up/m billed 100,000 for 16"
    assert fired[0]["startsAt"] == rfc3339(1000.0) and fired[0]["endsAt"] > rfc3339(2000.0)
    assert resolved[0]["endsAt"] == rfc3339(2000.0)
    hooks = far.at("/hook")
    assert [h["status"] for h in hooks] == ["firing", "resolved"]
    assert not sender.incidents
