"""Engagement's message templates say nothing clinical, to anyone, on any channel."""

from __future__ import annotations

import re

import pytest

from carecoord_engagement.notify.templates import TEMPLATES, Channel, RecipientKind, Template, render, spec

# Words that would tell whoever sees the phone or inbox something about the patient's care.
CLINICAL_WORDS = {
    "ketamine", "dose", "dosing", "mg", "medication", "medicine", "drug", "prescription", "symptom",
    "side effect", "dissociation", "blood pressure", "vitals", "depression", "ptsd", "anxiety", "suicide",
    "suicidal", "phq", "gad", "pcl", "score", "diagnosis", "treatment", "therapy", "psychiatr", "mental",
    "check-in", "checkin", "missed", "overdue", "urgent", "emergency", "risk", "adverse", "escalation level",
    "patient", "claim", "denied", "insurance", "plan",
}  # fmt: skip


@pytest.mark.parametrize("template", list(Template))
@pytest.mark.parametrize("channel", list(Channel))
def test_no_rendering_carries_a_clinical_word(template: Template, channel: Channel) -> None:
    text = render(template, channel)
    lowered = f"{text.subject}\n{text.body}".lower()
    found = sorted(word for word in CLINICAL_WORDS if re.search(rf"\b{re.escape(word)}", lowered))
    assert found == [], f"{template}/{channel} says {found}"


@pytest.mark.parametrize("template", list(Template))
def test_templates_have_no_placeholders_a_caller_could_fill_with_detail(template: Template) -> None:
    chosen = spec(template)
    for text in (chosen.subject, chosen.email_body, chosen.sms_body):
        assert not re.search(r"[{}$%]", text), text


def test_sms_fits_one_segment_and_patients_can_opt_out() -> None:
    for template, chosen in TEMPLATES.items():
        assert len(render(template, Channel.sms).body) <= 160, template
        if chosen.recipient is RecipientKind.patient:
            assert "STOP" in chosen.sms_body


def test_only_safety_outreach_and_staff_pages_ignore_quiet_hours() -> None:
    exempt = {template for template, chosen in TEMPLATES.items() if chosen.ignores_quiet_hours}
    assert exempt == {Template.safety_outreach, Template.review_escalated}
