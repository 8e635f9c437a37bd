"""JSON for log lines and span files: orjson, and a fallback that takes anything.

orjson refuses what the standard library takes (an int past 64 bits, a lone
surrogate) and the standard library refuses what orjson takes (a UUID as a
key). A log line or a batch of exported spans must never be lost to either,
so the fallback makes every key a string and every value it cannot encode its
``str``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any, default: Any = str, option: int = 0) -> bytes:
    try:
        return orjson.dumps(obj, default=default, option=_OPTIONS | option)
    except TypeError:
        text = json.dumps(_plain_keys(obj), default=default or str)
        return (text + "\n").encode() if option & orjson.OPT_APPEND_NEWLINE else text.encode()


def _plain_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): _plain_keys(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_keys(v) for v in obj]
    return obj
