"""Delivery settings (prefix CARECOORD_), a mixin of the engagement service's settings.

Defaults run with `make run`: mail goes to the local mailbox (carecoord_devstack.mailbox, an
aiosmtpd server on 127.0.0.1:1025 writing a Maildir) and SMS through the email-to-SMS gateway
into the same mailbox, as <digits>@sms.localhost. Production sets an SMTP relay with STARTTLS
and credentials, and sms_provider=rest with the provider's URL, account and token.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .quiet_hours import parse_clock


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARECOORD_", extra="ignore")

    # Patients' contact details come from intake's service-only contact route at send time.
    intake_url: str = "http://127.0.0.1:8001"
    # Engagement's bearer token to intake (a service JWT); empty: minted per request with the development secret.
    intake_api_token: SecretStr = SecretStr("")
    contact_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 1025
    # none: plain (loopback only), starttls: upgrade on the submission port, tls: implicit TLS (465).
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    mail_from: str = "carecoord <no-reply@carecoord.localhost>"
    # The domain of Message-IDs (<notification id@domain>).
    mail_domain: str = "carecoord.localhost"

    # gateway: mail to <digits>@sms_gateway_domain (local runs: into the local mailbox; no real SMS);
    # rest: a Twilio-style REST provider (POST {sms_rest_url}/Accounts/{account}/Messages.json).
    sms_provider: Literal["gateway", "rest"] = "gateway"
    sms_gateway_domain: str = "sms.localhost"
    sms_rest_url: str = ""
    sms_rest_account: str = ""
    sms_rest_token: SecretStr = SecretStr("")
    sms_from: str = "+15005550006"
    sms_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0

    # In the patient's time zone; start == end: no quiet hours.
    quiet_hours_start: str = "21:00"
    quiet_hours_end: str = "08:00"

    notify_enabled: bool = True
    notify_poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    notify_batch_size: Annotated[int, Field(ge=1, le=500)] = 20
    # How long a sender owns a row it marked `sending`; after that a crashed sender's row is tried again.
    notify_lease_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    notify_max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    notify_backoff_initial_s: Annotated[float, Field(gt=0)] = 5.0
    notify_backoff_max_s: Annotated[float, Field(gt=0)] = 900.0

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            parse_clock(value)
        except ValueError:
            raise ValueError("a time of day as HH:MM") from None
        return value
