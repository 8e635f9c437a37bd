"""The metric names a PromQL expression reads, and the sample names a /metrics page exports.

A small tokenizer, not a parser: it needs only to tell a metric name from a
function, an aggregation, a keyword, a label name in ``by (...)``/``on (...)``,
a label matcher's contents, a range or a duration. Names are compared as
Prometheus stores them, which is what the exporter's text format shows on each
sample line: a counter as ``..._total``, a histogram as ``..._bucket``,
``..._sum`` and ``..._count``, a unit ``s`` as ``..._seconds``.
"""

from __future__ import annotations

import re

# Strings, label matchers, ranges/subqueries, numbers and durations (1.5, 10m, 1h30m, 0x1f),
# identifiers (metric names may hold colons), then any single other character.
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<matchers>\{(?:[^}"'`]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d[\w.]*)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end"}
# Followed by a parenthesised list of label names, not of expressions.
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_NAME_MATCHER = re.compile(r"""__name__\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects: ``sum by (service) (rate(x_total{a="b"}[5m]))`` reads ``x_total``."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr) if m.lastgroup != "space"]
    names: set[str] = set()
    skip_list = False
    for i, (kind, text) in enumerate(tokens):
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "matchers":
            found = _NAME_MATCHER.search(text)
            if found and (i == 0 or tokens[i - 1][0] != "name"):  # {__name__="x"} with no name before it
                names.add(found.group(1) or found.group(2))
            continue
        if skip_list:
            skip_list = text != ")"
            continue
        if kind != "name" or (i and tokens[i - 1][1] == "$"):  # a Grafana variable ($service) is no metric
            continue
        if text.lower() in LABEL_LISTS:
            skip_list = following == "("
            continue
        # A function or an aggregation is followed by "(" (an aggregation may put "by (...)" first).
        if following == "(" or following.lower() in LABEL_LISTS or text.lower() in KEYWORDS:
            continue
        names.add(text)
    return names


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{|\s)")


def exported_names(metrics_text: str) -> set[str]:
    """The sample names of a Prometheus text exposition (comments skipped)."""
    return {m.group(1) for line in metrics_text.splitlines() if not line.startswith("#") and (m := _SAMPLE.match(line))}
