"""Versioned, declarative escalation rules, evaluated by plain functions.

A rule file (``escalation-<version>.toml`` in this folder) is configuration: a
rule is a kind of observation it applies to, conditions from a closed
vocabulary, and an action (review, hold, out-of-limits). Adding a threshold
never needs a code branch; adding a *kind* of condition does, here, with a
test. Evaluation is pure — facts in, assessment out — so the same function
decides live reports and replays history under a proposed version (shadow
mode).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from carecoord_contracts.common import ReviewPriority

RULES_DIR = Path(__file__).parent
CURRENT_VERSION = "2026.12.1"
PRIORITY_RANK = {ReviewPriority.routine: 1, ReviewPriority.high: 2, ReviewPriority.urgent: 3}


# --- facts -------------------------------------------------------------------


@dataclass(frozen=True)
class SideEffect:
    at: datetime
    grade: int
    symptoms: tuple[str, ...]


@dataclass(frozen=True)
class Vitals:
    at: datetime
    systolic: int
    diastolic: int
    context: str


@dataclass(frozen=True)
class Mood:
    at: datetime
    phq9_item9: int | None = None
    phq9_total: int | None = None
    pcl5_total: int | None = None


Observation = SideEffect | Vitals | Mood


@dataclass(frozen=True)
class CheckInScores:
    """A mood check-in's totals (and PHQ-9's item 9), None for an instrument it did not answer."""

    phq9_total: int | None
    phq9_item9: int | None
    pcl5_total: int | None
    # No escalation rule reads GAD-7; dosing measures an anxiety plan's response on it.
    gad7_total: int | None

    def mood(self, at: datetime) -> Mood:
        return Mood(at=at, phq9_item9=self.phq9_item9, phq9_total=self.phq9_total, pcl5_total=self.pcl5_total)


def score_checkin(
    phq9_items: Sequence[int] | None, pcl5_items: Sequence[int] | None, gad7_items: Sequence[int] | None
) -> CheckInScores:
    return CheckInScores(
        phq9_total=sum(phq9_items) if phq9_items else None,
        phq9_item9=phq9_items[8] if phq9_items else None,
        pcl5_total=sum(pcl5_items) if pcl5_items else None,
        gad7_total=sum(gad7_items) if gad7_items else None,
    )


KIND = {SideEffect: "side_effect", Vitals: "vitals", Mood: "mood"}


# --- rules -------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAction:
    reason: str
    priority: ReviewPriority
    due_within: timedelta


@dataclass(frozen=True)
class Rule:
    id: str
    on: str
    when: dict[str, Any]
    review: ReviewAction | None
    hold: bool
    out_of_limits: bool
    # A coded guidance for the patient (e.g. seek_emergency_care) the app shows with the answer.
    advice: str | None = None


@dataclass(frozen=True)
class ReviewRequest:
    """One review to open (or join), merged from every rule that named its reason."""

    reason: str
    priority: ReviewPriority
    due_within: timedelta
    hold: bool
    triggers: tuple[str, ...]
    rule_ids: tuple[str, ...]


@dataclass(frozen=True)
class Assessment:
    rule_version: str
    fired: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    reviews: tuple[ReviewRequest, ...] = ()
    out_of_limits: bool = False
    advice: tuple[str, ...] = ()
    # Symptom codes outside the rule set's vocabulary (empty when it publishes none).
    unknown_symptoms: tuple[str, ...] = ()

    @property
    def hold(self) -> bool:
        return any(r.hold for r in self.reviews)

    @property
    def escalated(self) -> bool:
        return bool(self.reviews)

    def outcome(self) -> dict[str, Any]:
        """What the assessment decides, for comparing rule versions (shadow mode)."""
        return {
            "reviews": sorted(
                f"{r.reason}:{r.priority.value}:{int(r.due_within.total_seconds() // 3600)}h" for r in self.reviews
            ),
            "hold": self.hold,
            "out_of_limits": self.out_of_limits,
            "advice": list(self.advice),
        }


@dataclass(frozen=True)
class Timers:
    checkin_missed_after: timedelta
    checkin_review_after: timedelta
    checkin_review: ReviewAction | None
    # What a dosing session marked no-show opens (None: nothing, as before 2026.12.1).
    no_show_review: ReviewAction | None = None


@dataclass(frozen=True)
class Symptom:
    code: str
    label: str
    red_flag: bool
    advice: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    version: str
    red_flags: frozenset[str]
    rules: tuple[Rule, ...]
    timers: Timers = field(compare=False)
    # code -> label: the symptom codes these rules know (empty before 2026.12.1: every code was free).
    vocabulary: dict[str, str] = field(default_factory=dict, compare=False)

    def unknown_symptoms(self, symptoms: Sequence[str]) -> tuple[str, ...]:
        """The codes outside the vocabulary, in report order (none when the version publishes no vocabulary)."""
        if not self.vocabulary:
            return ()
        return tuple(dict.fromkeys(s for s in symptoms if s not in self.vocabulary))

    def symptoms(self) -> list[Symptom]:
        """The published vocabulary: each code, its label, whether it is a red flag, the advice it brings."""
        advice: dict[str, list[str]] = {}
        for rule in self.rules:
            if rule.advice and "any_symptom_in" in rule.when:
                for code in rule.when["any_symptom_in"]:
                    advice.setdefault(code, []).append(rule.advice)
        return [
            Symptom(code, label, code in self.red_flags, tuple(dict.fromkeys(advice.get(code, ()))))
            for code, label in self.vocabulary.items()
        ]

    def assess(self, observation: Observation, history: Sequence[Observation] = ()) -> Assessment:
        """Every rule for this kind of observation whose conditions all hold fires.

        ``history`` holds the patient's earlier observations (any kind, any age);
        window conditions look at those within their window before ``observation``.
        """
        kind = KIND[type(observation)]
        fired: list[tuple[Rule, list[str]]] = []
        for rule in self.rules:
            if rule.on != kind:
                continue
            triggers = _match(rule, observation, history, self)
            if triggers is not None:
                fired.append((rule, triggers))
        return Assessment(
            rule_version=self.version,
            fired=tuple(rule.id for rule, _ in fired),
            triggers=tuple(dict.fromkeys(t for _, ts in fired for t in ts)),
            reviews=_merge_reviews(fired),
            out_of_limits=any(rule.out_of_limits for rule, _ in fired),
            advice=tuple(dict.fromkeys(rule.advice for rule, _ in fired if rule.advice)),
            unknown_symptoms=self.unknown_symptoms(observation.symptoms) if isinstance(observation, SideEffect) else (),
        )


def _merge_reviews(fired: list[tuple[Rule, list[str]]]) -> tuple[ReviewRequest, ...]:
    by_reason: dict[str, ReviewRequest] = {}
    for rule, triggers in fired:
        if rule.review is None:
            continue
        action = rule.review
        prior = by_reason.get(action.reason)
        if prior is None:
            by_reason[action.reason] = ReviewRequest(
                action.reason, action.priority, action.due_within, rule.hold, tuple(triggers), (rule.id,)
            )
            continue
        by_reason[action.reason] = ReviewRequest(
            reason=action.reason,
            priority=max(prior.priority, action.priority, key=PRIORITY_RANK.__getitem__),
            due_within=min(prior.due_within, action.due_within),
            hold=prior.hold or rule.hold,
            triggers=tuple(dict.fromkeys(prior.triggers + tuple(triggers))),
            rule_ids=prior.rule_ids + (rule.id,),
        )
    return tuple(by_reason.values())


# --- conditions: the closed vocabulary ---------------------------------------
# Each returns the triggers it contributes when it holds, or None when it does not. The observation is Any here:
# each condition takes its own kind (SideEffect, Mood, Vitals), and CONDITIONS is looked up by the rule's kind,
# which is the observation's (RuleSet.assess skips rules for other kinds).

Condition = Callable[[Any, Any, Sequence[Observation], dict[str, Any], RuleSet], list[str] | None]


def _min_grade(
    value: int, obs: SideEffect, _h: Sequence[Observation], _w: dict[str, Any], _rs: RuleSet
) -> list[str] | None:
    return [f"grade_{obs.grade}"] if obs.grade >= value else None


def _grade(
    value: int, obs: SideEffect, _h: Sequence[Observation], _w: dict[str, Any], _rs: RuleSet
) -> list[str] | None:
    return [f"grade_{obs.grade}"] if obs.grade == value else None


def _any_red_flag(
    value: bool, obs: SideEffect, _h: Sequence[Observation], _w: dict[str, Any], rs: RuleSet
) -> list[str] | None:
    red = [s for s in obs.symptoms if s in rs.red_flags]
    if not value:
        return [] if not red else None
    return [f"red_flag_{s}" for s in red] or None


# A trigger is a ShortCode (at most 64 characters): a long code is cut to fit.
_TRIGGER_MAX = 64


def _any_symptom_in(
    value: list[str], obs: SideEffect, _h: Sequence[Observation], _w: dict[str, Any], _rs: RuleSet
) -> list[str] | None:
    named = [s for s in obs.symptoms if s in value]
    if not named:
        return None
    return [
        f"symptom_{s}"[:_TRIGGER_MAX] for s in named if s not in _rs.red_flags
    ]  # a red flag already says red_flag_<code>


def _any_unknown_symptom(
    value: bool, obs: SideEffect, _h: Sequence[Observation], _w: dict[str, Any], rs: RuleSet
) -> list[str] | None:
    unknown = rs.unknown_symptoms(obs.symptoms)
    if not value:
        return [] if not unknown else None
    return list(dict.fromkeys(f"unknown_symptom_{s}"[:_TRIGGER_MAX] for s in unknown)) or None


def _window(obs: SideEffect, history: Sequence[Observation], when: dict[str, Any]) -> list[SideEffect]:
    """This report and the earlier ones within the window, of the rule's grade if it names one."""
    start = obs.at - timedelta(days=when["within_days"])
    grade = when.get("grade")
    earlier = [h for h in history if isinstance(h, SideEffect) and start <= h.at <= obs.at]
    return [r for r in [*earlier, obs] if grade is None or r.grade == grade]


