"""Prometheus metrics, in a registry per app (so two apps in one process, as in tests, do not clash)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reelsense_http_requests", "HTTP requests by route and status", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "reelsense_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.stages = Histogram(
            "reelsense_stage_seconds", "Analysis time per pipeline stage (Prediction.timings_ms)", ["stage"],
            buckets=_STAGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "reelsense_errors", "Errors returned, by code", ["code"], registry=self.registry
        )
        self.jobs = Gauge("reelsense_jobs", "Jobs in the store by status", ["status"], registry=self.registry)
        self.queue_depth = Gauge(
            "reelsense_queue_depth", "Tasks waiting for a worker", registry=self.registry
        )
        self.busy_workers = Gauge(
            "reelsense_busy_workers", "Workers analysing right now", registry=self.registry
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_timings(self, timings_ms: Mapping[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stages.labels(stage).observe(ms / 1000)

    def render(self, job_counts: Mapping[str, int], queue_depth: int, busy_workers: int = 0) -> bytes:
        # Gauges are set at scrape time from the sources of truth (the store, the queue).
        for status, count in job_counts.items():
            self.jobs.labels(status).set(count)
        self.queue_depth.set(queue_depth)
        self.busy_workers.set(busy_workers)
        return generate_latest(self.registry)
