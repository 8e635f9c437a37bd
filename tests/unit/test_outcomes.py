"""Outcome figures (dosing's outcomes.py) under outcomes-2026.12.0.toml, worked by hand from the definitions.

PHQ-9: response >= 50 % below baseline, remission < 5, reliable change >= 5 points; GAD-7: remission < 5,
reliable change >= 4; PCL-5: remission < 33, reliable change >= 10. Improved at 4 weeks: the follow-up
nearest day 28 within days 21-35 after the first dose, at least the reliable change below baseline.
"""

from __future__ import annotations

import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carecoord_contracts.common import Indication, Instrument
from carecoord_dosing import outcomes
from carecoord_dosing.outcomes import PatientFacts, Score

DEFS = outcomes.load_outcomes()
DOSE = datetime(2026, 10, 1, 9, tzinfo=UTC)
AS_OF = DOSE + timedelta(days=60)


def day(n: float) -> datetime:
    return DOSE + timedelta(days=n)


def patient(
    indication: Indication = Indication.depression,
    *,
    baseline: int | None = 20,
    follow_ups: dict[float, int] | None = None,
    dose: datetime | None = DOSE,
    instrument: Instrument = Instrument.phq9,
) -> PatientFacts:
    return PatientFacts(
        patient_id=uuid.uuid4(),
        indication=indication,
        first_dose_at=dose,
        intake={instrument: [Score(day(-10), baseline)]} if baseline is not None else {},
        check_ins={instrument: [Score(day(d), t) for d, t in (follow_ups or {}).items()]},
    )


def phq9(facts: PatientFacts) -> outcomes.InstrumentOutcome:
    return outcomes.instrument_outcome(facts, Instrument.phq9, DEFS)


def test_the_definitions_in_force_are_the_domain_references_with_sources() -> None:
    phq, gad, pcl = (DEFS.instruments[i] for i in (Instrument.phq9, Instrument.gad7, Instrument.pcl5))
    assert (phq.response_reduction, phq.remission_below, phq.reliable_change_points) == (0.5, 5, 5)
    assert (gad.remission_below, gad.reliable_change_points) == (5, 4)
    assert (pcl.remission_below, pcl.reliable_change_points) == (33, 10)
    assert "National Center for PTSD" in pcl.sources["remission"]
    assert all(set(d.sources) == {"response", "remission", "reliable_change"} for d in DEFS.instruments.values())
    assert DEFS.window == (21, 35)
    assert DEFS.instrument_for(Indication.ptsd) is Instrument.pcl5


def test_baseline_latest_change_response_and_time_to_response() -> None:
    # 20 -> 14 (day 7, -30 %) -> 10 (day 14, exactly -50 %: response) -> 12 (day 21, -40 %: no longer)
    o = phq9(patient(follow_ups={7: 14, 14: 10, 21: 12}))
    assert (o.baseline, o.latest and o.latest.total, o.change_points, o.change_percent) == (20, 12, -8, -40.0)
    assert o.response is False  # at the latest follow-up
    assert o.response_at == day(14)
    assert o.days_to_response == 14.0
    assert o.remission is False and o.remission_at is None


def test_remission_is_below_the_cut_off_not_at_it() -> None:
    assert phq9(patient(follow_ups={10: 5})).remission is False
    o = phq9(patient(follow_ups={10: 5, 20: 4}))
    assert o.remission is True and o.remission_at == day(20)


def test_a_score_before_the_first_dose_is_no_follow_up() -> None:
    o = phq9(patient(follow_ups={-2: 3}))
    assert o.follow_ups == () and o.response is None and o.remission is None and o.latest is None


def test_without_a_first_dose_nothing_is_followed_up() -> None:
    o = phq9(patient(dose=None, follow_ups={5: 3}))
    assert o.baseline == 20 and o.follow_ups == () and o.response is None


def test_a_baseline_of_zero_cannot_respond() -> None:
    assert phq9(patient(baseline=0, follow_ups={7: 0})).response is False


def test_the_baseline_is_the_latest_intake_score_before_the_dose_else_the_earliest_after() -> None:
    scores = [Score(day(-20), 22), Score(day(-5), 18), Score(day(3), 9)]
    assert outcomes.baseline(scores, DOSE) == Score(day(-5), 18)
    assert outcomes.baseline([Score(day(4), 9), Score(day(2), 11)], DOSE) == Score(day(2), 11)


def test_pcl5_remission_and_reliable_change_use_its_own_cut_offs() -> None:
    facts = patient(Indication.ptsd, baseline=50, follow_ups={28: 40}, instrument=Instrument.pcl5)
    o = outcomes.instrument_outcome(facts, Instrument.pcl5, DEFS)
    assert o.remission is False  # 40 >= 33
    assert outcomes.improved_at_4_weeks(o, DEFS) is True  # a 10-point drop
    facts = patient(Indication.ptsd, baseline=50, follow_ups={28: 41}, instrument=Instrument.pcl5)
    assert outcomes.improved_at_4_weeks(outcomes.instrument_outcome(facts, Instrument.pcl5, DEFS), DEFS) is False
    facts = patient(Indication.ptsd, baseline=50, follow_ups={30: 32}, instrument=Instrument.pcl5)
    assert outcomes.instrument_outcome(facts, Instrument.pcl5, DEFS).remission is True


def test_improved_at_4_weeks_takes_the_follow_up_nearest_day_28_in_the_window() -> None:
    # day 22: 14 (a 6-point drop), day 33: 17 (3 points): 33 is nearer 28 (5 days) than 22 (6 days)
    assert outcomes.improved_at_4_weeks(phq9(patient(follow_ups={22: 14, 33: 17})), DEFS) is False
    # equally near (day 25 and 31): the later one counts
    assert outcomes.improved_at_4_weeks(phq9(patient(follow_ups={25: 19, 31: 15})), DEFS) is True
    # only outside the window: not measured (None), never improved
    assert outcomes.improved_at_4_weeks(phq9(patient(follow_ups={14: 2, 40: 2})), DEFS) is None


