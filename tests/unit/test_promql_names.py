"""The metric names the live-stack test looks for are read out of PromQL correctly (tests/promql.py)."""

from __future__ import annotations

import pytest

from tests.promql import exported_names, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("carecoord_consumer_lag", {"carecoord_consumer_lag"}),
        (
            'max by (service, topic, partition) (carecoord_consumer_lag{topic="safety.holds"})',
            {"carecoord_consumer_lag"},
        ),
        ("sum without (instance) (rate(carecoord_events_consumed_total[5m]))", {"carecoord_events_consumed_total"}),
        (
            "histogram_quantile(0.95, sum by (le, priority) (rate(carecoord_review_time_to_acknowledge_seconds_bucket[1h])))",
            {"carecoord_review_time_to_acknowledge_seconds_bucket"},
        ),
        (
            "sum by (service, reason) (increase(a_total[10m])) > 0 or ((sum by (service, reason) (a_total)"
            ' unless sum by (service, reason) (a_total offset 10m)) and on (service) max by (service) (up{job="x"} offset 10m))',
            {"a_total", "up"},
        ),
        ("a / on (service) group_left (topic) b > bool 1", {"a", "b"}),
        ('x{reason="by (service) sum(y) }"}', {"x"}),  # a label value is text, whatever it says
        ('{__name__="named_by_matcher", job="x"}', {"named_by_matcher"}),
        ("rate(x_total[$__rate_interval]) * on (service) $scale", {"x_total"}),
        ("max_over_time(deriv(g[5m:1m])[1h:]) - g offset 1h30m", {"g"}),
        ('count_values("by", level:recorded:rule) + topk(3, z)', {"level:recorded:rule", "z"}),
        ("vector(1) + time() - 2e3", set()),
    ],
)
def test_metric_names_are_found_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_exported_names_are_the_sample_names_of_the_text_format() -> None:
    text = """# HELP carecoord_deadletters_total Messages dead-lettered
# TYPE carecoord_deadletters_total counter
carecoord_deadletters_total{reason="invalid_envelope"} 1.0
carecoord_outbox_backlog 0.0
h_seconds_bucket{le="+Inf"} 1.0
h_seconds_count 1.0
"""
    assert exported_names(text) == {
        "carecoord_deadletters_total",
        "carecoord_outbox_backlog",
        "h_seconds_bucket",
        "h_seconds_count",
    }
