"""Scheduling: clinicians, availability and appointments.

For now it records the plan, review and registration events it will act on
(booking and cancelling come with the scheduling issue).
"""
