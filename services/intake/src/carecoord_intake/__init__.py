"""Intake: registration (PHI encrypted at rest, kept here only), screening scores, eligibility decisions, declared coverage."""
