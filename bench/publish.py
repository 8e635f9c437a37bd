"""``python -m bench.publish [RUN_DIR]``: one run's results into the repository, and the README's numbers from them.

Copies ``results.json``, the PNG plots and the profile's flame graph of
RUN_DIR (default: the newest run under ``.local/bench-results``) to
``bench/results/`` (replacing the previous run's), then rewrites the README's
section between the ``bench:results`` markers from that file: the same tables
the run printed, as markdown. So the README quotes exactly the committed file,
and ``tests/unit/test_bench_results.py`` fails when the two disagree.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from .arms import ARMS
from .infra import RESULTS_DIR
from .load import human_duration
from .report import cpu_table, latency_tables, profile_table, scaling_table, table, targets_table
from .targets import Verdict

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "bench" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:results begin (python -m bench.publish writes this) -->", "<!-- bench:results end -->"
COPIED = ("results.json", "*.png", "a4-profile.svg")


def markdown(t: Table) -> str:
    """A rich table as a markdown table under its title (a grid of tables: each in turn)."""
    if not t.show_header and all(isinstance(c, Table) for col in t.columns for c in col.cells):
        return "\n\n".join(markdown(c) for col in t.columns for c in col.cells if isinstance(c, Table))

    def plain(cell: object) -> str:
        text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
        return text.replace("|", "\\|").strip()

    columns = [[plain(c) for c in col.cells] for col in t.columns]
    head = [plain(col.header) for col in t.columns]
    align = ["---:" if col.justify == "right" else "---" for col in t.columns]
    lines = [f"**{plain(t.title)}**", "", "| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*columns, strict=True)]
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    """The README's numbers section for one run's results.json."""
    machine = result["machine"]
    load = f"load average {machine['loadavg_before'][0]:.1f} before and {machine['loadavg_after'][0]:.1f} after"
    commit = result.get("commit") or {}
    at = f"at {commit['sha'][:7]}{' (with uncommitted changes)' if commit.get('dirty') else ''}" if commit else ""
    argv = result.get("argv") or []
    command = "make bench" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else "")
    intro = (
        f"`{command}` {at}, started {result['started_at'][:16].replace('T', ' ')} UTC: {machine['cpus']} CPUs, {load}, "
        f"{human_duration(result['wall_s'])}. The whole file: `bench/results/results.json` "
        "(plots: `bench/results/*.png`)."
    )
    parts = [intro]
    summary = result.get("summary") or {}
    if summary:
        reps = next(iter(summary.values()))["reps"]
        parts.append(markdown(table(summary, ARMS, title=f"{reps} reps")))
    if result.get("cpu_us_per_msg"):
        parts.append(markdown(cpu_table(result["cpu_us_per_msg"])))
    if result.get("scaling"):
        parts.append(markdown(scaling_table(result["scaling"])))
    if result.get("profile"):
        parts.append(markdown(profile_table(result["profile"])))
    latency = result.get("latency") or {}
    if latency:
        parts += [markdown(t) for t in latency_tables(latency, result.get("floor_multiples") or [])]
    parts.append(markdown(targets_table([Verdict(**v) for v in result["targets"]])))
    return "\n\n".join(parts)


def replace_section(readme: str, section: str) -> str:
    try:
        head, rest = readme.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
    except ValueError:
        raise SystemExit(f"README.md has no section between {BEGIN!r} and {END!r}") from None
    return f"{head}{BEGIN}\n{section}\n{END}{tail}"


def newest_run() -> Path:
    runs = sorted(p for p in RESULTS_DIR.glob("*/results.json"))
    if not runs:
        raise SystemExit(f"no run under {RESULTS_DIR}: run `make bench` first")
    return runs[-1].parent


def publish(run_dir: Path) -> list[Path]:
    if not (run_dir / "results.json").is_file():
        raise SystemExit(f"{run_dir} has no results.json")
    PUBLISHED.mkdir(parents=True, exist_ok=True)
    for old in PUBLISHED.iterdir():
        if old.is_file():
            old.unlink()
    copied = []
    for pattern in COPIED:
        for src in sorted(run_dir.glob(pattern)):
            copied.append(Path(shutil.copy2(src, PUBLISHED / src.name)))
    result = json.loads((PUBLISHED / "results.json").read_text())
    README.write_text(replace_section(README.read_text(), render(result)))
    return copied


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0]) if argv else newest_run()
    for path in publish(run_dir):
        print(f"copied {path.relative_to(ROOT)}")
    print(f"README.md: the numbers section now renders {run_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
