"""The channel adapters: a stable Message-ID / idempotency key, failures as codes, the SMS provider's protocol."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr

from carecoord_devstack.scratch import free_ports
from carecoord_engagement.notify.adapters import (
    DeliveryFailed,
    GatewaySms,
    Outgoing,
    RestSms,
    SmtpConfig,
    SmtpEmail,
    e164,
    message_id,
)

NOTIFICATION = uuid.UUID("2b0c6d0e-9c1f-4a57-8a0e-7f3c2b1a0d11")
MESSAGE = Outgoing(NOTIFICATION, "pat@example.org", "Your care team needs to reach you", "Please open the app.")


def test_the_mail_carries_the_notification_id_as_its_message_id_on_every_attempt() -> None:
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=25, domain="carecoord.example"))
    first, retry = email.build(MESSAGE), email.build(MESSAGE)
    assert first["Message-ID"] == retry["Message-ID"] == f"<{NOTIFICATION}@carecoord.example>"
    assert first["To"] == "pat@example.org" and first["Auto-Submitted"] == "auto-generated"
    assert first.get_content().strip() == "Please open the app."


async def test_an_smtp_server_that_is_not_there_is_a_retryable_failure_with_a_code_only() -> None:
    (closed,) = free_ports(1)
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=closed, timeout_s=2))
    with pytest.raises(DeliveryFailed) as failure:
        await email.send(MESSAGE)
    assert (failure.value.code, failure.value.retryable) == ("smtp_unavailable", True)
    assert "pat@example.org" not in str(failure.value)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [("+1 (303) 555-0100", "+13035550100"), ("303-555-0100", "+13035550100"), ("+44 20 7946 0958", "+442079460958")],
)
def test_phone_numbers_become_e164(phone: str, expected: str) -> None:
    assert e164(phone) == expected


class _Recorder:
    """A fake SMS provider behind httpx's MockTransport: records requests, answers what it is told."""

    def __init__(self, answer: httpx.Response) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer


def _rest(recorder: _Recorder) -> RestSms:
    return RestSms(
        "https://sms.example/2010-04-01",
        "AC123",
        SecretStr("tok"),
        "+15005550006",
        transport=httpx.MockTransport(recorder),
    )


async def test_the_rest_provider_gets_the_number_the_text_and_the_notification_id_as_idempotency_key() -> None:
    recorder = _Recorder(httpx.Response(201, json={"sid": "SM42"}))
    sms = Outgoing(NOTIFICATION, "(303) 555-0100", "", "carecoord: please open the app.")
    assert await _rest(recorder).send(sms) == "SM42"
    [request] = recorder.requests
    assert request.url == "https://sms.example/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["Idempotency-Key"] == str(NOTIFICATION)
    assert request.headers["Authorization"].startswith("Basic ")
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"To": "+13035550100", "From": "+15005550006", "Body": "carecoord: please open the app."}


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "sms_temporary", True),
        (503, "sms_temporary", True),
        (401, "sms_auth_failed", True),
        (400, "sms_rejected", False),
    ],
)
async def test_provider_answers_map_to_retryable_or_final_codes(status: int, code: str, retryable: bool) -> None:
    recorder = _Recorder(httpx.Response(status, json={"message": "number +13035550100 is invalid"}))
    with pytest.raises(DeliveryFailed) as failure:
        await _rest(recorder).send(MESSAGE)
    assert (failure.value.code, failure.value.retryable) == (code, retryable)
    assert "+1303" not in str(failure.value)


async def test_the_gateway_mails_the_text_to_the_numbers_gateway_address() -> None:
    sent: list[Outgoing] = []

    class _Email(SmtpEmail):
        async def send(self, message: Outgoing) -> str:
            sent.append(message)
            return message_id(message.notification_id, "d")

    gateway = GatewaySms(_Email(SmtpConfig(host="x", port=1)), "sms.localhost")
    await gateway.send(Outgoing(NOTIFICATION, "+1 303 555 0100", "ignored", "carecoord: please open the app."))
    assert [(m.to, m.subject, m.body) for m in sent] == [
        ("13035550100@sms.localhost", "", "carecoord: please open the app.")
    ]
