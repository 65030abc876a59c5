"""The figures ``/metrics`` shows, in Prometheus' text format, written by ``prometheus_client``
(its import costs about 0.5 MB of the daemon's memory, measured: docs/metrics.md) and loaded
only at the first scrape.

Everything is read when scraped, from what is already kept: the store's kept message counts
and indexed queries (a few rows whatever the store's size; tests/scale checks the plans), the
modem manager's statuses, the dispatcher's send counts (:mod:`gateway.messaging.sendstats`)
and the webhooks' counters. Nothing is counted twice and nothing is counted on the send path
for metrics alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..messaging.sendstats import LATENCY_BUCKETS
from ..store.states import IN_FLIGHT, BroadcastState
from ..store.times import now, parse
from .context import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class GatewayCollector:
    """A ``prometheus_client`` collector over one gateway's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        s = self.services
        at = now()
        store = s.store

        # -- messages ------------------------------------------------------------------------
        messages = GaugeMetricFamily(
            "gateway_messages",
            "Messages in the store by direction, status and short code",
            labels=["direction", "status", "short_code"],
        )
        queue = GaugeMetricFamily(
            "gateway_queue_depth",
            "Outbound messages waiting for or being sent by a modem (queued, sending)",
            labels=["short_code"],
        )
        depth: dict[str, int] = {sc.code: 0 for sc in s.config.short_codes}
        for row in store.counts.by_state():
            messages.add_metric([row["direction"], row["status"], row["short_code"]], row["n"])
            if row["direction"] == "out" and row["status"] in IN_FLIGHT:
                depth[row["short_code"]] = depth.get(row["short_code"], 0) + int(row["n"])
        for code, n in sorted(depth.items()):
            queue.add_metric([code], n)
        yield messages
        yield queue
        oldest = store.counts.oldest_queued_at()
        yield GaugeMetricFamily(
            "gateway_queue_oldest_age_seconds",
            "Age of the oldest outbound message still waiting (0: none waits)",
            value=_age(at, oldest),
        )
        parts, incomplete = store.counts.reassembly_backlog()
        yield GaugeMetricFamily(
            "gateway_inbound_reassembly_parts",
            "Parts of inbound messages waiting for the rest of their message",
            value=parts,
        )
        yield GaugeMetricFamily(
            "gateway_inbound_incomplete_messages",
            "Inbound messages made with parts missing (after the reassembly timeout)",
            value=incomplete,
        )

        # -- modems --------------------------------------------------------------------------
        state = GaugeMetricFamily(
            "gateway_modem_state",
            "A modem's state (1 for the current one)",
            labels=["modem", "state"],
        )
        up = GaugeMetricFamily("gateway_modem_up", "1 when the modem is up", labels=["modem"])
        registered = GaugeMetricFamily(
            "gateway_modem_registered",
            "1 when the modem is registered on a network (home or roaming)",
            labels=["modem", "registration"],
        )
        signal = GaugeMetricFamily(
            "gateway_modem_signal_dbm", "Signal strength the modem reports", labels=["modem"]
        )
        bars = GaugeMetricFamily(
            "gateway_modem_signal_bars", "Signal strength in bars, 0-5", labels=["modem"]
        )
        statuses = s.manager.statuses() if s.manager is not None else []
        for st in statuses:
            j = st.to_json()
            mid = j["id"]
            state.add_metric([mid, str(j["state"])], 1)
            up.add_metric([mid], 1 if j["state"] == "up" else 0)
            registered.add_metric([mid, j["registration"] or "unknown"], int(j["registered"]))
            if j["signal"] and j["signal"]["dbm"] is not None:
                signal.add_metric([mid], j["signal"]["dbm"])
            if j["signal"] and j["signal"]["bars"] is not None:
                bars.add_metric([mid], j["signal"]["bars"])
        yield from (state, up, registered, signal, bars)

        sent_messages = CounterMetricFamily(
            "gateway_modem_messages_sent",
            "Messages a modem sent (every part out), kept across restarts",
            labels=["modem"],
        )
        failed_messages = CounterMetricFamily(
            "gateway_modem_messages_failed",
            "Messages that failed for good on a modem, kept across restarts",
            labels=["modem"],
        )
        received = CounterMetricFamily(
            "gateway_modem_messages_received",
            "Inbound messages a modem received, kept across restarts",
            labels=["modem"],
        )
        for row in store.modems.all():
            sent_messages.add_metric([row["modem_id"]], row["sent_count"])
            failed_messages.add_metric([row["modem_id"]], row["failed_count"])
            received.add_metric([row["modem_id"]], row["received_count"])
        yield from (sent_messages, failed_messages, received)

        parts_sent = CounterMetricFamily(
            "gateway_modem_parts_sent", "Parts the network took, since start", labels=["modem"]
        )
        errors = CounterMetricFamily(
            "gateway_modem_send_errors",
            "Failed part sends since start, by whose problem: message (never sendable),"
            " retry (a passing network condition), modem (the modem or its SIM)",
            labels=["modem", "blame"],
        )
        latency = HistogramMetricFamily(
            "gateway_send_latency_seconds",
            "Seconds from a part handed to the modem to the network's answer, since start",
            labels=["modem"],
        )
        for mid, m in sorted(s.dispatcher.stats.snapshot().items()):
            parts_sent.add_metric([mid], m.sent)
            for blame, n in sorted(m.errors.items()):
                errors.add_metric([mid, blame], n)
            cumulative, buckets = 0, []
            for bound, n in zip([*LATENCY_BUCKETS, float("inf")], m.buckets, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([mid], buckets, sum_value=m.seconds_sum)
        yield from (parts_sent, errors, latency)

        # -- webhooks ------------------------------------------------------------------------
        labels = ["webhook", "short_code"]
        pending = GaugeMetricFamily(
            "gateway_webhook_pending", "Deliveries waiting to be POSTed", labels=labels
        )
        dead = GaugeMetricFamily(
            "gateway_webhook_dead_letters", "Deliveries in the dead-letter list", labels=labels
        )
        age = GaugeMetricFamily(
            "gateway_webhook_oldest_pending_age_seconds",
            "Age of the oldest delivery waiting (0: none)",
            labels=labels,
        )
        delivered = CounterMetricFamily(
            "gateway_webhook_delivered", "Deliveries the receiver took", labels=labels
        )
        failures = CounterMetricFamily(
            "gateway_webhook_failed_attempts", "POSTs that failed", labels=labels
        )
        given_up = CounterMetricFamily(
            "gateway_webhook_given_up",
            "Deliveries moved to the dead-letter list (attempts, age or the backlog cap)",
            labels=labels,
        )
        discarded = CounterMetricFamily(
            "gateway_webhook_discarded",
            "Dead letters forgotten because the list passed max_dead",
            labels=labels,
        )
        for row in store.webhooks.backlog():
            key = [str(row["id"]), row["short_code"]]
            pending.add_metric(key, row["pending"])
            dead.add_metric(key, row["dead"])
            age.add_metric(key, _age(at, row["oldest"]))
            delivered.add_metric(key, row["delivered_count"])
            failures.add_metric(key, row["failed_attempts"])
            given_up.add_metric(key, row["dead_count"])
            discarded.add_metric(key, row["discarded_count"])
        yield from (pending, dead, age, delivered, failures, given_up, discarded)

        # -- broadcasts ----------------------------------------------------------------------
        broadcasts = GaugeMetricFamily(
            "gateway_broadcasts", "Broadcasts by state", labels=["state"]
        )
        by_state = store.broadcasts.count_by_state()
        for state in BroadcastState:
            broadcasts.add_metric([str(state)], by_state.get(state, 0))
        recipients = GaugeMetricFamily(
            "gateway_broadcast_recipients",
            "Recipients of each broadcast still scheduled, sending or paused, by where they are"
            " (waiting: not yet taken by the network)",
            labels=["broadcast", "short_code", "outcome"],
        )
        for b in store.broadcasts.active():
            key = [str(b["id"]), b["short_code"]]
            for outcome, n in (
                ("waiting", int(b["n_pending"]) + int(b["n_queued"])),
                ("sent", b["n_sent"]),
                ("delivered", b["n_delivered"]),
                ("failed", b["n_failed"]),
                ("skipped", b["n_skipped"]),
                ("cancelled", b["n_cancelled"]),
            ):
                recipients.add_metric([*key, outcome], n)
        yield from (broadcasts, recipients)


def _age(at: datetime, stamp: str | None) -> float:
    return max(0.0, (at - parse(stamp)).total_seconds()) if stamp else 0.0


def exposition(services: Services) -> bytes:
    """The text ``/metrics`` answers: the gateway's figures and the process's own (memory,
    CPU, open files)."""
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(services))
    ProcessCollector(registry=registry)
    return generate_latest(registry)
