"""`carecoord demo`: one scripted patient journey through all six services.

Every step goes through a service's public HTTP API, as the apps would; what
the services do in reaction to one another (booking, pausing, cancelling,
rebooking) is waited for, not done by the demo. The demo patient is fictional;
nothing it prints is PHI: ids, codes and statuses only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from carecoord_contracts.common import US_STATES
from carecoord_contracts.topics import INTAKE_PATIENTS, SAFETY_REPORTS, SCHEDULING_APPOINTMENTS, SERVICES

from .config import Target, patient_token
from .errors import OperatorError
from .http import Services
from .journey import Step, journey
from .kafka import Broker, header

CLINICIAN = "demo-psychiatrist"
AROUND_THE_CLOCK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
DEMO_CLINICIANS = {
    # Licensed everywhere and available at any hour, so every booking of the demo finds someone.
    CLINICIAN: {"role": "psychiatric_clinician", "time_zone": "America/Chicago"},
    "demo-therapist": {"role": "therapist", "time_zone": "America/Chicago"},
}
NO_CONDITIONS = dict.fromkeys(
    (
        "aneurysmal_vascular_disease",
        "arteriovenous_malformation",
        "intracerebral_haemorrhage_history",
        "uncontrolled_hypertension",
        "severe_cardiovascular_disease",
        "active_psychosis",
        "active_mania",
        "pregnant",
        "breastfeeding",
        "ketamine_hypersensitivity",
        "past_psychosis_stable",
        "substance_use_disorder_in_recovery",
        "significant_liver_disease",
        "interstitial_cystitis_or_urinary_symptoms",
        "current_suicidal_thoughts",
    ),
    False,
)


def registration() -> dict[str, Any]:
    """A fictional adult in Colorado (a state the local configuration serves)."""
    return {
        "external_id": f"demo-{uuid.uuid4()}",
        "first_name": "Demo",
        "last_name": "Patient",
        "date_of_birth": "1984-07-19",
        "sex": "F",
        "email": "demo.patient@example.org",
        "phone": "+1 303 555 0100",
        "address": {"line1": "1 Demo Street", "city": "Denver", "state": "CO", "postal_code": "80202"},
        "state_of_residence": "CO",
        "time_zone": "America/Denver",
    }


def intake_steps() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/assessments", {"instrument": "phq9", "answers": [2, 2, 1, 2, 1, 1, 2, 1, 0]}),
        ("POST", "/assessments", {"instrument": "gad7", "answers": [1, 1, 1, 0, 1, 0, 1]}),
        ("POST", "/assessments", {"instrument": "pcl5", "answers": [1] * 20}),
        ("POST", "/medical-screening", {"answers": NO_CONDITIONS}),
        ("POST", "/blood-pressure", {"systolic": 122, "diastolic": 78, "measured_at": _just_now()}),
        (
            "PUT",
            "/coverage",
            {"kind": "insurance", "payer_id": "BCBSCO", "member_id": "DEMO-0001", "plan": "Silver PPO"},
        ),
    ]


def _just_now() -> str:
    return (datetime.now(UTC) - timedelta(seconds=5)).isoformat()


@dataclass
class Journey:
    """What the demo learned along the way, for later steps and the summary."""

    patient_id: str = ""
    # The patient's prescriber: the clinician the initial evaluation was booked with (ADR 0015), who
    # writes the plan and resolves the review.
    prescriber: str = CLINICIAN
    plan_id: str = ""
    review_id: str = ""
    facts: dict[str, str] = field(default_factory=dict)


DemoStep = tuple[str, Callable[["Demo"], Awaitable[str]]]


class Demo:
    def __init__(self, target: Target, http: Services, broker: Broker, *, timeout: float = 30.0) -> None:
        self.target = target
        self.http = http
        self.broker = broker
        self.timeout = timeout
        self.j = Journey()

    async def until(self, what: str, check: Callable[[], Awaitable[Any]]) -> Any:
        """Wait for another service's reaction; say plainly which one did not come."""
        deadline = time.monotonic() + self.timeout
        while True:
            found = await check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise OperatorError(
                    f"Waited {self.timeout:.0f}s for: {what}. Look at `carecoord status` (is a consumer lagging?) "
                    f"and `carecoord dlq list` (was an event dead-lettered?); patient {self.j.patient_id}."
                )
            await asyncio.sleep(0.3)

    async def appointments(self, include_all: bool = False) -> list[dict[str, Any]]:
        return await self.http.every_item(
            "scheduling", f"/v1/patients/{self.j.patient_id}/appointments", include_all=str(include_all).lower()
        )

    async def of_type(self, kind: str, status: str = "booked") -> list[dict[str, Any]]:
        return [a for a in await self.appointments(True) if a["appointment_type"] == kind and a["status"] == status]

    async def plan(self) -> dict[str, Any]:
        return await self.http.get("dosing", f"/v1/patients/{self.j.patient_id}/plan")  # type: ignore[no-any-return]

    async def plan_in(self, status: str) -> dict[str, Any] | None:
        plan = await self.plan()
        return plan if plan["status"] == status else None

    # --- the steps ------------------------------------------------------------------

    async def check_stack(self) -> str:
        for service in SERVICES:
            await self.http.request(service, "GET", "/health/ready")
        return f"{len(SERVICES)} services ready"

    async def seed_clinicians(self) -> str:
        for clinician_id, body in DEMO_CLINICIANS.items():
            await self.http.put(
                "scheduling",
                f"/v1/clinicians/{clinician_id}",
                {**body, "licensed_states": sorted(US_STATES), "weekly_availability": AROUND_THE_CLOCK},
            )
        return f"{', '.join(DEMO_CLINICIANS)} (licensed in every state, available around the clock)"

    async def register(self) -> str:
        self.j.patient_id = (await self.http.post("intake", "/v1/patients", registration()))["patient_id"]
        return f"patient {self.j.patient_id} (pseudonymous id; the demographics stay encrypted in intake)"

    async def intake(self) -> str:
        for method, path, body in intake_steps():
            await self.http.request("intake", method, f"/v1/patients/{self.j.patient_id}{path}", json=body)
        return "PHQ-9, GAD-7, PCL-5, medical screening, blood pressure, coverage"

    async def eligibility(self) -> str:
        status = await self.http.get("intake", f"/v1/patients/{self.j.patient_id}/intake")
        decision = status.get("decision") or {}
        if decision.get("outcome") != "eligible":
            raise OperatorError(
                f"intake decided {decision.get('outcome')!r} ({decision.get('reasons')}); the demo needs an eligible patient"
            )
        self.j.facts["intake"] = f"eligible (rules {decision['rule_version']})"
        return self.j.facts["intake"]

    async def consent(self) -> str:
        """The patient reads the current treatment consent and signs it with their own token (the app's part)."""
        patient = Services(dataclasses.replace(self.target, token=patient_token(self.j.patient_id)))
        async with patient:
            texts = await patient.get("intake", "/v1/consent-documents")
            treatment = next(t for t in texts if t["document"] == "ketamine_treatment")
            await patient.post(
                "intake",
                f"/v1/patients/{self.j.patient_id}/consents",
                {"document": "ketamine_treatment", "document_version": treatment["version"]},
            )
        await self.until(
            "dosing to receive the treatment consent",
            lambda: self._dosing_has_read(INTAKE_PATIENTS.name, "ConsentSigned"),
        )
        return f"ketamine treatment consent {treatment['version']} signed by the patient"

    async def evaluation(self) -> str:
        booked = await self.until(
            "scheduling to book the initial evaluation", lambda: self.of_type("initial_evaluation")
        )
        team = await self.http.get("scheduling", f"/v1/patients/{self.j.patient_id}/care-team")
        self.j.prescriber = team["prescriber_id"] or CLINICIAN
        return (
            f"initial evaluation with {booked[0]['clinician_id']} at {booked[0]['starts_at']}; "
            f"prescriber on the care team: {self.j.prescriber}"
        )

    async def treatment_plan(self) -> str:
        plan = await self.http.post(
            "dosing",
            "/v1/plans",
            {
                "patient_id": self.j.patient_id,
                "clinician_id": self.j.prescriber,
                "starting_dose_mg": 100,
                "max_dose_mg": 300,
                "max_step_mg": 50,
                "planned_sessions": 6,
                "indication": "depression",
                "diagnosis_codes": ["F33.1"],
            },
        )
        self.j.plan_id = plan["plan_id"]
        active = await self.http.post(
            "dosing", f"/v1/plans/{self.j.plan_id}/activate", {"clinician_id": self.j.prescriber}
        )
        return f"plan {self.j.plan_id} {active['status']}, starting dose {active['approved_dose_mg']} mg approved"

    async def course(self) -> str:
        sessions = await self.until(
            "scheduling to book the course's dosing sessions", lambda: self.of_type("dosing_session")
        )
        kinds = Counter(a["appointment_type"] for a in await self.appointments())
        return (
            ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            + f" booked; first dosing session {sessions[0]['starts_at']}"
        )

    async def session(self) -> str:
        first = sorted(await self.of_type("dosing_session"), key=lambda a: a["starts_at"])[0]
        reading = await self.http.post(
            "safety",
            "/v1/vitals",
            {
                "patient_id": self.j.patient_id,
                "systolic": 124,
                "diastolic": 80,
                "measured_at": _just_now(),
                "context": "pre_dose",
                "appointment_id": first["appointment_id"],
            },
        )
        await self.until(
            "dosing to receive the pre-dose reading",
            lambda: self._dosing_has_read(SAFETY_REPORTS.name, "VitalsRecorded"),
        )
        decision = await self.http.post(
            "dosing", f"/v1/dosing-sessions/{first['appointment_id']}/authorise", {"patient_id": self.j.patient_id}
        )
        if not decision["authorised"]:
            raise OperatorError(f"dosing refused the session: {decision['reason']}")
        within = "within limits" if not reading.get("out_of_limits") else "out of limits"
        return f"pre-dose blood pressure {within}; session authorised at {decision['dose_mg']} mg"

    async def _dosing_has_read(self, topic: str, event_type: str) -> bool:
        """Whether the patient's latest event of that type is on the topic and dosing's group has committed past it.

        The topic is watched, not just the group: the producer's relay publishes
        a moment after its HTTP answer, so the group may be "caught up" on a
        topic that does not hold the event yet.
        """
        key = self.j.patient_id.encode()
        ours = [r for r in await self.broker.records([topic]) if r.key == key and header(r, "event-type") == event_type]
        if not ours:
            return False
        latest = ours[-1]
        committed = await self.broker.committed("carecoord.dosing")
        offset: int = latest.offset  # aiokafka's records are untyped
        return committed.get(TopicPartition(latest.topic, latest.partition), -1) > offset

    async def side_effect(self) -> str:
        outcome = await self.http.post(
            "safety",
            "/v1/side-effect-reports",
            {"patient_id": self.j.patient_id, "symptoms": ["chest_pain"], "grade": 3},
        )
        if not (outcome["escalated"] and outcome["hold_requested"]):
            raise OperatorError(f"safety did not escalate the severe report: {outcome}")
        self.j.review_id = str(outcome["review_id"])
        return f"chest pain, grade 3: review {self.j.review_id} opened, treatment hold requested"

    async def paused(self) -> str:
        await self.until("dosing to pause the plan", lambda: self.plan_in("paused"))
        cancelled = await self.until(
            "scheduling to cancel the upcoming dosing sessions", self._dosing_sessions_all_cancelled
        )
        review = await self.until(
            "scheduling to book the urgent review (or to say no clinician is free in time)", self._urgent_review
        )
        return f"plan paused; {len(cancelled)} dosing session(s) cancelled; {review}"

    async def _urgent_review(self) -> str | None:
        """Either outcome of scheduling is the system working: a demo stack run many times
        in an hour can have every licensed clinician's slot before the review's due time taken."""
        urgent = await self.of_type("urgent_review")
        if urgent:
            return f"urgent review with {urgent[0]['clinician_id']} at {urgent[0]['starts_at']}"
        key = self.j.patient_id.encode()
        if any(
            r.key == key and header(r, "event-type") == "ReviewAppointmentUnavailable"
            for r in await self.broker.records([SCHEDULING_APPOINTMENTS.name])
        ):
            return "no licensed clinician free before the review is due: scheduling said so (ReviewAppointmentUnavailable) for the team to arrange"
        return None

    async def _dosing_sessions_all_cancelled(self) -> list[dict[str, Any]]:
        sessions = [a for a in await self.appointments(True) if a["appointment_type"] == "dosing_session"]
        if any(a["status"] == "booked" for a in sessions):
            return []
        return [a for a in sessions if a["status"] == "cancelled"]

    async def review(self) -> str:
        reviews = (await self.http.get("safety", "/v1/reviews", patient_id=self.j.patient_id, limit=200))["items"]
        open_ = [r for r in reviews if r["status"] != "resolved"]
        if not open_:
            raise OperatorError("safety lists no open review for the demo patient")
        resolved = await self.http.post(
            "safety",
            f"/v1/reviews/{open_[0]['review_id']}/resolve",
            {"clinician_id": self.j.prescriber, "decision": "resume"},
        )
        return f"review {resolved['review_id']} {resolved['status']}: {resolved['decision']}"

    async def resumed(self) -> str:
        await self.until("dosing to resume the plan", lambda: self.plan_in("active"))
        rebooked = await self.until("scheduling to rebook the dosing sessions", lambda: self.of_type("dosing_session"))
        return f"plan active again; {len(rebooked)} dosing session(s) booked"

    STEPS: tuple[DemoStep, ...] = (
        ("The stack answers", check_stack),
        ("Scheduling: demo clinicians", seed_clinicians),
        ("Intake: registration", register),
        ("Intake: assessments, screening, blood pressure, coverage", intake),
        ("Intake: eligibility decision", eligibility),
        (
            "Scheduling books the initial evaluation (on EligibilityDetermined): its clinician is the prescriber",
            evaluation,
        ),
        ("Intake: the patient signs the ketamine treatment consent", consent),
        ("Dosing: the prescriber creates and activates the treatment plan", treatment_plan),
        ("Scheduling books the course (on TreatmentPlanActivated)", course),
        ("Session: pre-dose reading (safety) and authorisation (dosing)", session),
        ("Safety: the patient reports a severe side effect", side_effect),
        ("Dosing pauses the plan; scheduling cancels and books an urgent review", paused),
        ("Safety: the prescriber resolves the review with resume", review),
        ("Dosing resumes the plan; scheduling rebooks", resumed),
    )

    # --- the summary ----------------------------------------------------------------

    async def summary(self) -> tuple[dict[str, str], list[Step]]:
        pid = self.j.patient_id
        appointments = Counter(f"{a['appointment_type']} {a['status']}" for a in await self.appointments(True))
        plan = await self.plan()
        # The demo patient has a handful of reviews: one page holds them.
        reviews = (await self.http.get("safety", "/v1/reviews", patient_id=pid, limit=200))["items"]
        billing = Counter(
            e["event_type"] for e in await self.http.every_item("billing", f"/v1/patients/{pid}/received-events")
        )
        # Staff work the journey called for (a level-0 review is the prescriber's worklist: no task, no page).
        tasks: Counter[str] = Counter()
        for state in ("open", "closed"):
            page = await self.http.get("engagement", "/v1/tasks", patient_id=pid, state=state, limit=200)
            tasks.update(f"{t['kind']} {t['state']}" for t in page["items"])
        did = {
            "intake": f"registered the patient; decided {self.j.facts.get('intake', '?')}",
            "scheduling": "; ".join(f"{n} {k}" for k, n in sorted(appointments.items())),
            "dosing": f"plan {plan['status']}: "
            + " → ".join(t["to_status"] for t in plan["transitions"])
            + f"; approved dose {plan['approved_dose_mg']} mg",
            "safety": "; ".join(f"review {r['priority']} {r['status']} ({r['decision']})" for r in reviews),
            "billing": "recorded " + ", ".join(f"{n} {k}" for k, n in sorted(billing.items())),
            "engagement": "; ".join(f"{n} {k}" for k, n in sorted(tasks.items())) or "no task for staff",
        }
        return did, await journey(self.broker, uuid.UUID(pid))
