"""X12 5010 for the transactions billing exchanges: 837P out, 835 in, 270 out, 271 in.

Only the segments these transactions need; no other X12 library is a runtime
dependency. Tests check what is written with third-party validators.
"""
