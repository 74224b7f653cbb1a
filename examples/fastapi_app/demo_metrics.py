"""The demo's observability: OpenTelemetry metrics in Prometheus format at ``GET /metrics``,
the systemic-cause detector, and (optionally) a JSON event log.

- ``AUTHGUARD_DEMO_METRICS`` = ``1`` (default): metrics on; ``0``: off (no ``/metrics``).
- ``AUTHGUARD_DEMO_EVENT_LOG``: a file to append the JSON event log to (what
  ``authguard report`` reads); unset: none.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from authguard import Public, protect
from authguard.observability import AuthMetrics, Detector, EventFormatter, Observability

try:  # the SDK, its Prometheus reader and the text format: pip install 'authguard[prometheus]'
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
except ImportError:  # pragma: no cover - the demo then runs without /metrics
    PrometheusMetricReader = None  # type: ignore[assignment,misc]


def make() -> tuple[Observability, Any]:
    """What the demo's guard reports — metrics (when on) and the detector — and the
    Prometheus registry ``/metrics`` renders (``None`` when metrics are off). A registry
    per app: a test may build the app twice in one process."""
    metrics = registry = None
    if os.environ.get("AUTHGUARD_DEMO_METRICS", "1") != "0" and (
            PrometheusMetricReader is not None):
        registry = CollectorRegistry()
        reader = PrometheusMetricReader(registry=registry)
        metrics = AuthMetrics(MeterProvider(metric_readers=[reader]), time_refusals=True)
        # the decision-time histogram, tallied in process, as a Prometheus histogram
        registry.register(metrics.prometheus_collector())
    path = os.environ.get("AUTHGUARD_DEMO_EVENT_LOG")
    if path:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(EventFormatter())
        logger = logging.getLogger("authguard")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return Observability(metrics=metrics, detector=Detector(window=300)), registry


def setup(app: FastAPI, registry: Any) -> None:
    """Add ``GET /metrics`` (public, Prometheus text format) when metrics are on."""
    if registry is None:
        return

    @app.get("/metrics", include_in_schema=False)
    @protect(Public)
    async def metrics() -> Response:
        """The Prometheus text exposition of authguard's metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
