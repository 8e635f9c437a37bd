from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecoord_contracts.common import Instrument
from carecoord_intake import scoring
from carecoord_intake.scoring import GAD7, PCL5, PHQ9, SPECS


def answers_summing_to(spec: scoring.InstrumentSpec, total: int) -> list[int]:
    out = []
    for _ in range(spec.items):
        item = min(spec.max_item, total)
        out.append(item)
        total -= item
    assert total == 0
    return out


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately_severe"),
        (19, "moderately_severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_band_edges(total: int, band: str) -> None:
    result = scoring.score(Instrument.phq9, answers_summing_to(PHQ9, total))
    assert (result.total, result.severity_band, result.loinc_code) == (total, band, "44261-6")


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_edges(total: int, band: str) -> None:
    result = scoring.score(Instrument.gad7, answers_summing_to(GAD7, total))
    assert (result.total, result.severity_band, result.loinc_code) == (total, band, "70274-6")
    assert result.item9_positive is None and result.provisional_ptsd is None


@pytest.mark.parametrize(
    ("total", "band"), [(0, "below_threshold"), (32, "below_threshold"), (33, "probable_ptsd"), (80, "probable_ptsd")]
)
def test_pcl5_probable_ptsd_cut_off(total: int, band: str) -> None:
    assert scoring.score(Instrument.pcl5, answers_summing_to(PCL5, total)).severity_band == band


@pytest.mark.parametrize(("item9", "positive"), [(0, False), (1, True), (2, True), (3, True)])
def test_phq9_item9_flag(item9: int, positive: bool) -> None:
    assert scoring.score(Instrument.phq9, [0] * 8 + [item9]).item9_positive is positive
    # Item 9 is the last item only: a high answer elsewhere does not raise the flag.
    assert scoring.score(Instrument.phq9, [3] * 8 + [0]).item9_positive is False


def pcl5(**rated: int) -> list[int]:
    """PCL-5 answers with the given 1-based items (item_<n>=rating), all others 0."""
    answers = [0] * 20
    for name, rating in rated.items():
        answers[int(name.removeprefix("item_")) - 1] = rating
    return answers


MINIMAL_DIAGNOSIS = {"item_1": 2, "item_6": 2, "item_8": 2, "item_9": 2, "item_15": 2, "item_16": 2}


def test_pcl5_provisional_diagnosis_needs_1_b_1_c_2_d_2_e_rated_2_or_more() -> None:
    assert scoring.pcl5_provisional_diagnosis(pcl5(**MINIMAL_DIAGNOSIS)) is True
    # Its total (12) is far below 33: the diagnosis rule and the cut-off are independent.
    assert scoring.score(Instrument.pcl5, pcl5(**MINIMAL_DIAGNOSIS)).provisional_ptsd is True


@pytest.mark.parametrize("drop", sorted(MINIMAL_DIAGNOSIS))
def test_pcl5_provisional_diagnosis_fails_when_any_cluster_falls_short(drop: str) -> None:
    assert scoring.pcl5_provisional_diagnosis(pcl5(**{**MINIMAL_DIAGNOSIS, drop: 1})) is False


def test_pcl5_cluster_boundaries_are_the_dsm5_item_ranges() -> None:
    # Items 5 (last B), 7 (last C), 14 and 13 (last D), 20 and 19 (last E).
    assert scoring.pcl5_provisional_diagnosis(pcl5(item_5=4, item_7=2, item_13=2, item_14=3, item_19=2, item_20=2))
    # Two C items but no B item: not a diagnosis, whatever the total.
    assert not scoring.pcl5_provisional_diagnosis(pcl5(**{f"item_{n}": 4 for n in range(6, 21)}))


@pytest.mark.parametrize("instrument", list(Instrument))
def test_wrong_item_count_is_refused(instrument: Instrument) -> None:
    spec = SPECS[instrument]
    for count in (0, spec.items - 1, spec.items + 1):
        with pytest.raises(ValueError, match=f"has {spec.items} items"):
            scoring.score(instrument, [0] * count)


@pytest.mark.parametrize("instrument", list(Instrument))
def test_out_of_range_answers_are_refused(instrument: Instrument) -> None:
    spec = SPECS[instrument]
    for bad in (-1, spec.max_item + 1, True):
        with pytest.raises(ValueError, match="item 1 must be an integer"):
            scoring.score(instrument, [bad] + [0] * (spec.items - 1))


@st.composite
def submissions(draw: st.DrawFn) -> tuple[Instrument, list[int]]:
    instrument = draw(st.sampled_from(list(Instrument)))
    spec = SPECS[instrument]
    return instrument, draw(st.lists(st.integers(0, spec.max_item), min_size=spec.items, max_size=spec.items))


@given(submissions())
def test_scores_always_stay_in_range_and_band_matches_total(submission: tuple[Instrument, list[int]]) -> None:
    instrument, answers = submission
    spec = SPECS[instrument]
    result = scoring.score(instrument, answers)
    assert 0 <= result.total <= spec.max_total
    assert result.severity_band in {code for _, code in spec.bands}
    assert result.severity_band == scoring.band(spec, result.total)
    if instrument is Instrument.pcl5:
        assert result.provisional_ptsd == scoring.pcl5_provisional_diagnosis(answers)


@given(st.sampled_from(list(Instrument)), st.lists(st.integers(-10, 10), max_size=25))
def test_any_answer_list_is_either_scored_in_range_or_refused(instrument: Instrument, answers: list[int]) -> None:
    spec = SPECS[instrument]
    valid = len(answers) == spec.items and all(0 <= a <= spec.max_item for a in answers)
    if valid:
        assert 0 <= scoring.score(instrument, answers).total <= spec.max_total
    else:
        with pytest.raises(ValueError):
            scoring.score(instrument, answers)
