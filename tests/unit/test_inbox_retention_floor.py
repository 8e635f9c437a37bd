"""Issue 19, finding 4: an inbox row outlives every copy of its record on the topics.

Kafka deletes a whole segment once its newest record is past retention.ms, and a
segment takes records for up to segment.ms: a record can be read for
retention.ms + segment.ms. The inbox floor counts both, and the registry sets
segment.ms on every topic so the broker's 7-day default never applies unseen.
"""

from __future__ import annotations

import dataclasses

import pytest

from carecoord_contracts.topics import ALL_TOPICS, DAY_MS, SERVICES, topics_consumed_by
from carecoord_shared.config import ServiceSettings
from carecoord_shared.messaging.retention import MARGIN_DAYS, Retention, minimum_inbox_retention_days

from .deploy_support import of_kind, rendered


def test_every_topic_states_its_segment_ms_to_the_broker_and_in_the_manifests() -> None:
    manifests = of_kind(rendered("topics"), "KafkaTopic")
    for topic in ALL_TOPICS:
        assert topic.topic_config()["segment.ms"] == str(topic.segment_ms), topic.name
        assert manifests[topic.name]["spec"]["config"]["segment.ms"] == str(topic.segment_ms), topic.name
        # A segment longer than the retention would keep most records twice as long as promised.
        assert 0 < topic.segment_ms <= topic.retention_ms, topic.name


def test_the_floor_is_retention_plus_segment_plus_margin() -> None:
    [reports] = [t for t in ALL_TOPICS if t.name == "patient-app.reports"]
    weekly = dataclasses.replace(reports, retention_ms=30 * DAY_MS, segment_ms=7 * DAY_MS)
    assert minimum_inbox_retention_days((weekly,)) == 30 + 7 + MARGIN_DAYS
    assert MARGIN_DAYS > 0


def test_an_inbox_retention_that_covers_the_retention_but_not_the_last_segment_is_refused() -> None:
    """37 days against 30-day topics passed before; with week-long segments a record lives up to 37 days and more."""
    weekly = tuple(dataclasses.replace(t, segment_ms=7 * DAY_MS) for t in topics_consumed_by("safety"))
    with pytest.raises(ValueError, match=r"segment\.ms"):
        Retention(None, None, sent_outbox_days=7, inbox_days=37, consumed=weekly)  # type: ignore[arg-type]
    Retention(None, None, sent_outbox_days=7, inbox_days=38, consumed=weekly)  # type: ignore[arg-type]


@pytest.mark.parametrize("service", [s for s in SERVICES if topics_consumed_by(s)])
def test_the_default_inbox_retention_covers_every_consumed_topic(service: str) -> None:
    default = ServiceSettings.model_fields["inbox_retention_days"].default
    assert default >= minimum_inbox_retention_days(topics_consumed_by(service))
    Retention(None, None, sent_outbox_days=7, inbox_days=default, consumed=topics_consumed_by(service))  # type: ignore[arg-type]
