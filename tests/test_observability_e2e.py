"""The example app's ``GET /metrics`` under real uvicorn, parsed back with
``prometheus_client``'s text parser, after a scripted mix of good and bad clients."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import uvicorn_server
from rawasgi import http, load_example_app
from tokens import SETTINGS, bearer, mint

pytestmark = pytest.mark.e2e


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for lab, v in samples if all(lab.get(k) == x for k, x in labels.items()))


def test_metrics_after_a_scripted_mix_of_clients(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_EVENT_LOG": str(log)}) as base, \
            httpx.Client(base_url=base, timeout=10) as c:
        for _ in range(3):
            assert c.get("/me").status_code == 401
        assert c.get("/me", headers=bearer(mint("alice"))).status_code == 200
        assert c.get("/me", auth=("bob", "builder")).status_code == 200
        assert c.get("/admin", auth=("alice", "wonderland")).status_code == 403
        now = int(time.time())
        for _ in range(5):  # a client whose tokens come from a clock 90 s ahead
            token = mint("alice", iat=now + 90, nbf=now + 90, azp="skewed-client")
            assert c.get("/me", headers=bearer(token)).status_code == 401
        for _ in range(5):  # a deployment minting tokens without an audience
            token = mint("alice", aud=None, azp="no-audience-client")
            assert c.get("/reports", headers=bearer(token)).status_code == 401
        r = c.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
    s = _samples(text)
    refusals = s["authguard_refusals_total"]
    assert _value(refusals, reason="credentials_missing", status="401", scheme="none",
                  route="/me") == 3
    assert _value(refusals, reason="forbidden", status="403", route="/admin") == 1
    assert _value(refusals, reason="token_not_yet_valid", scheme="Bearer", route="/me") == 5
    assert _value(refusals, route="/reports", scheme="Bearer") == 5
    assert all(set(lab) >= {"reason", "status", "scheme", "route"} for lab, _ in refusals)
    allowed = s["authguard_allowed_total"]
    assert _value(allowed, scheme="Bearer") == 1 and _value(allowed, scheme="Basic") >= 1
    assert _value(s["authguard_decision_duration_seconds_count"], outcome="refused") == 14
    # a real Prometheus histogram: cumulative buckets up to +Inf, and a sum
    buckets = s["authguard_decision_duration_seconds_bucket"]
    assert _value(buckets, outcome="refused", le="+Inf") == 14
    refused_le = sorted((float(lab["le"]), v) for lab, v in buckets
                        if lab["outcome"] == "refused")
    assert [v for _, v in refused_le] == sorted(v for _, v in refused_le)
    assert 0 < _value(s["authguard_decision_duration_seconds_sum"], outcome="refused") < 14
    findings = s["authguard_findings_total"]
    assert _value(findings, finding="clock_skew") == 1
    assert _value(findings, finding="wrong_audience") == 1
    assert "authguard_cache_size" in s and "authguard_bruteforce_blocked" in s
    # the findings, named with their fix, in the JSON event log
    lines = log.read_text().splitlines()
    named = {f["finding"]: f for f in map(json.loads, lines) if f.get("event") == "finding"}
    assert set(named) == {"clock_skew", "wrong_audience"}
    skew = named["clock_skew"]
    assert skew["key"] == "client skewed-client" and "NTP" in skew["fix"]
    assert 88 <= skew["measured"]["skew_seconds"] <= 90  # the measured skew
    audience = named["wrong_audience"]
    assert audience["key"] == "client no-audience-client" and "RFC 8707" in audience["fix"]
    assert SETTINGS.jwt_secret not in log.read_text()
    assert "wonderland" not in log.read_text() and "builder" not in log.read_text()
    assert "eyJ" not in log.read_text()  # no token either


async def test_metrics_can_be_turned_off_in_the_demo() -> None:
    on = load_example_app("app_metrics_on", {})
    off = load_example_app("app_metrics_off", {"AUTHGUARD_DEMO_METRICS": "0"})
    await http(on.app, "GET", "/me")
    answer = await http(on.app, "GET", "/metrics")
    assert answer.status == 200 and b"authguard_refusals_total{" in answer.body
    assert off.guard.observability.metrics is None
    assert (await http(off.app, "GET", "/metrics")).status == 404
