"""What the load sent, recorded as it goes (Jepsen's history): the checker's reference."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class SentReport:
    report_id: uuid.UUID
    grade: int
    symptoms: tuple[str, ...]
    channel: str  # "http" (safety's API) or "kafka" (the patient-app.reports topic)
    event_id: uuid.UUID | None = None  # the envelope's, on Kafka
    acknowledged: bool = False  # a 2xx from safety, or the broker's ack
    resubmitted: bool = False  # sent again under the same id after an acknowledgement


@dataclass
class Journey:
    index: int
    external_id: str
    patient_id: uuid.UUID | None = None
    plan_id: uuid.UUID | None = None
    plan_active: bool = False
    reports: list[SentReport] = field(default_factory=list)
    visits: list[uuid.UUID] = field(default_factory=list)  # completed visits (appointment ids) billing must charge once
    done: bool = False
    error: str | None = None


@dataclass
class History:
    journeys: list[Journey] = field(default_factory=list)
    http_retries: int = 0
    kafka_retries: int = 0
    resubmissions: int = 0
    resubmissions_not_already: list[str] = field(default_factory=list)

    def reports(self) -> list[tuple[Journey, SentReport]]:
        return [(j, r) for j in self.journeys for r in j.reports]