def test_program_figures_count_their_cohorts() -> None:
    cohort = [
        patient(follow_ups={28: 8}),  # improved, responder (20 -> 8 is -60 %), no remission
        patient(follow_ups={28: 3}),  # improved, responder and remitter
        patient(follow_ups={27: 18}),  # measured, not improved (2 points)
        patient(follow_ups={7: 15}),  # followed up, but not in the window
        patient(follow_ups={}),  # eligible without any follow-up
        patient(baseline=None, follow_ups={28: 3}),  # no baseline: not eligible
        patient(dose=AS_OF - timedelta(days=10), follow_ups={}),  # window not closed: not due
        patient(Indication.anxiety, baseline=15, follow_ups={28: 11}, instrument=Instrument.gad7),  # improved (4)
    ]
    program = outcomes.program_outcomes(cohort, DEFS, as_of=AS_OF)
    figures = {(f.figure, f.indication): f for f in program.figures}
    cohorts = {c.indication: c for c in program.cohorts}
    dep = cohorts[Indication.depression]
    assert (dep.enrolled, dep.eligible, dep.with_follow_up, dep.without_follow_up) == (7, 6, 4, 2)
    assert (dep.due_at_4_weeks, dep.measured_at_4_weeks, dep.not_measured_at_4_weeks) == (5, 3, 2)
    improved = figures[("improved_at_4_weeks", Indication.depression)]
    assert (improved.numerator, improved.denominator, improved.value) == (2, 3, 0.6667)
    assert improved.definition_version == "2026.12.0"
    of_all = figures[("improved_at_4_weeks_of_all_due", Indication.depression)]
    assert (of_all.numerator, of_all.denominator) == (2, 5)
    response = figures[("response_rate", Indication.depression)]
    assert (response.numerator, response.denominator) == (2, 4)
    remission = figures[("remission_rate", Indication.depression)]
    assert (remission.numerator, remission.denominator) == (1, 4)
    overall = figures[("improved_at_4_weeks", None)]
    assert (overall.numerator, overall.denominator) == (3, 4)
    assert figures[("response_rate", Indication.ptsd)].value is None  # nobody: no figure, not 0 %


def test_weekly_series_takes_each_patients_last_follow_up_of_the_week() -> None:
    cohort = [patient(follow_ups={1: 18, 6: 10, 8: 4}), patient(follow_ups={6: 16})]
    weeks = {w.week: w for w in outcomes.program_outcomes(cohort, DEFS, as_of=AS_OF).weeks}
    assert (weeks[0].patients, weeks[0].median_total, weeks[0].responding) == (2, 13.0, 1)
    assert (weeks[1].patients, weeks[1].remitted) == (1, 1)


def test_suppression_withholds_small_cells() -> None:
    cohort = [patient(follow_ups={28: 3}) for _ in range(12)] + [patient(follow_ups={28: 19}) for _ in range(2)]
    shown = outcomes.suppress(outcomes.program_outcomes(cohort, DEFS, as_of=AS_OF), 11)
    figures = {(f.figure, f.indication): f for f in shown.figures}
    improved = figures[("improved_at_4_weeks", Indication.depression)]
    # 12 of 14 improved: the 2 not improved are a small cell, so the figure is withheld
    assert improved.suppressed and improved.numerator is None and improved.value is None
    assert len(shown.cohorts) == 4  # no cohort count is 1-10 (zeros single nobody out)
    one_unmeasured = outcomes.program_outcomes(cohort + [patient(follow_ups={})], DEFS, as_of=AS_OF)
    assert [c.indication for c in outcomes.suppress(one_unmeasured, 11).cohorts] == [
        Indication.ptsd,
        Indication.anxiety,
    ]
    assert shown.weeks == []  # week 4: 14 patients, 2 of them not responding
    unsuppressed = outcomes.suppress(outcomes.program_outcomes(cohort[:12], DEFS, as_of=AS_OF), 11)
    kept = {(f.figure, f.indication): f for f in unsuppressed.figures}[("remission_rate", Indication.depression)]
    assert (kept.suppressed, kept.numerator, kept.denominator) == (False, 12, 12)


def test_a_definition_without_a_source_or_under_another_version_is_refused(tmp_path: Path) -> None:
    text = (outcomes.CONFIG_DIR / f"outcomes-{outcomes.CURRENT_OUTCOMES}.toml").read_text()
    assert tomllib.loads(text)["version"] == outcomes.CURRENT_OUTCOMES
    unsourced = text.replace('version = "2026.12.0"', 'version = "9999.1.0"').replace("remission_source = ", "x = ", 1)
    (tmp_path / "outcomes-9999.1.0.toml").write_text(unsourced)
    with pytest.raises(ValueError, match="source"):
        outcomes.load_outcomes("9999.1.0", tmp_path)
    (tmp_path / "outcomes-9999.2.0.toml").write_text(text)
    with pytest.raises(ValueError, match="declares version"):
        outcomes.load_outcomes("9999.2.0", tmp_path)
    unwindowed = text.replace('version = "2026.12.0"', 'version = "9999.3.0"').replace(
        "window_before_days = 7", "window_before_days = 28"
    )
    (tmp_path / "outcomes-9999.3.0.toml").write_text(unwindowed)
    with pytest.raises(ValueError, match="window"):
        outcomes.load_outcomes("9999.3.0", tmp_path)
