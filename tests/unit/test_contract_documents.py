"""The published contract: committed documents are current and valid to a third-party parser."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from carecoord_contracts import ALL_TOPICS, HISTORY
from carecoord_contracts.cli import stale
from carecoord_contracts.spec import asyncapi, message_key
from carecoord_devstack.paths import REPO_ROOT

DOCS = REPO_ROOT / "docs"
VALIDATOR = REPO_ROOT / "tools" / "asyncapi" / "validate.mjs"


def test_committed_documents_are_current() -> None:
    assert stale(DOCS) == [], "run `make contracts` and commit docs/"


def test_asyncapi_lists_every_topic_and_every_event_version() -> None:
    document = json.loads((DOCS / "asyncapi.json").read_text())
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == {t.name for t in ALL_TOPICS}
    assert {message_key(t, v) for (t, v) in HISTORY} <= set(document["components"]["messages"])
    for topic in ALL_TOPICS:
        assert document["channels"][topic.name]["bindings"]["kafka"]["partitions"] == topic.partitions
        assert f"{topic.producer}.send.{topic.name}" in document["operations"]
        for consumer in topic.consumers:
            assert f"{consumer}.receive.{topic.name}" in document["operations"]


def test_a_service_document_holds_only_what_it_sends_and_receives() -> None:
    document = asyncapi("dosing")
    assert set(document["channels"]) == {
        t.name for t in ALL_TOPICS if t.producer == "dosing" or "dosing" in t.consumers
    }
    assert all(op.startswith("dosing.") for op in document["operations"])


def _validate(path: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed for the AsyncAPI validator (apt-get install nodejs npm)")
    return subprocess.run([node, str(VALIDATOR), path], check=False, capture_output=True, text=True, timeout=120)


def test_asyncapi_passes_the_asyncapi_parser() -> None:
    result = _validate(str(DOCS / "asyncapi.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID AsyncAPI 3.0.0" in result.stdout


def test_the_validator_rejects_a_broken_document(tmp_path) -> None:  # type: ignore[no-untyped-def]
    document = asyncapi()
    next(iter(document["operations"].values()))["action"] = "publish"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    result = _validate(str(broken))
    assert result.returncode == 1 and "INVALID" in result.stdout
