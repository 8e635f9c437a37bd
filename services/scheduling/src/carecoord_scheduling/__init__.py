"""Scheduling: clinicians, availability and appointments.

Books the initial evaluation of an eligible patient, a treatment plan's course,
urgent review appointments; cancels and rebooks dosing sessions around holds;
and keeps a journal of the events it received.
"""
