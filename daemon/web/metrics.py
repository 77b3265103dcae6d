"""`/metrics` in the Prometheus exposition format, built with the official client library.

Read from the store at scrape time by a custom collector on a registry of our own (never the
process-global one): what Prometheus sees is what `status`, `costs` and `findings` say.
Label sets stay bounded: checks, severities, statuses, providers, models and tasks come from
the config; no evidence, host, incident id or other free text is ever a label.

Counters (`_total`) are sums over the ledger, which is never pruned, so they only grow.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from daemon import __version__

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.notify.delivery import DeliveryReport
    from daemon.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATUSES = ("ok", "degraded", "error", "failing")
SEVERITIES = ("info", "low", "medium", "high", "critical")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def exposition(
    store: Store,
    settings: Settings,
    last_cycle: datetime | None,
    cycle_seconds: float | None = None,
    deliveries: DeliveryReport | None = None,
    cluster: tuple[str, str] | None = None,
) -> bytes:
    """The text format (0.0.4) of everything below, for one scrape. `cluster`: this node's
    name and role ("active", "standby" or "member") when several processes share the database."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    collector = _Collector(store, settings, last_cycle, cycle_seconds, deliveries)
    collector.cluster = cluster
    registry.register(collector)
    body: bytes = generate_latest(registry)
    return body


