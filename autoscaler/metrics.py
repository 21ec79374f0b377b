"""Prometheus metrics and the ``/healthz`` endpoint. The loop records; nothing else imports
prometheus_client."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from autoscaler.model import Decision


class Metrics:
    """The daemon's metrics, on a registry of its own (so tests can make several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.signal = Gauge(
            "autoscaler_signal_ms", "Signal the policy saw (ms)", ["process"], registry=r
        )
        self.quantity = Gauge(
            "autoscaler_quantity", "Quantity read from the platform", ["process"], registry=r
        )
        self.desired = Gauge("autoscaler_desired", "Desired quantity", ["process"], registry=r)
        self.decisions = Counter(
            "autoscaler_decisions",
            "Decisions by action and reason",
            ["process", "action", "reason"],
            registry=r,
        )
        self.source_errors = Counter(
            "autoscaler_source_errors", "Failed source polls", ["process"], registry=r
        )
        self.platform_errors = Counter(
            "autoscaler_platform_errors", "Failed platform calls", ["kind"], registry=r
        )
        self.writes = Counter(
            "autoscaler_writes", "Formation changes sent", ["process"], registry=r
        )
        self.tick_seconds = Histogram("autoscaler_tick_seconds", "Duration of one tick", registry=r)
        self.last_success = Gauge(
            "autoscaler_last_successful_tick_timestamp_seconds",
            "Wall-clock time of the last tick that completed",
            registry=r,
        )
        self.leader = Gauge("autoscaler_leader", "1 while this daemon holds the lease", registry=r)
        self.capacity = Gauge(
            "autoscaler_capacity_per_instance",
            "Requests/s one instance carries with the signal in the band, as learned",
            ["process"],
            registry=r,
        )
        self.sample_age = Gauge(
            "autoscaler_sample_age_seconds", "Age of the newest data", ["process"], registry=r
        )

    def record(self, decision: Decision) -> None:
        p = decision.process
        if decision.signal_ms is not None:
            self.signal.labels(p).set(decision.signal_ms)
        self.quantity.labels(p).set(decision.current)
        self.desired.labels(p).set(decision.desired)
        self.decisions.labels(p, decision.action.value, decision.reason.value).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthState:
    """Whether the daemon is doing its work: the last successful tick is recent enough."""

    def __init__(self, max_age: float, clock: Any) -> None:
        self.max_age = max_age
        self.clock = clock
        self.started = clock.now().mono
        self.last_success: float | None = None

    def ok(self) -> tuple[bool, str]:
        now = self.clock.now().mono
        if self.last_success is None:
            if now - self.started <= self.max_age:
                return True, "starting"
            return False, "no successful tick yet"
        age = now - self.last_success
        if age > self.max_age:
            return False, f"last successful tick {age:.0f}s ago"
        return True, f"last successful tick {age:.0f}s ago"


def serve(metrics: Metrics, health: HealthState, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` in a daemon thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                body, status, ctype = metrics.render(), 200, CONTENT_TYPE_LATEST
            elif self.path.split("?")[0] == "/healthz":
                good, why = health.ok()
                body, status, ctype = (why + "\n").encode(), 200 if good else 503, "text/plain"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
