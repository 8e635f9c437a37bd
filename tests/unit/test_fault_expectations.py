"""The fault suite's own reference: the domain table's escalations, and the order check."""

from __future__ import annotations

from tests.faults.checker import Findings, _count_inversions
from tests.faults.expectations import SCENARIOS, URGENT, WITHIN_3_DAYS, WITHIN_DAY, expected, window_of


def test_the_escalation_table_of_the_domain_reference() -> None:
    assert (
        expected([(1, ("nausea",))])
        == expected([])
        == expected([(1, ("nausea",)), (1, ("dizziness",)), (1, ("nausea",))])
    )
    assert expected([(1, ("nausea",))] * 3).review_windows == {WITHIN_3_DAYS}
    assert expected([(2, ("nausea",))]).review_windows == {WITHIN_DAY}
    assert expected([(2, ("nausea",)), (2, ("dizziness",))]).review_windows == {WITHIN_DAY, WITHIN_3_DAYS}
    for grade in (3, 4, 5):
        assert expected([(grade, ("nausea",))]) == expected([(1, ("chest_pain",))])
        assert expected([(grade, ("nausea",))]).review_windows == {URGENT} and expected([(grade, ("nausea",))]).hold
    assert not expected([(2, ("nausea",))]).hold


def test_the_scenarios_cover_every_grade_and_every_outcome() -> None:
    assert {grade for scenario in SCENARIOS for grade, _ in scenario} == {1, 2, 3, 4, 5}
    outcomes = [expected(s) for s in SCENARIOS]
    assert {w for o in outcomes for w in o.review_windows} == {URGENT, WITHIN_DAY, WITHIN_3_DAYS}
    assert any(not o.review_windows for o in outcomes) and any(o.hold for o in outcomes)


def test_a_review_falls_in_the_window_of_its_due_time() -> None:
    assert [window_of(h) for h in (3.99, 4, 23.5, 24, 71, 72)] == [
        URGENT,
        URGENT,
        WITHIN_DAY,
        WITHIN_DAY,
        WITHIN_3_DAYS,
        WITHIN_3_DAYS,
    ]


def test_an_event_handled_before_an_earlier_one_is_reordered() -> None:
    findings = Findings()
    _count_inversions(findings, [("A", 1), ("B", 2), ("C", 2), ("D", 5)], "in order")
    assert findings.counts["reordered"] == 0
    _count_inversions(findings, [("A", 1), ("B", 3), ("C", 2)], "C before B")
    assert findings.counts["reordered"] == 1
