"""Dosing rules as plain functions with no I/O: the plan's status machine,
whether a dosing session may go ahead, and the next dose to propose.

    draft -> active -> paused <-> active -> completed | discontinued

A plan is paused while *any* treatment hold is open and resumes only when
every hold has been released by a clinician's decision.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from carecoord_contracts.common import Indication, Instrument, PlanStatus, ReviewDecision
from carecoord_shared.errors import LimitExceeded, RuleViolation

ALLOWED: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.draft: frozenset({PlanStatus.active, PlanStatus.discontinued}),
    PlanStatus.active: frozenset({PlanStatus.paused, PlanStatus.completed, PlanStatus.discontinued}),
    PlanStatus.paused: frozenset({PlanStatus.active, PlanStatus.discontinued}),
    PlanStatus.completed: frozenset(),
    PlanStatus.discontinued: frozenset(),
}

LIVE = frozenset({PlanStatus.draft, PlanStatus.active, PlanStatus.paused})


class PlanRuleViolation(RuleViolation):
    """A requested change the plan's rules forbid; the message says which rule."""


def check_transition(current: PlanStatus, target: PlanStatus) -> None:
    if target not in ALLOWED[current]:
        raise PlanRuleViolation(f"a {current.value} plan cannot become {target.value}")


def check_activation(current: PlanStatus, open_holds: int) -> None:
    check_transition(current, PlanStatus.active)
    if current is PlanStatus.draft and open_holds:
        raise PlanRuleViolation(
            f"the patient has {open_holds} open treatment hold(s); a clinician must resolve them first"
        )


def status_with_holds(current: PlanStatus, open_holds: int) -> PlanStatus:
    """The status a plan must have given how many holds are open."""
    if current is PlanStatus.active and open_holds > 0:
        return PlanStatus.paused
    if current is PlanStatus.paused and open_holds == 0:
        return PlanStatus.active
    return current


@dataclass(frozen=True)
class Limits:
    starting_dose_mg: int
    max_dose_mg: int
    max_step_mg: int


@dataclass(frozen=True)
class PlanState:
    """A plan as a use case loads it (its row locked for the transaction): what the decisions read."""

    plan_id: uuid.UUID
    patient_id: uuid.UUID
    status: PlanStatus
    limits: Limits
    planned_sessions: int
    sessions_completed: int
    approved_dose_mg: int | None
    # None on plans created before it was recorded.
    indication: Indication | None
    created_at: datetime


# The statuses in which a plan's dose may change (an approval, a review's dose change); only active doses.
DOSE_CHANGEABLE = frozenset({PlanStatus.active, PlanStatus.paused})


def check_approval(proposal_id: uuid.UUID, proposal_status: str, plan_status: PlanStatus) -> None:
    """Only a pending proposal of an active or paused plan can be approved."""
    if proposal_status != "proposed":
        raise PlanRuleViolation(f"proposal {proposal_id} is {proposal_status}; only a pending proposal can be approved")
    if plan_status not in DOSE_CHANGEABLE:
        raise PlanRuleViolation(f"the plan is {plan_status}; doses are approved only for an active or paused plan")


class LimitRefused(LimitExceeded, PlanRuleViolation):
    """A dose, step or plan limit beyond what the rules allow (HTTP 422 with a reason code)."""


def check_dosing_limits(starting_dose_mg: int, max_dose_mg: int, max_step_mg: int, rules: TitrationRules) -> None:
    """Every relation a new plan's limits must keep, against each other and the program's caps."""
    version = f"titration rules {rules.version}"
    if rules.program_max_dose_mg is not None and max_dose_mg > rules.program_max_dose_mg:
        raise LimitRefused(
            "max_dose_above_program_maximum",
            f"the plan's maximum dose of {max_dose_mg} mg is above the program's maximum dose of {rules.program_max_dose_mg} mg ({version})",
        )
    if rules.program_max_step_mg is not None and max_step_mg > rules.program_max_step_mg:
        raise LimitRefused(
            "max_step_above_program_maximum",
            f"the plan's maximum step of {max_step_mg} mg is above the program's maximum step of {rules.program_max_step_mg} mg ({version})",
        )
    if starting_dose_mg > max_dose_mg:
        raise LimitRefused(
            "starting_dose_above_plan_maximum",
            f"the starting dose of {starting_dose_mg} mg exceeds the plan's per-session maximum of {max_dose_mg} mg",
        )
    if max_step_mg >= max_dose_mg:
        raise LimitRefused(
            "max_step_not_below_max_dose",
            f"the maximum step of {max_step_mg} mg must be smaller than the plan's per-session maximum of {max_dose_mg} mg",
        )