def _same_symptom_reports_at_least(
    value: int, obs: SideEffect, history: Sequence[Observation], when: dict[str, Any], _rs: RuleSet
) -> list[str] | None:
    window = _window(obs, history, when)
    hits = [s for s in obs.symptoms if sum(s in r.symptoms for r in window) >= value]
    return [f"{s}_x{sum(s in r.symptoms for r in window)}_in_{when['within_days']}d" for s in hits] or None


def _reports_at_least(
    value: int, obs: SideEffect, history: Sequence[Observation], when: dict[str, Any], _rs: RuleSet
) -> list[str] | None:
    window = _window(obs, history, when)
    label = f"grade_{when['grade']}" if "grade" in when else "reports"
    return [f"{label}_x{len(window)}_in_{when['within_days']}d"] if len(window) >= value else None


def _phq9_item9_above(
    value: int, obs: Mood, _h: Sequence[Observation], _w: dict[str, Any], _rs: RuleSet
) -> list[str] | None:
    if obs.phq9_item9 is not None and obs.phq9_item9 > value:
        return [f"phq9_item9_{obs.phq9_item9}"]
    return None


def _context(value: str, obs: Vitals, _h: Sequence[Observation], _w: dict[str, Any], _rs: RuleSet) -> list[str] | None:
    return [] if obs.context == value else None


