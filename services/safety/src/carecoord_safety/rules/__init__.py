"""Versioned, declarative escalation rules, evaluated by plain functions.

The rule files in this folder are configuration: a rule is a condition and an
action, never a code branch. Evaluation is pure so that the same function can
decide live reports and, later, replay history under a proposed version.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from carecoord_shared.contracts.common import ReviewPriority

RULES_DIR = Path(__file__).parent
CURRENT_VERSION = "2026.11.1"


@dataclass(frozen=True)
class ReportFacts:
    grade: int
    symptoms: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    min_grade: int | None
    any_red_flag: bool
    reason: str
    priority: ReviewPriority
    due_within: timedelta
    hold: bool


@dataclass(frozen=True)
class Decision:
    rule_id: str
    reason: str
    priority: ReviewPriority
    due_within: timedelta
    hold: bool
    triggers: tuple[str, ...]
    rule_version: str


@dataclass(frozen=True)
class RuleSet:
    version: str
    red_flags: frozenset[str]
    rules: tuple[Rule, ...]

    def evaluate(self, facts: ReportFacts) -> Decision | None:
        """The first rule that matches decides; None means record only."""
        red = tuple(s for s in facts.symptoms if s in self.red_flags)
        for rule in self.rules:
            triggers: list[str] = []
            if rule.any_red_flag:
                if not red:
                    continue
                triggers += [f"red_flag_{s}" for s in red]
            if rule.min_grade is not None:
                if facts.grade < rule.min_grade:
                    continue
                triggers.append(f"grade_{facts.grade}")
            return Decision(
                rule_id=rule.id,
                reason=rule.reason,
                priority=rule.priority,
                due_within=rule.due_within,
                hold=rule.hold,
                triggers=tuple(triggers),
                rule_version=self.version,
            )
        return None


def load(version: str = CURRENT_VERSION) -> RuleSet:
    raw = tomllib.loads((RULES_DIR / f"escalation-{version}.toml").read_text())
    if raw["version"] != version:
        raise ValueError(f"rule file for {version} declares version {raw['version']}")
    rules = []
    for r in raw["rules"]:
        when, review = r["when"], r["review"]
        unknown = set(when) - {"min_grade", "any_red_flag"}
        if unknown:
            raise ValueError(f"rule {r['id']}: unknown conditions {sorted(unknown)}")
        rules.append(
            Rule(
                id=r["id"],
                min_grade=when.get("min_grade"),
                any_red_flag=bool(when.get("any_red_flag", False)),
                reason=review["reason"],
                priority=ReviewPriority(review["priority"]),
                due_within=timedelta(hours=review["due_within_hours"]),
                hold=bool(r["hold"]),
            )
        )
    return RuleSet(version=version, red_flags=frozenset(raw["red_flag_symptoms"]), rules=tuple(rules))