def effective_caps(limits: Limits, rules: TitrationRules) -> tuple[int, int]:
    """The per-session maximum and step that hold: the plan's, never beyond the program's."""
    cap = min(limits.max_dose_mg, rules.program_max_dose_mg or limits.max_dose_mg)
    step = min(limits.max_step_mg, rules.program_max_step_mg or limits.max_step_mg)
    return cap, step


@dataclass(frozen=True)
class DoseRefusal:
    code: str
    message: str


def dose_refusal(current_mg: int | None, new_mg: int, limits: Limits, rules: TitrationRules) -> DoseRefusal | None:
    """Is this dose allowed for this plan? The one place that decides, for every door a dose comes
    through (a proposal's approval, a clinician's own dose, a review resolved with a dose change):
    never above the program's or the plan's maximum, never more than one step (the smaller of the
    plan's and the program's) from the current dose. None when allowed.

    One exception to the step: a plan recorded before the program caps whose dose is above them
    may come down to the cap in one approval (a decrease is never refused for size).
    """
    version = f"titration rules {rules.version}"
    # The binding limit is named: the plan's when it is within the program's cap.
    if new_mg > limits.max_dose_mg:
        return DoseRefusal(
            "dose_above_plan_maximum", f"{new_mg} mg is above the plan's per-session maximum of {limits.max_dose_mg} mg"
        )
    if rules.program_max_dose_mg is not None and new_mg > rules.program_max_dose_mg:
        return DoseRefusal(
            "dose_above_program_maximum",
            f"{new_mg} mg is above the program's maximum dose of {rules.program_max_dose_mg} mg ({version})",
        )
    cap, step = effective_caps(limits, rules)
    if current_mg is None or abs(new_mg - current_mg) <= step:
        return None
    if current_mg > cap and new_mg < current_mg:
        return None
    program_step = step < limits.max_step_mg
    return DoseRefusal(
        "dose_step_above_program_maximum" if program_step else "dose_step_above_plan_maximum",
        f"{new_mg} mg is more than one step ({'the program' if program_step else 'the plan'}'s maximum step of {step} mg, {version})"
        f" from the current {current_mg} mg",
    )


def review_dose_refusal(
    plan: PlanState | None, current_mg: int | None, new_mg: int, rules: TitrationRules
) -> str | None:
    """Why a review's resolution may not change the dose to ``new_mg`` (a code), or None when it may."""
    if plan is None or plan.status not in DOSE_CHANGEABLE:
        return "no_live_plan"
    refusal = dose_refusal(current_mg, new_mg, plan.limits, rules)
    return refusal.code if refusal else None


def check_dose_change(current_mg: int | None, new_mg: int, limits: Limits, rules: TitrationRules) -> None:
    """A dose a clinician approves: refused (LimitRefused, a 422 with the code) unless dose_refusal allows it."""
    if (refusal := dose_refusal(current_mg, new_mg, limits, rules)) is not None:
        raise LimitRefused(refusal.code, refusal.message)


# --- holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A dose to propose: it supersedes any pending proposal, and the approved dose lapses until approved."""

    dose_mg: int
    rationale: list[str]
    session_number: int
    previous_dose_mg: int


@dataclass(frozen=True)
class HoldRelease:
    """What a clinician's review decision does when it releases a hold.

    ``refused``: the dose change is not allowed (a code); the hold stays open and nothing else changes.
    Otherwise the hold is released and the plan is discontinued, or ``propose`` is proposed (and, when
    ``approve``, approved in the deciding clinician's name with the review as cause), and the plan's
    status follows the holds still open (``reconcile``)."""

    refused: str | None = None
    discontinue: bool = False
    propose: Proposal | None = None
    approve: bool = False

    @property
    def reconcile(self) -> bool:
        return self.refused is None and not self.discontinue