def _blood_pressure(obs: Vitals, when: dict[str, Any]) -> list[str] | None:
    """Systolic OR diastolic at or above its threshold (how BP thresholds like 160/100 read)."""
    systolic, diastolic = when.get("systolic_at_least"), when.get("diastolic_at_least")
    high = (systolic is not None and obs.systolic >= systolic) or (diastolic is not None and obs.diastolic >= diastolic)
    return [f"bp_{obs.systolic}_{obs.diastolic}_at_least_{systolic}_{diastolic}"] if high else None


CONDITIONS: dict[str, dict[str, Condition]] = {
    "side_effect": {
        "min_grade": _min_grade,
        "grade": _grade,
        "any_red_flag": _any_red_flag,
        "any_symptom_in": _any_symptom_in,
        "any_unknown_symptom": _any_unknown_symptom,
        "same_symptom_reports_at_least": _same_symptom_reports_at_least,
        "reports_at_least": _reports_at_least,
    },
    "mood": {"phq9_item9_above": _phq9_item9_above},
    "vitals": {"context": _context},
}
# Keys that qualify another condition rather than test on their own.
QUALIFIERS = {"side_effect": {"within_days"}, "vitals": {"systolic_at_least", "diastolic_at_least"}, "mood": set()}
NEEDS_WINDOW = {"same_symptom_reports_at_least", "reports_at_least"}


def _match(rule: Rule, obs: Observation, history: Sequence[Observation], rs: RuleSet) -> list[str] | None:
    triggers: list[str] = []
    for key, value in rule.when.items():
        if key in QUALIFIERS[rule.on]:
            continue
        contributed = CONDITIONS[rule.on][key](value, obs, history, rule.when, rs)
        if contributed is None:
            return None
        triggers += contributed
    if rule.on == "vitals":
        assert isinstance(obs, Vitals)
        bp = _blood_pressure(obs, rule.when)
        if bp is None:
            return None
        triggers += bp
    # A window rule's triggers already name the grade: drop the plain "grade_n".
    if NEEDS_WINDOW & rule.when.keys():
        triggers = [t for t in triggers if not t.startswith("grade_") or "_x" in t]
    return list(dict.fromkeys(triggers))


