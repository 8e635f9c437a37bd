"""Safety monitoring: side-effect reports, escalation rules, clinician reviews and holds."""
