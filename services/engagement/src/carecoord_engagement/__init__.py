"""Engagement: the work staff must do about a patient (tasks with an owner, a due time and an
outcome) and the messages that tell people about it (patients and staff, by email and SMS). The only
service that talks to people: no other holds contact details or provider credentials (ADR 0017)."""
