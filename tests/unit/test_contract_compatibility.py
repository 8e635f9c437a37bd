"""The compatibility check catches breaking changes against the released snapshot."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import carecoord_contracts as contracts
from carecoord_contracts.compat import breaking_changes, latest_release, missing_upcasters, snapshot
from carecoord_devstack.paths import REPO_ROOT

RELEASES = REPO_ROOT / "docs" / "contract-releases"
KEY = "TreatmentHoldRequested.v1"


@pytest.fixture
def released() -> dict[str, Any]:
    found = latest_release(RELEASES)
    assert found is not None, "a release snapshot is committed"
    return found[1]


def test_the_code_is_compatible_with_the_last_release(released: dict[str, Any]) -> None:
    assert breaking_changes(released, snapshot()) == []
    assert missing_upcasters() == []


def _changed(mutate: Any) -> dict[str, Any]:
    current = copy.deepcopy(snapshot())
    mutate(current["events"][KEY])
    return current


def test_removing_a_field_breaks(released: dict[str, Any]) -> None:
    current = _changed(lambda s: (s["properties"].pop("reason"), s["required"].remove("reason")))
    assert breaking_changes(released, current) == [f"{KEY}.reason: removed"]


def test_retyping_a_field_breaks(released: dict[str, Any]) -> None:
    current = _changed(lambda s: s["properties"]["hold_id"].update(type="integer", format=None))
    [problem] = breaking_changes(released, current)
    assert problem.startswith(f"{KEY}.hold_id: changed from")


def test_making_a_field_required_or_adding_a_required_one_breaks(released: dict[str, Any]) -> None:
    def mutate(schema: dict[str, Any]) -> None:
        schema["properties"]["priority"] = {"type": "string"}
        schema["required"].append("priority")

    assert breaking_changes(released, _changed(mutate)) == [f"{KEY}.priority: added as required"]
    optional_before = copy.deepcopy(released)
    optional_before["events"][KEY]["required"].remove("reason")
    assert breaking_changes(optional_before, snapshot()) == [f"{KEY}.reason: now required"]


def test_changing_allowed_values_breaks(released: dict[str, Any]) -> None:
    current = copy.deepcopy(snapshot())
    review = current["events"]["ClinicianReviewOpened.v1"]
    review["$defs"]["ReviewPriority"]["enum"].append("whenever")
    assert breaking_changes(released, current) == [
        "ClinicianReviewOpened.v1.priority: changed from "
        '["enum", ["high", "routine", "urgent"]] to ["enum", ["high", "routine", "urgent", "whenever"]]'
    ]


def test_removing_a_released_version_breaks(released: dict[str, Any]) -> None:
    current = copy.deepcopy(snapshot())
    del current["events"][KEY]
    assert breaking_changes(released, current) == [
        f"{KEY}: a released version was removed; consumers may still receive it"
    ]


def test_adding_an_optional_field_is_compatible(released: dict[str, Any]) -> None:
    current = _changed(lambda s: s["properties"].update(note={"anyOf": [{"type": "string"}, {"type": "null"}]}))
    assert breaking_changes(released, current) == []


def test_a_superseded_version_without_an_upcaster_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(contracts.UPCASTERS, ("SideEffectReportSubmitted", 1))
    assert missing_upcasters() == ["SideEffectReportSubmitted.v1: superseded but no upcaster to v2"]
