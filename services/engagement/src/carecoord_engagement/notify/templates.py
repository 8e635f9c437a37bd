"""What engagement says, per template and channel: never any clinical detail.

A message may be read by anyone who sees the patient's phone or inbox, and email and SMS are
not confidential channels. So no template names a symptom, a medicine, a dose, a score, a
diagnosis, a review's reason or a patient: it says that someone should open the app (the
patient) or the worklist (staff), where the details are behind a login. The bodies have no
placeholders at all, so nothing a caller passes can put detail in them; tests check every
rendering against a list of clinical words.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Template(StrEnum):
    # Patient: a missed check-in; the care team is trying to reach them. Safety outreach: quiet hours do not apply.
    safety_outreach = "safety_outreach"
    # Patient: anything else from the care team (honours quiet hours).
    care_team_message = "care_team_message"
    # Staff: a review was escalated to them (a page: quiet hours do not apply).
    review_escalated = "review_escalated"
    # Staff: a task was given to them.
    task_assigned = "task_assigned"


class Channel(StrEnum):
    email = "email"
    sms = "sms"


class RecipientKind(StrEnum):
    patient = "patient"
    staff = "staff"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@dataclass(frozen=True)
class TemplateSpec:
    recipient: RecipientKind
    # Safety outreach and staff pages go out at any hour; everything else waits for the end of quiet hours.
    ignores_quiet_hours: bool
    subject: str
    email_body: str
    sms_body: str


_SIGNATURE = "\n\n-- carecoord\nThis message was sent automatically; please do not reply to it."

TEMPLATES: dict[Template, TemplateSpec] = {
    Template.safety_outreach: TemplateSpec(
        RecipientKind.patient,
        ignores_quiet_hours=True,
        subject="Your care team needs to reach you",
        email_body="Your care team needs to reach you. Please open the carecoord app." + _SIGNATURE,
        sms_body="carecoord: your care team needs to reach you. Please open the app. Reply STOP to opt out.",
    ),
    Template.care_team_message: TemplateSpec(
        RecipientKind.patient,
        ignores_quiet_hours=False,
        subject="A message from your care team",
        email_body="There is something new for you from your care team. Please open the carecoord app." + _SIGNATURE,
        sms_body="carecoord: there is something new for you. Please open the app. Reply STOP to opt out.",
    ),
    Template.review_escalated: TemplateSpec(
        RecipientKind.staff,
        ignores_quiet_hours=True,
        subject="carecoord: a review is waiting for you",
        email_body="A review has been escalated to you and is waiting. Please open your carecoord worklist."
        + _SIGNATURE,
        sms_body="carecoord: a review has been escalated to you. Please open your worklist.",
    ),
    Template.task_assigned: TemplateSpec(
        RecipientKind.staff,
        ignores_quiet_hours=False,
        subject="carecoord: a task is waiting for you",
        email_body="A task has been assigned to you. Please open your carecoord worklist." + _SIGNATURE,
        sms_body="carecoord: a task has been assigned to you. Please open your worklist.",
    ),
}


def spec(template: Template | str) -> TemplateSpec:
    return TEMPLATES[Template(template)]


def render(template: Template | str, channel: Channel | str) -> Rendered:
    """The subject and body of one template on one channel (SMS: the body alone, the subject unused)."""
    chosen = spec(template)
    body = chosen.sms_body if Channel(channel) is Channel.sms else chosen.email_body
    return Rendered(subject=chosen.subject, body=body)
