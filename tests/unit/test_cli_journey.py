"""The operator CLI's journey view: trace ids from W3C traceparent, and only coded payload fields."""

from __future__ import annotations

from carecoord_cli.journey import coded_fields, trace_id, trace_url


def test_the_trace_id_is_read_from_a_w3c_traceparent() -> None:
    assert trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert (
        trace_url("4bf92f3577b34da6a3ce929d0e0e4736")
        == "http://127.0.0.1:9411/zipkin/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    )
    for absent in (None, "", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"):
        assert trace_id(absent) is None


def test_only_enumerations_numbers_yes_no_and_pattern_restricted_codes_are_shown() -> None:
    payload = {
        "report_id": "6f1c8a52-3f5e-4a0b-9d59-2d5e3c1f8e11",
        "symptoms": ["chest_pain"],
        "grade": 3,
        "escalated": True,
        "rule_version": "2026.11.1",  # a free-form string in the contract: not shown
    }
    assert coded_fields("SideEffectReported", payload) == {"symptoms": ["chest_pain"], "grade": 3, "escalated": True}
    assert coded_fields("EligibilityDetermined", {"outcome": "eligible", "time_zone": "America/Denver"}) == {
        "outcome": "eligible"
    }


def test_unknown_event_types_and_unexpected_shapes_show_nothing() -> None:
    assert coded_fields("SomethingNew", {"grade": 3}) == {}
    assert coded_fields("SideEffectReported", {"grade": {"nested": "text"}}) == {}
