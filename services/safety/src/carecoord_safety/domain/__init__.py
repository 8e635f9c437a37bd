"""Safety's decisions beside the escalation rules (``rules/``): what a trigger does to an open
review, the timers around a dosing session, the dose limits on a review's resolution.
Pure functions of loaded values, like the rules: no database, broker or HTTP here."""