# --- loading -----------------------------------------------------------------


class RuleFileError(ValueError):
    pass


def available_versions() -> list[str]:
    return sorted(p.stem.removeprefix("escalation-") for p in RULES_DIR.glob("escalation-*.toml"))


def load(version: str = CURRENT_VERSION) -> RuleSet:
    path = RULES_DIR / f"escalation-{version}.toml"
    if not path.exists():
        raise RuleFileError(f"no rule file for version {version} (have {', '.join(available_versions())})")
    raw = tomllib.loads(path.read_text())
    if raw.get("version") != version:
        raise RuleFileError(f"rule file for {version} declares version {raw.get('version')}")
    rules = tuple(_rule(r) for r in raw["rules"])
    timers = raw.get("timers", {})
    review = timers.get("checkin_review")
    no_show = timers.get("no_show_review")
    red_flags = frozenset(raw.get("red_flag_symptoms", []))
    vocabulary = {str(code): str(label) for code, label in raw.get("symptoms", {}).items()}
    _check_vocabulary(version, vocabulary, red_flags, rules)
    return RuleSet(
        version=version,
        red_flags=red_flags,
        rules=rules,
        timers=Timers(
            checkin_missed_after=timedelta(hours=timers.get("checkin_missed_after_hours", 4)),
            checkin_review_after=timedelta(hours=timers.get("checkin_review_after_hours", 8)),
            checkin_review=_review(review) if review else None,
            no_show_review=_review(no_show) if no_show else None,
        ),
        vocabulary=vocabulary,
    )


def _check_vocabulary(
    version: str, vocabulary: dict[str, str], red_flags: frozenset[str], rules: tuple[Rule, ...]
) -> None:
    """A version that publishes a vocabulary must name in it every code its rules mention."""
    named = set(red_flags) | {c for r in rules for c in r.when.get("any_symptom_in", [])}
    if not vocabulary:
        if any("any_unknown_symptom" in r.when for r in rules):
            raise RuleFileError(f"{version}: any_unknown_symptom needs a [symptoms] vocabulary")
        return
    bad = sorted(c for c in vocabulary if not re.fullmatch(r"[a-z0-9_]{1,64}", c))
    if bad:
        raise RuleFileError(f"{version}: symptom codes must be snake_case: {bad}")
    if missing := sorted(named - vocabulary.keys()):
        raise RuleFileError(f"{version}: symptoms named by the rules but not in [symptoms]: {missing}")


def _review(raw: dict[str, Any]) -> ReviewAction:
    return ReviewAction(
        reason=raw["reason"],
        priority=ReviewPriority(raw["priority"]),
        due_within=timedelta(hours=raw["due_within_hours"]),
    )


def _rule(raw: dict[str, Any]) -> Rule:
    rule_id, on, when = raw.get("id", "?"), raw.get("on"), raw.get("when", {})
    if on not in CONDITIONS:
        raise RuleFileError(f"rule {rule_id}: 'on' must be one of {sorted(CONDITIONS)}, not {on!r}")
    unknown = set(when) - set(CONDITIONS[on]) - QUALIFIERS[on]
    if unknown:
        raise RuleFileError(f"rule {rule_id}: unknown conditions {sorted(unknown)} for {on}")
    if NEEDS_WINDOW & when.keys() and "within_days" not in when:
        raise RuleFileError(f"rule {rule_id}: a repeated-report condition needs within_days")
    if on == "vitals" and not {"systolic_at_least", "diastolic_at_least"} & when.keys():
        raise RuleFileError(f"rule {rule_id}: a vitals rule needs systolic_at_least and/or diastolic_at_least")
    return Rule(
        id=rule_id,
        on=on,
        when=dict(when),
        review=_review(raw["review"]) if "review" in raw else None,
        hold=bool(raw.get("hold", False)),
        out_of_limits=bool(raw.get("out_of_limits", False)),
        advice=_advice(rule_id, raw.get("advice")),
    )


def _advice(rule_id: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_]{1,64}", value):
        raise RuleFileError(f"rule {rule_id}: advice must be a snake_case code")
    return value
