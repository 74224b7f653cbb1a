"""Refusals you can see: structured events, OpenTelemetry metrics and the systemic-cause
detector (``docs/observability.md``).

``AuthGuard(observability=Observability(metrics=AuthMetrics(), detector=Detector()))``
turns everything on; without it, each refusal is still logged as an event.
"""

from __future__ import annotations

from .detector import FIXES, Detector
from .events import AuthEvent, Finding
from .metrics import AuthMetrics
from .observer import (
    EventFormatter,
    EventHook,
    Observability,
    record_allowed,
    record_refusal,
)
from .safety import route_template, safe_text
from .tokens import TokenFacts

__all__ = [
    "FIXES",
    "AuthEvent",
    "AuthMetrics",
    "Detector",
    "EventFormatter",
    "EventHook",
    "Finding",
    "Observability",
    "TokenFacts",
    "record_allowed",
    "record_refusal",
    "route_template",
    "safe_text",
]
