"""The channels' adapters: email over SMTP, SMS through a REST provider or an email-to-SMS gateway.

Every adapter gets the notification id as the message's stable identity: the mail's Message-ID
``<id@domain>`` and the REST provider's idempotency key. A retry after a crash therefore sends a
message with the same identity as the first attempt, so the receiving side can drop the copy
(mail clients thread it as one message; a provider that honours idempotency keys sends it once).
That is the real exactly-once boundary: our side sends again only when it cannot know whether
the first attempt reached the server (a crash between the server's OK and our commit).

Failures are raised as :class:`DeliveryFailed` with a short code and whether a retry can help;
never a server's own text, which can quote the address.

SMS locally: ``GatewaySms`` mails the text to ``<digits>@sms_gateway_domain`` through the same SMTP
server, as carrier email-to-SMS gateways accept it. With the defaults that is the local mailbox:
no SMS leaves the machine, and the Maildir shows what would have been texted. (Carrier gateways
need the carrier's domain per number; production uses the REST provider.)
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import httpx
from pydantic import SecretStr


@dataclass(frozen=True)
class Outgoing:
    notification_id: uuid.UUID
    # An email address or a phone number; never logged.
    to: str
    subject: str
    body: str


class DeliveryFailed(Exception):
    def __init__(self, code: str, *, retryable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.retryable = retryable


class Adapter(Protocol):
    async def send(self, message: Outgoing) -> str:
        """Deliver to the provider; the provider's message id. Raises DeliveryFailed."""
        ...


def message_id(notification_id: uuid.UUID, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str = "none"  # none | starttls | tls
    user: str = ""
    password: SecretStr = field(default_factory=lambda: SecretStr(""))
    timeout_s: float = 10.0
    mail_from: str = "carecoord <no-reply@carecoord.localhost>"
    domain: str = "carecoord.localhost"


class SmtpEmail:
    """Email through an SMTP server (stdlib smtplib in a worker thread: one connection per message)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def build(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["Message-ID"] = message_id(message.notification_id, self._config.domain)
        mail["Date"] = formatdate(usegmt=True)
        mail["From"] = self._config.mail_from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body)
        return mail

    async def send(self, message: Outgoing) -> str:
        mail = self.build(message)
        await asyncio.to_thread(self._send_blocking, mail)
        return str(mail["Message-ID"])

    def _send_blocking(self, mail: EmailMessage) -> None:
        config = self._config
        try:
            smtp: smtplib.SMTP
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=config.timeout_s, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if config.user:
                    smtp.login(config.user, config.password.get_secret_value())
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryFailed("smtp_recipient_refused", retryable=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPAuthenticationError:
            raise DeliveryFailed("smtp_auth_failed", retryable=True) from None
        except smtplib.SMTPResponseException as exc:
            retryable = 400 <= exc.smtp_code < 500
            raise DeliveryFailed("smtp_temporary" if retryable else "smtp_rejected", retryable=retryable) from None
        except (smtplib.SMTPException, OSError):
            # Refused connection, timeout, TLS failure, a server that hung up: the server may be back later.
            raise DeliveryFailed("smtp_unavailable", retryable=True) from None


_NOT_DIGITS = re.compile(r"\D")


def e164(phone: str, default_country: str = "1") -> str:
    """'+1 (303) 555-0100' or '303-555-0100' -> '+13035550100' (North American numbers without a prefix)."""
    digits = _NOT_DIGITS.sub("", phone)
    if phone.strip().startswith("+"):
        return "+" + digits
    if len(digits) == 10:
        return "+" + default_country + digits
    return "+" + digits


class GatewaySms:
    """SMS as mail to <digits>@domain through an SMTP server (locally: the local mailbox)."""

    def __init__(self, email: SmtpEmail, domain: str) -> None:
        self._email = email
        self._domain = domain

    async def send(self, message: Outgoing) -> str:
        number = e164(message.to).lstrip("+")
        return await self._email.send(
            Outgoing(message.notification_id, f"{number}@{self._domain}", subject="", body=message.body)
        )


class RestSms:
    """A Twilio-style REST provider: POST {base}/Accounts/{account}/Messages.json (form To, From, Body),
    basic auth account:token, the notification id as the idempotency key; answers {"sid": ...}."""

    def __init__(
        self,
        base_url: str,
        account: str,
        token: SecretStr,
        sender: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/Accounts/{account}/Messages.json"
        self._auth = (account, token.get_secret_value())
        self._sender = sender
        self._timeout = timeout_s
        self._transport = transport

    async def send(self, message: Outgoing) -> str:
        form = {"To": e164(message.to), "From": self._sender, "Body": message.body}
        headers = {"Idempotency-Key": str(message.notification_id)}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport, auth=self._auth) as http:
                response = await http.post(self._url, data=form, headers=headers)
        except httpx.HTTPError:
            raise DeliveryFailed("sms_unavailable", retryable=True) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryFailed("sms_temporary", retryable=True)
        if response.status_code in (401, 403):
            raise DeliveryFailed("sms_auth_failed", retryable=True)
        if response.status_code >= 400:
            raise DeliveryFailed("sms_rejected", retryable=False)
        try:
            sid = str(response.json()["sid"])[:128]
        except (ValueError, KeyError, TypeError):
            # Accepted (2xx) without an id we can read: sent all the same; sending again would text twice.
            sid = ""
        return sid