def hold_release(
    decision: ReviewDecision,
    plan: PlanState | None,
    *,
    dose_mg: int | None,
    current_dose_mg: int | None,
    rules: TitrationRules,
) -> HoldRelease:
    """Resume, resume with a dose change, or discontinue. ``current_dose_mg`` is the dose a change is one step
    from (the approved one, else the last approved, else the starting dose); needed only with ``dose_mg``.

    Resume with a dose change that names the dose approves it in the same step; dosing re-validates it (the
    source of truth). A release without a dose (before the resolution carried one): the old approval
    lapses, and a one-step decrease is proposed for a clinician's approval."""
    changes_dose = decision is ReviewDecision.resume_with_dose_change
    refusal = (
        review_dose_refusal(plan, current_dose_mg, dose_mg, rules) if changes_dose and dose_mg is not None else None
    )
    if refusal is not None:
        return HoldRelease(refused=refusal)
    if plan is None:
        return HoldRelease()
    if decision is ReviewDecision.discontinue:
        return HoldRelease(discontinue=True)
    next_session = plan.sessions_completed + 1
    if changes_dose and dose_mg is not None:
        assert current_dose_mg is not None  # a live plan always has one: at least its starting dose
        return HoldRelease(
            propose=Proposal(dose_mg, ["review_dose_change"], next_session, current_dose_mg), approve=True
        )
    if changes_dose and plan.approved_dose_mg is not None:
        decrease = max(plan.approved_dose_mg - plan.limits.max_step_mg, 1)
        return HoldRelease(
            propose=Proposal(decrease, ["review_requested_dose_change"], next_session, plan.approved_dose_mg)
        )
    return HoldRelease()


# --- configuration -------------------------------------------------------------

CONFIG_DIR = Path(__file__).parent
CURRENT_TITRATION = "2026.12.0"


@dataclass(frozen=True)
class ResponseThreshold:
    """A drop from the baseline that counts as responding: in points, or in percent of the baseline."""

    min_reduction_points: int | None = None
    min_reduction_percent: int | None = None

    def met(self, baseline: int, latest: int) -> bool:
        drop = baseline - latest
        if self.min_reduction_points is not None:
            return drop >= self.min_reduction_points
        assert self.min_reduction_percent is not None
        return drop * 100 >= self.min_reduction_percent * baseline


@dataclass(frozen=True)
class TitrationRules:
    version: str
    no_increase_symptoms: frozenset[str]
    pre_dose_bp_window: timedelta
    pre_dose_bp_future_skew: timedelta
    pre_dose_bp_for_session: bool
    response: dict[Instrument, ResponseThreshold]
    # None: every plan is measured by PHQ-9 from its first check-in (2026.11.1).
    indication_instrument: dict[Indication, Instrument] | None = None
    program_max_dose_mg: int | None = None
    program_max_step_mg: int | None = None

    def instrument_for(self, indication: Indication | None) -> Instrument:
        if self.indication_instrument is None:
            return Instrument.phq9
        return self.indication_instrument[indication or Indication.depression]

    @property
    def uses_intake_baseline(self) -> bool:
        return self.indication_instrument is not None


def _threshold(raw: dict[str, Any]) -> ResponseThreshold:
    points, percent = raw.get("min_reduction_points"), raw.get("min_reduction_percent")
    if (points is None) == (percent is None):
        raise ValueError("a response threshold is min_reduction_points or min_reduction_percent, exactly one")
    for value in (points, percent):
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError("a response threshold must be a positive integer")
    return ResponseThreshold(points, percent)


def load_titration(version: str = CURRENT_TITRATION) -> TitrationRules:
    raw = tomllib.loads((CONFIG_DIR / f"titration-{version}.toml").read_text())
    if raw["version"] != version:
        raise ValueError(f"titration file for {version} declares version {raw['version']}")
    if "adequate_phq9_improvement" in raw:  # 2026.11.1: PHQ-9 only, points from the first check-in
        response = {Instrument.phq9: ResponseThreshold(min_reduction_points=int(raw["adequate_phq9_improvement"]))}
    else:
        response = {Instrument(name): _threshold(entry) for name, entry in raw["response"].items()}
    mapping = None
    if "indication_instrument" in raw:
        mapping = {Indication(k): Instrument(v) for k, v in raw["indication_instrument"].items()}
        if set(mapping) != set(Indication):
            raise ValueError("indication_instrument must name an instrument for every indication")
        if not set(mapping.values()) <= set(response):
            raise ValueError("every instrument an indication uses needs a [response] threshold")
    cap, step = raw.get("program_max_dose_mg"), raw.get("program_max_step_mg")
    if (cap is None) != (step is None):
        raise ValueError("program_max_dose_mg and program_max_step_mg come together")
    if cap is not None and not (type(cap) is int and type(step) is int and 1 <= step < cap <= 1000):
        raise ValueError("program caps: integers with 1 <= program_max_step_mg < program_max_dose_mg <= 1000")
    return TitrationRules(
        version=version,
        no_increase_symptoms=frozenset(raw["no_increase_symptoms"]),
        **_pre_dose_bp(raw),
        response=response,
        indication_instrument=mapping,
        program_max_dose_mg=cap,
        program_max_step_mg=step,
    )


