"""Intake: patient registration (screening, eligibility and PHI handling come with the intake issue)."""
