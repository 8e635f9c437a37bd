"""`carecoord outcomes`: the program's outcome figures from dosing (GET /v1/outcomes), as a table and plots.

The operator's view is the aggregate one dosing gives an operator token: counts by indication with small
cells withheld, never a patient. So the "score trajectories" are the median score per week since the first
dose for each indication, and the rates over time the share responding and remitted per week.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import OperatorError
from .http import Services


async def fetch(services: Services) -> dict[str, Any]:
    answer: dict[str, Any] = await services.get("dosing", "/v1/outcomes")
    return answer


def rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """(figure, indication, value, numerator/denominator, definition version, cohort) per figure."""
    table: list[tuple[str, ...]] = []
    for f in report["figures"]:
        if f["suppressed"]:
            value, counts = "withheld", f"< {report.get('suppressed_below')}"
        elif f["value"] is None:
            value, counts = "no patients yet", f"{f['numerator']}/{f['denominator']}"
        else:
            value, counts = f"{100 * f['value']:.1f} %", f"{f['numerator']}/{f['denominator']}"
        table.append((f["figure"], f["indication"] or "all", value, counts, f["definition_version"], f["cohort"]))
    return table


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """Two PNGs in ``folder`` (created if need be): median score per week by indication, and the share
    responding and remitted per week. Returns their paths."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".carecoord-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OperatorError(
            f"cannot write plots to {folder}: {exc.strerror or exc}; pass another --plots folder"
        ) from exc
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    by_indication: dict[str, list[dict[str, Any]]] = {}
    for week in report["weeks"]:
        by_indication.setdefault(week["indication"], []).append(week)
    version = report["definition_version"]
    written: list[Path] = []

    def plot(name: str, title: str, draw: Any, **labels: Any) -> None:
        figure, axis = plt.subplots(figsize=(8, 4.5))
        for indication, weeks in sorted(by_indication.items()):
            draw(axis, indication, weeks)
        axis.set(xlabel="weeks since the first dose", **labels)
        axis.set_title(f"{title} (definitions {version})")
        if by_indication:
            axis.legend()
        path = folder / name
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(path)

    def trajectories(axis: Any, indication: str, weeks: list[dict[str, Any]]) -> None:
        shown = [w for w in weeks if w["median_total"] is not None]
        axis.plot([w["week"] for w in shown], [w["median_total"] for w in shown], marker="o", label=indication)

    def rates(axis: Any, indication: str, weeks: list[dict[str, Any]]) -> None:
        counted = [w for w in weeks if w["patients"]]
        x = [w["week"] for w in counted]
        axis.plot(x, [w["responding"] / w["patients"] for w in counted], marker="o", label=f"{indication}: response")
        axis.plot(x, [w["remitted"] / w["patients"] for w in counted], linestyle="--", label=f"{indication}: remission")

    plot(
        "outcomes-score-trajectories.png",
        "Score trajectories by indication",
        trajectories,
        ylabel="median total (the indication's instrument)",
    )
    plot(
        "outcomes-rates-over-time.png",
        "Response and remission over time",
        rates,
        ylabel="share of patients measured that week",
        ylim=(0, 1),
    )
    return written