def _pre_dose_bp(raw: dict[str, Any]) -> dict[str, Any]:
    """From 2026.12.0 the reading must name the session and fall within a window before it;
    earlier versions (kept for the record) took any pre-dose reading no older than a maximum age."""
    if "pre_dose_bp_window_minutes" in raw:
        return {
            "pre_dose_bp_window": timedelta(minutes=int(raw["pre_dose_bp_window_minutes"])),
            "pre_dose_bp_future_skew": timedelta(minutes=int(raw["pre_dose_bp_future_skew_minutes"])),
            "pre_dose_bp_for_session": True,
        }
    return {
        "pre_dose_bp_window": timedelta(minutes=int(raw["pre_dose_bp_max_age_minutes"])),
        "pre_dose_bp_future_skew": timedelta(0),
        "pre_dose_bp_for_session": False,
    }


# --- session authorisation -----------------------------------------------------


@dataclass(frozen=True)
class PreDoseReading:
    measured_at: datetime
    within_limits: bool
    appointment_id: uuid.UUID | None = None


def pre_dose_bp_refusal(
    reading: PreDoseReading | None, appointment_id: uuid.UUID, *, now: datetime, rules: TitrationRules
) -> str | None:
    """Does this reading (the latest pre-dose one taken for the session) authorise the session at ``now``?

    It must name the session's appointment, be taken no earlier than the rules' window before
    ``now`` and no later than ``now`` plus a small clock skew, and be within limits."""
    if not rules.pre_dose_bp_for_session:  # titration before 2026.12.0, kept for the record
        if reading is None or now - reading.measured_at > rules.pre_dose_bp_window:
            return "no_recent_pre_dose_blood_pressure"
    elif reading is None or reading.appointment_id != appointment_id:
        return "no_pre_dose_bp_for_session"
    elif now - reading.measured_at > rules.pre_dose_bp_window:
        return "pre_dose_bp_too_old"
    elif reading.measured_at - now > rules.pre_dose_bp_future_skew:
        return "pre_dose_bp_in_future"
    return None if reading.within_limits else "blood_pressure_out_of_limits"


# No signed ketamine_treatment consent stands: never signed, or withdrawn.
CONSENT_MISSING = "consent_missing"


def _status_refusal(status: PlanStatus) -> str | None:
    """Only an active plan doses: never while paused (any hold open), nor a draft or an ended plan."""
    if status is PlanStatus.paused:
        return "plan_paused"
    return None if status is PlanStatus.active else "plan_not_active"


def grant_refusal(
    status: PlanStatus | None,
    *,
    same_plan: bool,
    consented: bool,
    authorised_at: datetime,
    now: datetime,
    rules: TitrationRules,
) -> str | None:
    """Why an existing grant for a session may not be handed out again, or None when it may.

    A session is authorised once; a repeat request gets the grant back only while the plan it was
    given for is still the patient's and still active, and the reading it rested on is still within
    the pre-dose window. A grant from before a hold is never replayed while the plan is paused."""
    if status is None or not same_plan:
        return "authorisation_not_for_this_plan"
    if not consented:
        return CONSENT_MISSING
    if (refusal := _status_refusal(status)) is not None:
        return refusal
    if now - authorised_at > rules.pre_dose_bp_window:
        return "authorisation_expired"
    return None


