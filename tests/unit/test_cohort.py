"""The synthetic cohort of `carecoord seed-cohort`: reproducible, within each instrument's range, never in the future."""

from __future__ import annotations

from carecoord_cli.cohort import INDICATIONS, cohort


def test_the_same_seed_draws_the_same_cohort_and_another_seed_another() -> None:
    assert cohort(30, 5) == cohort(30, 5)
    assert cohort(30, 5) != cohort(30, 6)


def test_every_score_is_a_possible_total_and_every_check_in_is_after_the_dose_and_before_today() -> None:
    members = cohort(200, 11, weeks=12)
    assert {m.indication for m in members} == set(INDICATIONS)
    for m in members:
        top = INDICATIONS[m.indication][1]
        assert 0 < m.baseline <= top
        assert 7 <= m.first_dose_days_ago <= 12 * 7
        days = [day for day, _ in m.check_ins]
        assert days == sorted(days) and all(7 <= d <= m.first_dose_days_ago for d in days)
        assert all(0 <= total <= top for _, total in m.check_ins)
    # Some never check in, and the cohort is not all responders nor all non-responders.
    assert any(not m.check_ins for m in members)
    latest = [(m.baseline, m.check_ins[-1][1]) for m in members if m.check_ins and m.check_ins[-1][0] >= 28]
    assert any(last * 2 <= base for base, last in latest) and any(last * 2 > base for base, last in latest)
