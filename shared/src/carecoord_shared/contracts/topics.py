"""The topic registry: the single source of truth for every Kafka topic.

Topic creation (devstack, deploy manifests), the services' subscriptions and
the documentation all read this module. Topics are named
``<producing context>.<aggregate>``; every business topic is keyed by the
pseudonymous patient id so one patient's events stay in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICES = ("intake", "scheduling", "dosing", "safety", "billing")

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str
    consumers: tuple[str, ...]
    events: tuple[str, ...]
    partitions: int = 3
    key: str = "patient_id"
    retention_ms: int = 30 * DAY_MS
    description: str = ""
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), **self.config}


PATIENT_APP_REPORTS = Topic(
    name="patient-app.reports",
    producer="patient-app",
    consumers=("safety",),
    events=("SideEffectReportSubmitted",),
    description="What the patient app submits on the patient's behalf (side-effect reports).",
)
INTAKE_PATIENTS = Topic(
    name="intake.patients",
    producer="intake",
    consumers=("scheduling",),
    events=("PatientRegistered",),
    description="Patient lifecycle facts from intake, with pseudonymous ids only.",
)
SAFETY_REPORTS = Topic(
    name="safety.reports",
    producer="safety",
    consumers=(),
    events=("SideEffectReported",),
    description="Recorded side-effect reports and the safety decision taken on each.",
)
SAFETY_REVIEWS = Topic(
    name="safety.reviews",
    producer="safety",
    consumers=("scheduling", "billing"),
    events=("ClinicianReviewOpened", "ClinicianReviewResolved"),
    description="Clinician review tasks opened and resolved by safety monitoring.",
)
SAFETY_HOLDS = Topic(
    name="safety.holds",
    producer="safety",
    consumers=("dosing",),
    events=("TreatmentHoldRequested", "TreatmentHoldReleased"),
    description="Treatment holds: requested by safety rules, released by a clinician's decision.",
)
DOSING_PLANS = Topic(
    name="dosing.plans",
    producer="dosing",
    consumers=("scheduling", "billing"),
    events=(
        "TreatmentPlanCreated",
        "TreatmentPlanActivated",
        "TreatmentPlanPaused",
        "TreatmentPlanResumed",
    ),
    description="Treatment-plan status changes.",
)


def dead_letter_topic(service: str) -> Topic:
    return Topic(
        name=f"deadletter.{service}",
        producer=service,
        consumers=(),
        events=("DeadLetter",),
        partitions=1,
        key="original key",
        retention_ms=90 * DAY_MS,
        description=f"Messages the {service} service could not process, with the reason and their origin.",
    )


BUSINESS_TOPICS: tuple[Topic, ...] = (
    PATIENT_APP_REPORTS,
    INTAKE_PATIENTS,
    SAFETY_REPORTS,
    SAFETY_REVIEWS,
    SAFETY_HOLDS,
    DOSING_PLANS,
)
DEAD_LETTER_TOPICS: tuple[Topic, ...] = tuple(dead_letter_topic(s) for s in SERVICES)
ALL_TOPICS: tuple[Topic, ...] = BUSINESS_TOPICS + DEAD_LETTER_TOPICS


def topics_consumed_by(service: str) -> tuple[Topic, ...]:
    return tuple(t for t in BUSINESS_TOPICS if service in t.consumers)


def topic_for_event(event_type: str) -> Topic:
    for topic in BUSINESS_TOPICS:
        if event_type in topic.events:
            return topic
    raise KeyError(f"no topic in the registry carries {event_type!r}")
