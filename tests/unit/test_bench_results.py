"""The README's benchmark numbers are the committed run's (bench/publish.py renders them from bench/results/)."""

from __future__ import annotations

import json

import pytest
from rich.table import Table

from bench.publish import BEGIN, END, PUBLISHED, README, markdown, render, replace_section


def test_the_readme_quotes_the_committed_results_file() -> None:
    result = json.loads((PUBLISHED / "results.json").read_text())
    readme = README.read_text()
    section = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert section == render(result).strip(), "run `python -m bench.publish` after `make bench` (do not edit by hand)"
    # what the issue asks of the committed run: the plots next to the numbers
    assert {p.name for p in PUBLISHED.glob("*.png")} >= {"latency-vs-load.png"}


def test_a_rich_table_becomes_a_markdown_table_with_its_title_and_alignment() -> None:
    t = Table(title="Speeds [dim](ms)[/dim]")
    t.add_column("arm")
    t.add_column("p50", justify="right")
    t.add_row("[bold]A4[/bold]", "1.5")
    t.add_row("a|b", "2")
    assert markdown(t) == "\n".join(
        ["**Speeds (ms)**", "", "| arm | p50 |", "|---|---:|", "| A4 | 1.5 |", "| a\\|b | 2 |"]
    )


def test_the_section_between_the_markers_is_replaced_and_nothing_else() -> None:
    readme = f"intro\n{BEGIN}\nold numbers\n{END}\nafter"
    assert replace_section(readme, "new") == f"intro\n{BEGIN}\nnew\n{END}\nafter"
    with pytest.raises(SystemExit):
        replace_section("no markers", "new")


def test_the_sustained_search_table_has_a_header_for_every_cell() -> None:
    from bench.report import sustained_table

    step = {
        "rate_per_s": 66.5,
        "sent": 665,
        "paused_seen": 665,
        "first_third_p50_ms": 229.0,
        "last_third_p50_ms": 301.0,
        "p99_ms": 515.0,
        "drain_s": 0.4,
        "cpu_ms_per_report": {"safety": 6.0, "kafka": 1.0, "rest of the machine": 5.0},
        "kept_up": False,
        "fell_behind": "drain 1.04 s",
    }
    lines = markdown(sustained_table({"step_s": 10.0, "steps": [step]})).splitlines()
    header, row = lines[2], lines[4]
    assert header.count("|") == row.count("|")
    assert "| drain s |" in header and "| 0.40 |" in row
    assert row.endswith("| 7.0 | fell behind: drain 1.04 s |")  # the stack's CPU leaves the rest of the machine out
