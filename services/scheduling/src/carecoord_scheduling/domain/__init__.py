"""Scheduling's decisions, pure: no database, no HTTP, no broker, no clock of their own.

- :mod:`.policy`: appointment kinds, who holds them, and the booking policy (versioned).
- :mod:`.availability`: clinicians' weekly wall-clock windows made concrete in UTC.
- :mod:`.booking`: which slots are open, whether a requested time may be booked, an appointment's life.
- :mod:`.courses`: what the care pathway's events call for (eligibility, the dosing course, holds, reviews).

The use cases (``booking.py``, ``courses.py``, ``clinicians.py``) load what these need, call them, and
save and emit what they decide in one transaction.
"""
