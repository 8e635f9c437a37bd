from __future__ import annotations

from datetime import timedelta

import pytest

from carecoord_safety import rules
from carecoord_safety.rules import ReportFacts

RULES = rules.load()


def decide(grade: int, *symptoms: str) -> rules.Decision | None:
    return RULES.evaluate(ReportFacts(grade=grade, symptoms=symptoms or ("nausea",)))


def test_the_current_rule_file_loads_and_declares_its_version() -> None:
    assert RULES.version == rules.CURRENT_VERSION
    assert "suicidal_ideation" in RULES.red_flags


@pytest.mark.parametrize("grade", [3, 4, 5])
def test_grade_3_or_worse_opens_an_urgent_review_within_4h_and_holds(grade: int) -> None:
    decision = decide(grade)
    assert decision is not None
    assert (decision.reason, decision.priority.value, decision.due_within, decision.hold) == (
        "severe_side_effect", "urgent", timedelta(hours=4), True,
    )  # fmt: skip
    assert decision.triggers == (f"grade_{grade}",)
    assert decision.rule_version == RULES.version


def test_grade_2_opens_a_review_within_24h_without_a_hold() -> None:
    decision = decide(2)
    assert decision is not None
    assert (decision.reason, decision.priority.value, decision.due_within, decision.hold) == (
        "moderate_side_effect", "routine", timedelta(hours=24), False,
    )  # fmt: skip


def test_a_single_grade_1_report_is_recorded_only() -> None:
    assert decide(1) is None


@pytest.mark.parametrize("symptom", sorted(RULES.red_flags))
def test_any_red_flag_escalates_at_grade_1(symptom: str) -> None:
    decision = decide(1, "nausea", symptom)
    assert decision is not None and decision.hold and decision.priority.value == "urgent"
    assert decision.triggers == (f"red_flag_{symptom}",)


def test_unknown_conditions_in_a_rule_file_are_refused(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "escalation-x.toml").write_text(
        'version = "x"\nred_flag_symptoms = []\n[[rules]]\nid = "r"\nwhen = { max_grade = 1 }\n'
        'review = { reason = "r", priority = "urgent", due_within_hours = 1 }\nhold = false\n'
    )
    monkeypatch.setattr(rules, "RULES_DIR", tmp_path)
    with pytest.raises(ValueError, match="unknown conditions"):
        rules.load("x")
