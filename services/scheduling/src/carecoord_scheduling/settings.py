"""Scheduling's settings (prefix CARECOORD_): the ones every service shares, read once by the composition root."""

from __future__ import annotations

from typing import Literal

from carecoord_shared.config import ServiceSettings


class SchedulingSettings(ServiceSettings):
    service: Literal["scheduling"] = "scheduling"
