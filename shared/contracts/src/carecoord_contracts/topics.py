"""The topic registry: the single source of truth for every Kafka topic.

Topic creation (devstack, deploy manifests), the services' subscriptions and
the documentation all read this module. Topics are named
``<producing context>.<aggregate>``; every business topic is keyed by the
pseudonymous patient id so one patient's events stay in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Re-exported: the registry is read as "topics and the services that produce and consume them".
from .services import SERVICES as SERVICES

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
    # Kafka deletes whole segments, and only once a segment's newest record is past
    # retention.ms; a segment takes records for up to segment.ms. Left unset it is the
    # broker's 7 days, so a record could outlive retention.ms by a week. Set here so
    # that the bound below (and the inbox retention floor built on it) is what the
    # broker really does, and records go close to the retention they are promised.
    segment_ms: int = DAY_MS
    description: str = ""
    config: dict[str, str] = field(default_factory=dict)

    @property
    def longest_life_ms(self) -> int:
        """How long a record can stay readable on this topic at most (before the broker's own delays)."""
        return self.retention_ms + self.segment_ms

    def topic_config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "segment.ms": str(self.segment_ms), **self.config}


PATIENT_APP_REPORTS = Topic(
    name="patient-app.reports",
    producer="patient-app",
    consumers=("safety",),
    events=("SideEffectReportSubmitted", "VitalsSubmitted", "MoodCheckInSubmitted"),
    description="What the patient app submits on the patient's behalf: side-effect reports, vitals, mood check-ins.",
)
INTAKE_PATIENTS = Topic(
    name="intake.patients",
    producer="intake",
    # Dosing and safety learn each patient's state of residence: clinicians reach
    # only patients in states they are licensed in.
    # Engagement: the time zone of quiet hours, and whether the patient agreed to text messages (sms_contact).
    consumers=("scheduling", "billing", "dosing", "safety", "engagement"),
    # Dosing refuses a dosing session without current treatment consent; safety opens a review when it is withdrawn.
    events=("PatientRegistered", "CoverageDeclared", "ConsentSigned", "ConsentWithdrawn"),
    description="Patients enrolled, the coverage they declared and the consents they signed or withdrew, with "
    "pseudonymous ids only.",
)
INTAKE_SCREENING = Topic(
    name="intake.screening",
    producer="intake",
    # Dosing reads the intake scores (AssessmentScored) as the titration baselines.
    consumers=("scheduling", "safety", "dosing"),
    events=("AssessmentScored", "MedicalScreeningCompleted", "EligibilityDetermined"),
    description="Screening scores, medical screening and the eligibility decision with its reasons.",
)
SCHEDULING_APPOINTMENTS = Topic(
    name="scheduling.appointments",
    producer="scheduling",
    # Engagement: a review no clinician could take becomes an operator's task.
    consumers=("dosing", "safety", "billing", "engagement"),
    events=(
        "AppointmentBooked",
        "AppointmentRescheduled",
        "AppointmentCancelled",
        "AppointmentCompleted",
        "AppointmentNoShow",
        "ReviewAppointmentUnavailable",
    ),
    description="Appointments of every kind through their life, and reviews no clinician could take in time.",
)
SCHEDULING_CARE_TEAMS = Topic(
    name="scheduling.care-teams",
    producer="scheduling",
    # Every service narrows clinicians' access to the patient's care team (carecoord_shared.auth.care).
    consumers=("intake", "dosing", "safety", "billing", "engagement"),
    events=("CareTeamChanged",),
    description="Each patient's care team (prescribing clinician and therapist), whole, every time it changes.",
)
SAFETY_REPORTS = Topic(
    name="safety.reports",
    producer="safety",
    # Engagement: a missed check-in is a call for the patient's prescriber, and a message to the patient.
    consumers=("dosing", "engagement"),
    events=("SideEffectReported", "VitalsRecorded", "MoodCheckInRecorded", "CheckInMissed"),
    description="Recorded side-effect reports, vitals and mood check-ins (coded facts, no free text), and missed check-ins.",
)
SAFETY_REVIEWS = Topic(
    name="safety.reviews",
    producer="safety",
    # Everyone learns ClinicianReviewAssigned: the assignee of an open review reaches the patient's data.
    # Engagement pages whoever an escalation names, and closes their task when the review is acknowledged.
    consumers=("scheduling", "billing", "intake", "dosing", "engagement"),
    events=(
        "ClinicianReviewOpened",
        "ClinicianReviewAssigned",
        "ClinicianReviewAcknowledged",
        "ClinicianReviewOverdue",
        "ClinicianReviewResolved",
    ),
    description="Clinician review tasks: opened by the safety rules, assigned and escalated, acknowledged, overdue, "
    "resolved.",
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
    consumers=("scheduling", "billing", "safety"),
    events=(
        "TreatmentPlanCreated",
        "TreatmentPlanActivated",
        "TreatmentPlanPaused",
        "TreatmentPlanResumed",
        "TreatmentPlanDiscontinued",
        "TreatmentPlanCompleted",
        "DoseProposed",
        "DoseApproved",
        "DoseChangeRefused",
    ),
    description="Treatment-plan status changes and dose proposals and approvals.",
)
DOSING_SESSIONS = Topic(
    name="dosing.sessions",
    producer="dosing",
    consumers=("scheduling", "safety"),
    events=("DosingSessionAuthorised", "DosingSessionRefused"),
    description="Whether each scheduled dosing session may go ahead, and at what dose.",
)
DOSING_OUTCOMES = Topic(
    name="dosing.outcomes",
    producer="dosing",
    consumers=(),
    events=("TreatmentResponseReached", "RemissionReached"),
    description="Outcome milestones of measurement-based care (response, remission) per patient, instrument and "
    "definition version, each once; for other teams (care management, reporting).",
)
BILLING_COVERAGE = Topic(
    name="billing.coverage",
    producer="billing",
    consumers=(),
    events=("CoverageVerified",),
    description="Eligibility answers from payers (X12 271).",
)
BILLING_CHARGES = Topic(
    name="billing.charges",
    producer="billing",
    consumers=(),
    events=("ChargeCreated", "ChargeVoided", "InvoiceIssued"),
    description="Charges per billable appointment, voids, and self-pay invoices.",
)
BILLING_CLAIMS = Topic(
    name="billing.claims",
    producer="billing",
    # Engagement: a denied claim is a task for the billing office.
    consumers=("engagement",),
    events=("ClaimSubmitted", "RemittancePosted", "ClaimDenied"),
    description="Claims sent to payers (X12 837P) and what payers answered (X12 835).",
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
    INTAKE_SCREENING,
    SCHEDULING_APPOINTMENTS,
    SCHEDULING_CARE_TEAMS,
    SAFETY_REPORTS,
    SAFETY_REVIEWS,
    SAFETY_HOLDS,
    DOSING_PLANS,
    DOSING_SESSIONS,
    DOSING_OUTCOMES,
    BILLING_COVERAGE,
    BILLING_CHARGES,
    BILLING_CLAIMS,
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