class _Collector:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        last_cycle: datetime | None,
        cycle_seconds: float | None,
        deliveries: DeliveryReport | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.last_cycle = last_cycle
        self.cycle_seconds = cycle_seconds
        self.deliveries = deliveries
        self.cluster: tuple[str, str] | None = None

    def collect(self) -> Iterator[Any]:
        yield from self._daemon()
        yield from self._cluster()
        yield from self._checks()
        yield from self._incidents()
        yield from self._outbox()
        yield from self._ai()
        yield from self._sweeps()

    def _daemon(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        info = GaugeMetricFamily(
            "watchkeeper_build_info", "The running version (always 1).", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        last = GaugeMetricFamily(
            "watchkeeper_last_cycle_timestamp_seconds",
            "Unix time of the last committed check cycle (0: none since the start).",
        )
        last.add_metric([], self.last_cycle.timestamp() if self.last_cycle else 0)
        yield last
        duration = GaugeMetricFamily(
            "watchkeeper_last_cycle_duration_seconds",
            "How long the last committed cycle took: evaluation, triage and the commit.",
        )
        if self.cycle_seconds is not None:
            duration.add_metric([], self.cycle_seconds)
        yield duration

    def _cluster(self) -> Iterator[Any]:
        """Which node is active, as the shared database's lease row names it, and this node's
        role. Node names are configured or host names: the client library escapes them."""
        if self.cluster is None:
            return
        from prometheus_client.core import GaugeMetricFamily

        node, role = self.cluster
        leader = GaugeMetricFamily(
            "watchkeeper_leader",
            "1 for the node holding the leader lease (the active one); 0 for this node when "
            "it does not hold it.",
            labels=["node"],
        )
        lease, now = self.store.lease.current()
        active = lease.node if lease is not None and not lease.expired(now) else None
        if active is not None:
            leader.add_metric([active], 1)
        if active != node:
            leader.add_metric([node], 0)
        yield leader
        roles = GaugeMetricFamily(
            "watchkeeper_cluster_role",
            "This node's role: 1 for the one it has (active, standby, or member: a sharded "
            "node running its share without the lease), 0 for the others.",
            labels=["node", "role"],
        )
        for name in ("active", "standby", "member"):
            roles.add_metric([node, name], 1 if role == name else 0)
        yield roles

    def _checks(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from daemon.models import worst_status

        status = GaugeMetricFamily(
            "watchkeeper_check_status",
            "1 for the check's current status, 0 for the others.",
            labels=["check", "status"],
        )
        up = GaugeMetricFamily(
            "watchkeeper_check_up", "1 when the check's last result was ok.", labels=["check"]
        )
        latency = GaugeMetricFamily(
            "watchkeeper_check_latency_seconds",
            "Latency of the check's last result.",
            labels=["check"],
        )
        duration = GaugeMetricFamily(
            "watchkeeper_check_last_run_timestamp_seconds",
            "Unix time the check last ran.",
            labels=["check"],
        )
        latest = self.store.results.latest()
        for spec in self.settings.checks:
            results = latest.get(spec.name)
            if not results:
                continue
            current = worst_status(results)
            for name in STATUSES:
                status.add_metric([spec.name, name], 1.0 if current == name else 0.0)
            up.add_metric([spec.name], 1.0 if current == "ok" else 0.0)
            if results[0].latency_ms is not None:
                latency.add_metric([spec.name], results[0].latency_ms / 1000)
            duration.add_metric([spec.name], results[0].started_at.timestamp())
        yield from (status, up, latency, duration)

    def _incidents(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        open_ = GaugeMetricFamily(
            "watchkeeper_incidents_open", "Open incidents by severity.", labels=["severity"]
        )
        counts = dict.fromkeys(SEVERITIES, 0)
        for incident in self.store.incidents.recent(include_resolved=False, limit=10_000):
            counts[incident.severity.value] = counts.get(incident.severity.value, 0) + 1
        for severity, count in counts.items():
            open_.add_metric([severity], count)
        yield open_

    def _outbox(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        messages = GaugeMetricFamily(
            "watchkeeper_outbox_messages",
            "Notifications in the outbox by status (delivered and failed ones are kept until "
            "retention prunes them); pending is the queue depth.",
            labels=["status"],
        )
        counts = self.store.outbox.counts()
        for name in ("pending", "delivered", "failed"):
            messages.add_metric([name], counts.get(name, 0))
        yield messages
        if self.deliveries is None:  # not the daemon (no delivery loop): no counters
            return
        from prometheus_client.core import CounterMetricFamily

        attempts = CounterMetricFamily(
            "watchkeeper_notifications",
            "Notification delivery attempts by this daemon since it started, by outcome: "
            "delivered, retried (a failure to try again), failed (given up).",
            labels=["outcome"],
        )
        attempts.add_metric(["delivered"], self.deliveries.delivered)
        attempts.add_metric(["retried"], self.deliveries.retried)
        attempts.add_metric(["failed"], self.deliveries.failed)
        yield attempts

    def _ai(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        calls = CounterMetricFamily(
            "watchkeeper_ai_calls",
            "Model calls (and skipped attempts) by provider, model, task and outcome.",
            labels=["provider", "model", "task", "outcome"],
        )
        tokens = CounterMetricFamily(
            "watchkeeper_ai_tokens",
            "Tokens by provider, model, task and direction.",
            labels=["provider", "model", "task", "direction"],
        )
        cost = CounterMetricFamily(
            "watchkeeper_ai_cost_usd",
            "Known cost of model calls in USD (local calls cost 0).",
            labels=["provider", "model", "task"],
        )
        unknown = CounterMetricFamily(
            "watchkeeper_ai_unknown_cost_calls",
            "Calls whose price is unknown: not counted in the cost, never as 0.",
            labels=["provider", "model", "task"],
        )
        n: dict[tuple[str, ...], int] = {}
        t: dict[tuple[str, ...], int] = {}
        usd: dict[tuple[str, ...], Decimal] = {}
        unk: dict[tuple[str, ...], int] = {}
        for row in self.store.ledger.calls(EPOCH):
            key = (row.provider, row.model, row.task)
            n[(*key, row.outcome)] = n.get((*key, row.outcome), 0) + 1
            t[(*key, "input")] = t.get((*key, "input"), 0) + row.input_tokens
            t[(*key, "output")] = t.get((*key, "output"), 0) + row.output_tokens
            if row.cost_usd is None:
                unk[key] = unk.get(key, 0) + 1
            else:
                usd[key] = usd.get(key, Decimal(0)) + row.cost_usd
        for labels, value in n.items():
            calls.add_metric(list(labels), value)
        for labels, value in t.items():
            tokens.add_metric(list(labels), value)
        for labels, amount in usd.items():
            cost.add_metric(list(labels), float(amount))
        for labels, value in unk.items():
            unknown.add_metric(list(labels), value)
        yield from (calls, tokens, cost, unknown)
        remaining = GaugeMetricFamily(
            "watchkeeper_ai_budget_remaining_usd",
            "What the AI budget has left in the current period (only configured limits).",
            labels=["period"],
        )
        moment = datetime.now(UTC)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        for period, start, limit in (
            ("day", day, self.settings.budget.daily_usd),
            ("month", day.replace(day=1), self.settings.budget.monthly_usd),
        ):
            if limit is not None:
                left = max(Decimal(0), limit - self.store.ledger.spent(start))
                remaining.add_metric([period], float(left))
        yield remaining

    def _sweeps(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from daemon.sweeps.reports import current

        findings = GaugeMetricFamily(
            "watchkeeper_sweep_findings",
            "Findings of each sweep's latest run by severity (muted ones left out).",
            labels=["sweep", "severity"],
        )
        for run in self.store.sweeps.latest_runs():
            counts = dict.fromkeys(SEVERITIES, 0)
            for tracked in current(run):
                if not tracked.muted:
                    counts[tracked.finding.severity.value] += 1
            for severity, count in counts.items():
                findings.add_metric([run.sweep, severity], count)
        yield findings
