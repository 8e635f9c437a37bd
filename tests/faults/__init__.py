"""The fault-injection suite's parts: load (history), nemesis (faults), checker."""
