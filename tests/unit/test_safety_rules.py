"""Every row of the escalation table (shared/docs/domain.md), at and just past each threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carecoord_safety import rules
from carecoord_safety.rules import Mood, SideEffect, Vitals

RULES = rules.load()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def report(grade: int, *symptoms: str, days_ago: float = 0) -> SideEffect:
    return SideEffect(at=NOW - timedelta(days=days_ago), grade=grade, symptoms=symptoms or ("nausea",))


def reviews(assessment: rules.Assessment) -> dict[str, tuple[str, int, bool]]:
    return {r.reason: (r.priority.value, int(r.due_within.total_seconds() // 3600), r.hold) for r in assessment.reviews}


def test_the_current_rule_file_loads_and_declares_its_version() -> None:
    assert RULES.version == rules.CURRENT_VERSION == "2026.12.1"
    assert set(rules.available_versions()) >= {"2026.11.1", "2026.11.2", "2026.12.0", "2026.12.1"}


# --- grade >= 3 or a red flag: urgent review (<= 4 h) and hold ---


def test_grade_2_is_not_severe() -> None:
    assert "severe_side_effect" not in reviews(RULES.assess(report(2)))


@pytest.mark.parametrize("grade", [3, 4, 5])
def test_grade_3_or_worse_opens_an_urgent_review_within_4h_and_holds(grade: int) -> None:
    assessment = RULES.assess(report(grade))
    assert reviews(assessment) == {"severe_side_effect": ("urgent", 4, True)}
    assert assessment.triggers == (f"grade_{grade}",) and assessment.hold
    assert assessment.rule_version == "2026.12.1"
    # grade 4 is life-threatening: the patient is told to seek emergency care; grade 3 is not told so
    assert assessment.advice == (("seek_emergency_care",) if grade >= 4 else ())


@pytest.mark.parametrize("symptom", sorted(RULES.red_flags))
def test_any_red_flag_escalates_even_at_grade_1(symptom: str) -> None:
    assessment = RULES.assess(report(1, "nausea", symptom))
    assert reviews(assessment) == {"severe_side_effect": ("urgent", 4, True)}
    assert f"red_flag_{symptom}" in assessment.triggers


def test_severe_and_red_flag_together_make_one_review_with_both_triggers() -> None:
    assessment = RULES.assess(report(4, "chest_pain"))
    [review] = assessment.reviews
    assert review.rule_ids == ("red_flag_symptom", "emergency_symptom", "grade_3_or_worse", "grade_4_or_worse")
    assert review.triggers == ("red_flag_chest_pain", "grade_4")


# --- PHQ-9 item 9 > 0 on any check-in: urgent review and hold ---


def test_phq9_item9_zero_does_not_escalate() -> None:
    assert RULES.assess(Mood(at=NOW, phq9_item9=0, phq9_total=22)).reviews == ()


@pytest.mark.parametrize("answer", [1, 2, 3])
def test_phq9_item9_above_zero_is_urgent_with_a_hold(answer: int) -> None:
    assessment = RULES.assess(Mood(at=NOW, phq9_item9=answer))
    assert reviews(assessment) == {"suicide_risk": ("urgent", 4, True)}
    assert assessment.triggers == (f"phq9_item9_{answer}",)


def test_a_checkin_without_phq9_does_not_escalate() -> None:
    assert RULES.assess(Mood(at=NOW, pcl5_total=60)).reviews == ()


# --- grade 2: review (<= 24 h), no hold ---


def test_a_single_grade_2_opens_a_review_within_24h_without_hold() -> None:
    assessment = RULES.assess(report(2))
    assert reviews(assessment) == {"moderate_side_effect": ("routine", 24, False)}
    assert not assessment.hold


def test_a_single_grade_1_is_recorded_only() -> None:
    assessment = RULES.assess(report(1))
    assert assessment.reviews == () and assessment.fired == ()


# --- >= 3 grade-1 reports of the same symptom within 7 days: review (<= 72 h) ---


def test_two_grade_1_reports_of_a_symptom_are_not_enough() -> None:
    assert RULES.assess(report(1), [report(1, days_ago=1)]).reviews == ()


def test_three_grade_1_reports_of_a_symptom_within_7_days_open_a_review() -> None:
    assessment = RULES.assess(report(1), [report(1, days_ago=7), report(1, days_ago=3)])
    assert reviews(assessment) == {"repeated_side_effect": ("routine", 72, False)}
    assert assessment.triggers == ("nausea_x3_in_7d",)


def test_a_report_just_outside_7_days_does_not_count() -> None:
    assert RULES.assess(report(1), [report(1, days_ago=7 + 1 / 1440), report(1, days_ago=3)]).reviews == ()


def test_three_grade_1_reports_of_different_symptoms_do_not_count() -> None:
    assert (
        RULES.assess(
            report(1, "nausea"), [report(1, "dizziness", days_ago=1), report(1, "headache", days_ago=2)]
        ).reviews
        == ()
    )


def test_grade_2_reports_do_not_count_towards_the_grade_1_window() -> None:
    assessment = RULES.assess(report(1), [report(2, days_ago=1), report(2, days_ago=2)])
    assert assessment.reviews == ()


# --- >= 2 grade-2 reports within 14 days: review (<= 72 h) ---


def test_two_grade_2_reports_within_14_days_add_a_repeated_review() -> None:
    assessment = RULES.assess(report(2, "dizziness"), [report(2, "nausea", days_ago=14)])
    assert reviews(assessment) == {
        "moderate_side_effect": ("routine", 24, False),
        "repeated_side_effect": ("routine", 72, False),
    }
    assert "grade_2_x2_in_14d" in assessment.triggers


def test_a_grade_2_report_just_outside_14_days_does_not_count() -> None:
    assessment = RULES.assess(report(2), [report(2, days_ago=14 + 1 / 1440)])
    assert reviews(assessment) == {"moderate_side_effect": ("routine", 24, False)}


# --- blood pressure (mmHg; systolic or diastolic at or above) ---


def bp(systolic: int, diastolic: int, context: str = "pre_dose") -> rules.Assessment:
    return RULES.assess(Vitals(at=NOW, systolic=systolic, diastolic=diastolic, context=context))


def test_pre_dose_below_140_90_is_within_limits() -> None:
    assessment = bp(139, 89)
    assert not assessment.out_of_limits and assessment.reviews == ()


@pytest.mark.parametrize(("systolic", "diastolic"), [(140, 80), (120, 90)])
def test_pre_dose_at_140_90_holds_the_session_without_review(systolic: int, diastolic: int) -> None:
    assessment = bp(systolic, diastolic)
    assert assessment.out_of_limits and assessment.reviews == ()


def test_140_90_after_the_dose_is_not_a_pre_dose_hold() -> None:
    assert not bp(150, 95, context="post_dose").out_of_limits


def test_just_below_160_100_opens_no_review() -> None:
    assert bp(159, 99, context="post_dose").reviews == ()


@pytest.mark.parametrize(("systolic", "diastolic"), [(160, 90), (150, 100), (179, 109)])
def test_160_100_opens_a_review_without_hold(systolic: int, diastolic: int) -> None:
    assessment = bp(systolic, diastolic, context="post_dose")
    assert reviews(assessment) == {"high_blood_pressure": ("high", 24, False)}
    assert assessment.out_of_limits
    assert assessment.advice == (), "below the crisis range the patient is not sent to the emergency department"


@pytest.mark.parametrize(("systolic", "diastolic"), [(180, 100), (150, 110), (220, 130)])
def test_180_110_is_a_crisis_urgent_review_with_hold(systolic: int, diastolic: int) -> None:
    assessment = bp(systolic, diastolic, context="routine")
    assert reviews(assessment) == {"high_blood_pressure": ("urgent", 4, True)}
    assert assessment.rule_version == "2026.12.1"
    assert assessment.advice == ("seek_emergency_care",), "the rule calls for guidance to seek emergency care"


# --- the blood-pressure rule's symptoms (domain.md): red flags, with emergency advice ---

EMERGENCY = [
    "chest_pain",
    "severe_headache",
    "shortness_of_breath",
    "breathing_difficulty",
    "confusion",
    "loss_of_consciousness",
]


@pytest.mark.parametrize("symptom", EMERGENCY)
def test_the_symptoms_the_blood_pressure_rule_names_are_urgent_with_a_hold_and_emergency_advice(symptom: str) -> None:
    assessment = RULES.assess(report(1, symptom))
    assert reviews(assessment) == {"severe_side_effect": ("urgent", 4, True)}
    assert f"red_flag_{symptom}" in assessment.triggers
    assert assessment.advice == ("seek_emergency_care",)


def test_a_plain_headache_is_not_a_severe_headache() -> None:
    assessment = RULES.assess(report(1, "headache"))
    assert assessment.reviews == () and assessment.advice == () and assessment.unknown_symptoms == ()


def test_red_flags_without_emergency_advice_still_escalate_without_it() -> None:
    assessment = RULES.assess(report(1, "blood_in_urine"))
    assert reviews(assessment) == {"severe_side_effect": ("urgent", 4, True)} and assessment.advice == ()


def test_the_version_before_missed_severe_headache_and_confusion() -> None:
    """What 2026.12.1 fixes: under 2026.11.2 these reports escalated nothing and advised nothing."""
    old = rules.load("2026.11.2")
    for symptom in ("severe_headache", "confusion", "shortness_of_breath"):
        assert old.assess(report(1, symptom)).reviews == ()
        assert RULES.assess(report(1, symptom)).hold


# --- the symptom vocabulary; an unknown code is flagged for a clinician ---


def test_the_vocabulary_names_every_red_flag_and_labels_each_code() -> None:
    by_code = {s.code: s for s in RULES.symptoms()}
    assert RULES.red_flags <= by_code.keys()
    assert {c for c, s in by_code.items() if s.red_flag} == RULES.red_flags
    assert by_code["severe_headache"].label == "Severe headache" and by_code["severe_headache"].advice == (
        "seek_emergency_care",
    )
    assert by_code["nausea"].red_flag is False and by_code["nausea"].advice == ()
    assert all(s.label for s in by_code.values())


def test_an_unknown_symptom_code_opens_a_routine_review_naming_it() -> None:
    assessment = RULES.assess(report(1, "nausea", "tingling_lips"))
    assert reviews(assessment) == {"unrecognised_symptom": ("routine", 24, False)}
    assert assessment.unknown_symptoms == ("tingling_lips",)
    assert assessment.triggers == ("unknown_symptom_tingling_lips",)


def test_known_codes_only_open_no_unknown_review() -> None:
    assessment = RULES.assess(report(1, "nausea", "dizziness"))
    assert assessment.reviews == () and assessment.unknown_symptoms == ()


def test_an_unknown_code_beside_a_red_flag_is_flagged_too() -> None:
    assessment = RULES.assess(report(2, "chest_pain", "zz_new"))
    assert set(reviews(assessment)) == {"severe_side_effect", "moderate_side_effect", "unrecognised_symptom"}
    assert assessment.unknown_symptoms == ("zz_new",)


def test_a_64_character_unknown_code_gives_a_trigger_that_is_still_a_short_code() -> None:
    code = "x" * 64
    assessment = RULES.assess(report(1, code))
    [trigger] = assessment.triggers
    assert len(trigger) == 64 and trigger.startswith("unknown_symptom_x")
    assert assessment.unknown_symptoms == (code,)


def test_an_older_version_has_no_vocabulary_and_flags_nothing() -> None:
    old = rules.load("2026.11.2")
    assert old.symptoms() == [] and old.assess(report(1, "tingling_lips")).unknown_symptoms == ()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('red_flag_symptoms = ["chest_pain"]\n[symptoms]\nnausea = "Nausea"\n', "not in \\[symptoms\\]"),
        ('[symptoms]\n"Bad Code" = "x"\n', "snake_case"),
    ],
)
def test_a_vocabulary_that_misses_a_code_its_rules_name_is_refused(
    tmp_path, monkeypatch, extra: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "escalation-x.toml").write_text(
        f'version = "x"\n{extra}[[rules]]\nid = "r"\non = "side_effect"\nwhen = {{ any_red_flag = true }}\n'
    )
    monkeypatch.setattr(rules, "RULES_DIR", tmp_path)
    with pytest.raises(rules.RuleFileError, match=message):
        rules.load("x")


# --- timers and versions are configuration too ---


def test_check_in_timers_come_from_the_rule_file() -> None:
    assert RULES.timers.checkin_missed_after == timedelta(hours=4)
    assert RULES.timers.checkin_review_after == timedelta(hours=8)
    assert RULES.timers.checkin_review is not None and RULES.timers.checkin_review.reason == "missed_check_in"
    no_show = RULES.timers.no_show_review
    assert no_show is not None and (no_show.reason, no_show.priority.value, no_show.due_within) == (
        "dosing_session_no_show",
        "high",
        timedelta(hours=24),
    )
    assert rules.load("2026.11.2").timers.no_show_review is None


def test_an_older_version_still_decides_as_it_did() -> None:
    old = rules.load("2026.11.1")
    assert old.assess(report(1), [report(1, days_ago=1), report(1, days_ago=2)]).reviews == ()
    assert RULES.assess(report(1), [report(1, days_ago=1), report(1, days_ago=2)]).reviews != ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('on = "side_effect"\nwhen = { max_grade = 1 }', "unknown conditions"),
        ('on = "weather"\nwhen = {}', "'on' must be one of"),
        ('on = "side_effect"\nwhen = { reports_at_least = 2 }', "needs within_days"),
        ('on = "vitals"\nwhen = { context = "pre_dose" }', "needs systolic_at_least"),
    ],
)
def test_a_malformed_rule_file_is_refused_with_the_reason(tmp_path, monkeypatch, body: str, message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "escalation-x.toml").write_text(f'version = "x"\n[[rules]]\nid = "r"\n{body}\n')
    monkeypatch.setattr(rules, "RULES_DIR", tmp_path)
    with pytest.raises(rules.RuleFileError, match=message):
        rules.load("x")


def test_the_contract_docs_name_the_vocabulary_of_the_version_in_force() -> None:
    """SideEffectReported's field description (docs/events.md, AsyncAPI) lists the codes the rules know."""
    import re as _re

    from carecoord_contracts.safety import SYMPTOM_CODES

    assert f"({RULES.version}:" in SYMPTOM_CODES
    listed = set(_re.findall(r"[a-z][a-z0-9_]+", SYMPTOM_CODES.split(f"({RULES.version}:", 1)[1].split(")", 1)[0]))
    assert {s.code for s in RULES.symptoms()} <= listed
    assert {c for c in listed if c not in {"red", "flags"}} <= {s.code for s in RULES.symptoms()}