def authorisation_refusal(
    status: PlanStatus | None,
    approved_dose_mg: int | None,
    limits: Limits | None,
    reading: PreDoseReading | None,
    *,
    appointment_id: uuid.UUID,
    now: datetime,
    rules: TitrationRules,
    consented: bool,
    recent_emergency: bool = False,
) -> str | None:
    """Why a dosing session may not go ahead, or None when it may. The last line of defence.

    ``recent_emergency``: safety advised emergency care on an observation within the pre-dose
    window (a crisis reading, an emergency symptom). Its hold travels on another topic and may
    not have arrived yet, and a normal repeat reading must not outrun it.

    ``consented``: the patient's informed consent to ketamine treatment stands (signed, not withdrawn);
    without it nothing else matters, so it is the first refusal after the plan's existence (ADR 0016)."""
    if status is None or limits is None:
        return "no_active_plan"
    if not consented:
        return CONSENT_MISSING
    if (refusal := _status_refusal(status)) is not None:
        return refusal
    if approved_dose_mg is None:
        return "no_approved_dose"
    if approved_dose_mg > limits.max_dose_mg or (
        rules.program_max_dose_mg is not None and approved_dose_mg > rules.program_max_dose_mg
    ):
        return "dose_above_cap"
    if recent_emergency:
        return "emergency_advice_recent"
    return pre_dose_bp_refusal(reading, appointment_id, now=now, rules=rules)


# --- titration -----------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """How the patient responded since the previous session.

    ``baseline`` and ``latest`` are totals on ``instrument`` (the plan's indication's):
    the baseline is the intake score, or the course's first check-in when intake sent
    none (``baseline_from_intake`` False); ``latest`` the latest check-in after it.
    """

    worst_grade: int = 0
    symptoms: frozenset[str] = frozenset()
    blood_pressure_hold: bool = False
    instrument: Instrument = Instrument.phq9
    baseline: int | None = None
    latest: int | None = None
    baseline_from_intake: bool = False


def course_completed(plan: PlanState, completed: int) -> bool:
    """After ``completed`` sessions: an active plan that has had all its planned sessions is complete."""
    return completed >= plan.planned_sessions and plan.status is PlanStatus.active


@dataclass(frozen=True)
class Observed:
    """One of safety's facts about the patient since the last proposal (dosing's copy of it)."""

    kind: str
    grade: int | None = None
    symptoms: tuple[str, ...] = ()
    within_limits: bool | None = None


def response_from(
    recent: Sequence[Observed], moods: Sequence[int], intake: int | None, instrument: Instrument
) -> Response:
    """The response since the last proposal: side effects and blood pressure from ``recent``; the baseline is
    the intake score on ``instrument`` when there is one, else the course's first check-in (``moods``, the
    course's totals on ``instrument`` in the order observed), and the latest is the latest check-in after it."""
    baseline: int | None
    latest: int | None
    if intake is not None:
        baseline, latest = intake, (moods[-1] if moods else None)
    else:  # no intake score (or 2026.11.1): the course's first check-in is the baseline
        baseline, latest = (moods[0] if moods else None), (moods[-1] if len(moods) > 1 else None)
    return Response(
        worst_grade=max((r.grade or 0 for r in recent if r.kind == "side_effect"), default=0),
        symptoms=frozenset(s for r in recent if r.kind == "side_effect" for s in r.symptoms),
        blood_pressure_hold=any(r.kind == "vitals" and r.within_limits is False for r in recent),
        instrument=instrument,
        baseline=baseline,
        latest=latest,
        baseline_from_intake=intake is not None,
    )


def propose_dose(current_mg: int, limits: Limits, response: Response, rules: TitrationRules) -> tuple[int, list[str]]:
    """The next session's dose and why. Never above the plan's or program's cap, never beyond one step."""
    cap, step = effective_caps(limits, rules)
    notes = []
    if rules.uses_intake_baseline and response.baseline is not None and not response.baseline_from_intake:
        notes.append("no_intake_baseline_first_checkin_used")
    if response.worst_grade >= 3:
        return min(max(current_mg - step, 1), cap), ["grade_3_side_effect_decrease", *notes]
    reasons = []
    if response.worst_grade == 2:
        reasons.append("grade_2_side_effect_no_increase")
    if response.blood_pressure_hold:
        reasons.append("blood_pressure_hold_no_increase")
    if response.symptoms & rules.no_increase_symptoms:
        reasons.append("tolerability_no_increase")
    threshold = rules.response[response.instrument]
    if (
        response.baseline is not None
        and response.latest is not None
        and threshold.met(response.baseline, response.latest)
    ):
        reasons.append("responding_keep_dose")
    if response.latest is None:
        reasons.append("no_mood_data_keep_dose")
    if reasons:
        return min(current_mg, cap), reasons + notes
    if current_mg >= cap:
        return cap, ["at_maximum_dose", *notes]
    return min(current_mg + step, cap), ["inadequate_response_increase", *notes]
