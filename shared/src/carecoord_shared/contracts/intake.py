"""Events produced by the intake service."""

from __future__ import annotations

from .common import StateCode
from .envelope import Event


class PatientRegistered(Event):
    """A patient enrolled; the pseudonymous patient id is the envelope's key."""

    event_type = "PatientRegistered"
    version = 1

    state_of_residence: StateCode
    time_zone: str
