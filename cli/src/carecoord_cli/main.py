"""The `carecoord` command: status, dead letters, a patient's journey and a guided demo."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from carecoord_contracts.common import US_STATES
from carecoord_contracts.tokens import Role
from carecoord_contracts.topics import SERVICES

from . import cohort
from . import dlq as dead_letters
from . import outcomes as program_outcomes
from . import status as health
from .config import DEFAULT_KAFKA_BOOTSTRAP, Target, operator_token, signing_secret
from .demo import Demo
from .errors import OperatorError
from .http import Services
from .journey import Step, journey, trace_url
from .kafka import Broker
from .stalls import DEFAULT_MAX_OUTBOX_AGE_S
from .tokens import mint_token

app = typer.Typer(
    help="Operate a running carecoord stack: health, dead letters, a patient's journey, a guided demo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(
    help="Dead letters: what a service could not process, and replaying it after a fix.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")
parked_app = typer.Typer(
    help="Parked patients: events held back behind one of the same patient's that failed, and releasing them.",
    no_args_is_help=True,
)
app.add_typer(parked_app, name="parked")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.callback()
def configure(
    ctx: typer.Context,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(
            envvar="CARECOORD_KAFKA_BOOTSTRAP", help=f"Kafka bootstrap servers (default {DEFAULT_KAFKA_BOOTSTRAP})."
        ),
    ] = None,
    service_url: Annotated[
        list[str] | None,
        typer.Option(
            "--service-url",
            metavar="SERVICE=URL",
            help="A service's base URL (repeatable); or CARECOORD_<SERVICE>_URL.",
        ),
    ] = None,
) -> None:
    """Defaults match `make run`. Service URLs: CARECOORD_INTAKE_URL, …_SCHEDULING_URL, …_DOSING_URL, …_SAFETY_URL, …_BILLING_URL, …_ENGAGEMENT_URL."""
    # aiokafka logs every refused connection; the operator gets one clear message instead.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # The shared library logs for services; here its warnings (a repaired header, say) are not the
    # operator's concern, and nothing but the answer goes to stdout (--json is parsed by scripts).
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    urls: dict[str, str] = {}
    for pair in service_url or []:
        service, _, url = pair.partition("=")
        if service not in SERVICES or not url:
            raise typer.BadParameter(
                f"expected SERVICE=URL with SERVICE one of {', '.join(SERVICES)}", param_hint="--service-url"
            )
        urls[service] = url
    ctx.obj = Target.from_environment(kafka_bootstrap, urls)


def _run(coroutine: Coroutine[Any, Any, int | None]) -> None:
    try:
        code = asyncio.run(coroutine)
    except OperatorError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        # Whatever the stack or a topic holds, an operator gets one line and a way on, not a traceback.
        if os.environ.get("CARECOORD_DEBUG"):
            raise
        err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc} (CARECOORD_DEBUG=1 shows the traceback)")
        raise typer.Exit(2) from None
    if code:
        raise typer.Exit(code)


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --- token -----------------------------------------------------------------------------


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="patient, clinician, operator or service.")],
    subject: Annotated[str, typer.Option(help="Who: an opaque id (a clinician's id for a clinician).")],
    patient_id: Annotated[uuid.UUID | None, typer.Option(help="The patient a patient token is for.")] = None,
    state: Annotated[list[str] | None, typer.Option(help="A state a clinician is licensed in (repeatable).")] = None,
    ttl: Annotated[int, typer.Option(help="Seconds until it expires.")] = 3600,
) -> None:
    """A development bearer token (signed with CARECOORD_AUTH_JWT_SECRET or the development default): for a local stack only."""
    if role is Role.PATIENT and patient_id is None:
        raise typer.BadParameter("a patient token needs --patient-id", param_hint="--patient-id")
    if role is Role.CLINICIAN and not state:
        raise typer.BadParameter("a clinician token needs at least one --state", param_hint="--state")
    unknown = sorted(set(state or ()) - US_STATES)
    if unknown:
        raise typer.BadParameter(f"not US state codes: {', '.join(unknown)}", param_hint="--state")
    sys.stdout.write(
        mint_token(
            role, subject, secret=signing_secret(), patient_id=patient_id, licensed_states=state or (), ttl_s=ttl
        )
        + "\n"
    )


# --- outcomes --------------------------------------------------------------------------


@app.command()
def outcomes(
    ctx: typer.Context,
    plots: Annotated[
        Path | None, typer.Option(help="A folder to write the PNG plots to (score trajectories, rates over time).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The program's outcome figures (dosing's GET /v1/outcomes): each with its numerator, denominator,
    cohort and definition version; small cells are withheld from an operator."""
    _run(_outcomes(ctx.obj, plots, as_json))


@app.command("seed-cohort")
def seed_cohort(
    ctx: typer.Context,
    patients: Annotated[int, typer.Option(min=1, max=500, help="How many fictional patients.")] = 40,
    seed: Annotated[int, typer.Option(help="The generator's seed: the same seed, the same trajectories.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """A synthetic cohort with weeks of history on a stack on this machine, for `carecoord outcomes` to show:
    patients registered and enrolled through the APIs, their baselines, first doses and check-ins written in
    the past as intake, scheduling and safety would have announced them."""
    _run(_seed_cohort(ctx.obj, patients, seed, as_json))


async def _seed_cohort(target: Target, patients: int, seed: int, as_json: bool) -> int:
    members = cohort.cohort(patients, seed)

    def progress(number: int, total: int, _patient_id: str) -> None:
        if not as_json and (number % 10 == 0 or number == total):
            out.print(f"seeded {number}/{total}")

    ids = await cohort.seed(target, members, progress)
    if as_json:
        _json({"patients": ids, "seed": seed, "indications": [m.indication for m in members]})
        return 0
    out.print(
        f"{len(ids)} synthetic patients (seed {seed}); dosing learns their history in a few seconds: "
        "carecoord outcomes --plots .local/outcomes"
    )
    return 0


async def _outcomes(target: Target, plots: Path | None, as_json: bool) -> int:
    async with Services(target) as services:
        report = await program_outcomes.fetch(services)
    written = program_outcomes.write_plots(report, plots) if plots is not None else []
    if as_json:
        _json(report | {"plots": [str(p) for p in written]})
        return 0
    table = Table(title=f"carecoord outcomes (definitions {report['definition_version']}, {report['scope']})")
    for column in ("figure", "indication", "value", "patients", "definitions", "cohort"):
        table.add_column(column)
    for row in program_outcomes.rows(report):
        table.add_row(*(escape(cell) for cell in row))
    out.print(table)
    cohorts = ", ".join(
        f"{c['indication'] or 'all'}: {c['eligible']} eligible, {c['without_follow_up']} without follow-up"
        for c in report["cohorts"]
    )
    out.print(f"cohorts: {cohorts or 'none yet'}")
    for path in written:
        out.print(f"wrote {path}")
    return 0


# --- status ----------------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    as_json: JsonOption = False,
    max_outbox_age: Annotated[
        float,
        typer.Option(min=0, help="Seconds the oldest unsent outbox event may wait before the relay counts as stuck."),
    ] = DEFAULT_MAX_OUTBOX_AGE_S,
) -> None:
    """Each service's readiness, consumer lag, stalls, outbox backlog and dead letters.

    Exits 1 when a service is not ready, Kafka is unreachable, or a ready service reports a stalled
    partition, a parked key or an outbox that does not drain; each problem is listed with what to do."""
    _run(_status(ctx.obj, as_json, max_outbox_age))


async def _status(target: Target, as_json: bool, max_outbox_age_s: float) -> int:
    return show_status(await health.collect(target, max_outbox_age_s=max_outbox_age_s), target, as_json)


def show_status(report: health.Report, target: Target, as_json: bool) -> int:
    """Print the report (a table, each problem with what to do, or JSON); returns the exit code."""
    if as_json:
        _json(
            {
                "healthy": report.healthy,
                "kafka_reachable": report.kafka_reachable,
                "services": [s.as_json() for s in report.services],
            }
        )
        return 0 if report.healthy else 1
    table = Table(title=f"carecoord status (Kafka {target.kafka_bootstrap})")
    columns = (
        "service",
        "ready",
        "database",
        "kafka",
        "outbox backlog",
        "oldest unsent",
        "consumer lag",
        "stuck",
        "dead letters",
    )
    for column in columns:
        table.add_column(column)
    for s in report.services:
        outbox = s.checks.get("outbox")
        backlog, age = (
            (outbox.get("backlog"), outbox.get("oldest_age_s")) if isinstance(outbox, dict) else (outbox, None)
        )
        table.add_row(
            s.service,
            _mark(s.ready, "ready" if s.ready else ("unavailable" if s.reachable else f"unreachable ({s.url})")),
            _check(s.checks.get("database")),
            _check(s.checks.get("kafka")),
            "-" if backlog is None else escape(str(backlog)[:40]),
            f"{age:.1f}s" if isinstance(age, int | float) and not isinstance(age, bool) else "-",
            _lag(s),
            f"[red]{len(s.problems)}[/]" if s.problems else ("-" if not s.reachable else "0"),
            "-" if s.dead_letters is None else (f"[yellow]{s.dead_letters}[/]" if s.dead_letters else "0"),
        )
    out.print(table)
    for problem in (p for s in report.services for p in s.problems):
        out.print(f"[red]{problem.service}[/]: {escape(problem.what)}\n  what to do: {escape(problem.todo)}")
    for s in report.services:
        if s.undecodable_skipped:
            out.print(
                f"{s.service}: {s.undecodable_skipped} undecodable record(s) dead-lettered by their coordinates and stepped past."
            )
    if not report.kafka_reachable:
        out.print(f"[red]Kafka is not reachable at {target.kafka_bootstrap}[/]: lag and dead letters unknown.")
    if any(s.dead_letters for s in report.services):
        out.print("Dead letters are waiting: `carecoord dlq list`.")
    out.print("[green]healthy[/]" if report.healthy else "[bold red]unhealthy[/]")
    return 0 if report.healthy else 1


def _mark(ok: bool, text: str) -> str:
    return f"[green]{text}[/]" if ok else f"[red]{text}[/]"


def _check(value: Any) -> str:
    return "-" if value is None else _mark(value == "ok", escape(str(value)[:80]))


def _lag(s: health.ServiceStatus) -> str:
    if s.lag is None:
        return "-"
    behind = {where: n for where, n in s.lag.items() if n}
    if not behind:
        return "0"
    return f"[yellow]{s.total_lag}[/] (" + ", ".join(f"{where} {n}" for where, n in sorted(behind.items())) + ")"


# --- dead letters ----------------------------------------------------------------------

ServiceArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]


def _service(name: str) -> str:
    if name not in SERVICES:
        raise OperatorError(f"unknown service {name!r}; one of: {', '.join(SERVICES)}")
    return name


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service's dead letters.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Only letters with this reason.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Dead letters with their reason, origin, and whether they were replayed."""
    _run(_dlq_list(ctx.obj, service, reason, as_json))


async def _dlq_list(target: Target, service: str | None, reason: str | None, as_json: bool) -> int:
    services = [_service(service)] if service else list(SERVICES)
    async with Broker(target.kafka_bootstrap) as broker:
        letters = [
            le
            for le in await dead_letters.read_letters(broker, services)
            if reason is None or le.letter.reason == reason
        ]
    if as_json:
        _json([le.as_json() for le in letters])
        return 0
    if not letters:
        out.print("No dead letters.")
        return 0
    table = Table(title="Dead letters")
    for column in (
        "service",
        "offset",
        "reason",
        "event type",
        "original (topic/partition/offset)",
        "dead-lettered at",
        "replayed",
    ):
        table.add_column(column)
    for le in letters:
        replayed = ", ".join(str(pos) for pos, _ in le.replays) or "no"
        table.add_row(
            le.letter.service,
            str(le.at.offset),
            le.letter.reason,
            le.letter.event_type or "-",
            str(le.original),
            le.letter.dead_lettered_at.strftime("%Y-%m-%d %H:%M:%S"),
            replayed,
        )
    out.print(table)
    out.print(
        "Details: `carecoord dlq show SERVICE OFFSET`; after a fix: `carecoord dlq replay SERVICE --offset N` or `--reason R`."
    )
    return 0


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, service: ServiceArg, offset: int, as_json: JsonOption = False) -> None:
    """One dead letter: why it failed, where it came from, and its replays."""
    _run(_dlq_show(ctx.obj, _service(service), offset, as_json))


async def _dlq_show(target: Target, service: str, offset: int, as_json: bool) -> int:
    async with Broker(target.kafka_bootstrap) as broker:
        letter = next((le for le in await dead_letters.read_letters(broker, [service]) if le.at.offset == offset), None)
    if letter is None:
        raise OperatorError(
            f"no dead letter of {service} at offset {offset} (see `carecoord dlq list --service {service}`)"
        )
    data = letter.as_json(with_detail=True)
    if as_json:
        _json(data)
        return 0
    table = Table(show_header=False, title=f"Dead letter {letter.at}")
    for name, value in data.items():
        table.add_row(name, json.dumps(value, indent=1, default=str) if isinstance(value, (dict, list)) else str(value))
    out.print(table)
    return 0


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    service: ServiceArg,
    offset: Annotated[
        list[int] | None, typer.Option("--offset", "-o", help="A letter's offset on deadletter.SERVICE (repeatable).")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Every letter with this reason.")] = None,
    force: Annotated[bool, typer.Option(help="Replay letters that were replayed before too.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be replayed.")] = False,
) -> None:
    """Publish chosen dead letters again to their original topic and partition, with their original key.

    Each replay is marked with a `replay-of` header on the topic, so letters already replayed are skipped unless
    --force. Repeating a replay is harmless for letters with a valid envelope: the consumer's inbox drops an event
    id it already processed.
    """
    _run(_dlq_replay(ctx.obj, _service(service), offset or [], reason, force, dry_run))


async def _dlq_replay(
    target: Target, service: str, offsets: list[int], reason: str | None, force: bool, dry_run: bool
) -> int:
    async with Broker(target.kafka_bootstrap) as broker:
        chosen, skipped = dead_letters.select(
            await dead_letters.read_letters(broker, [service]), offsets=offsets, reason=reason, force=force
        )
        for le in skipped:
            out.print(
                f"[yellow]skipped[/] {le.at}: already replayed to {', '.join(str(p) for p, _ in le.replays)} (--force to replay again)"
            )
        for le in chosen:
            if dry_run:
                out.print(
                    f"would replay {le.at} ({le.letter.reason}, {le.letter.event_type or 'no envelope'}) to {le.original.topic}/{le.original.partition}"
                )
                continue
            to = await dead_letters.replay(broker, le)
            out.print(
                f"[green]replayed[/] {le.at} ({le.letter.reason}, {le.letter.event_type or 'no envelope'}) → {to}"
            )
    if not chosen:
        out.print("Nothing replayed.")
    elif not dry_run:
        out.print("Watch the outcome: `carecoord status` (lag back to 0) and `carecoord dlq list` (no new letter).")
    return 0


# --- journey ---------------------------------------------------------------------------


@app.command("journey")
def journey_command(
    ctx: typer.Context,
    patient_id: Annotated[uuid.UUID, typer.Argument(help="The pseudonymous patient id.")],
    as_json: JsonOption = False,
) -> None:
    """A patient's events across every business topic, in the order they happened (metadata and codes only)."""
    _run(_journey(ctx.obj, patient_id, as_json))


async def _journey(target: Target, patient_id: uuid.UUID, as_json: bool) -> int:
    async with Broker(target.kafka_bootstrap) as broker:
        steps = await journey(broker, patient_id)
    if as_json:
        _json([s.as_json() for s in steps])
        return 0
    if not steps:
        out.print(f"No events about patient {patient_id} on any topic.")
        return 0
    out.print(_journey_table(steps, f"Journey of patient {patient_id}"))
    _print_trace_links(steps)
    return 0


def _journey_table(steps: list[Step], title: str) -> Table:
    table = Table(title=title)
    for column in ("occurred at (UTC)", "event", "producer", "topic", "trace id", "coded fields"):
        table.add_column(column)
    for s in steps:
        coded = ", ".join(f"{k}={_code(v)}" for k, v in s.coded.items())
        table.add_row(
            s.occurred_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            f"{s.event_type} v{s.version}",
            s.producer,
            s.topic,
            s.trace_id or "-",
            coded or "-",
        )
    return table


def _code(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _print_trace_links(steps: list[Step]) -> None:
    traces = list(dict.fromkeys(s.trace_id for s in steps if s.trace_id))
    if traces:
        for trace in traces:
            out.print(f"Trace: {trace_url(trace)}")
    else:
        out.print("No trace ids on these events (no traceparent header): tracing is not enabled on this stack.")


# --- demo ------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service's reaction.")] = 30.0,
) -> None:
    """Drive one scripted patient journey through all six services, then show what each did."""
    _run(_demo(ctx.obj, timeout))


async def _demo(target: Target, timeout: float) -> int:
    async with Services(target) as http, Broker(target.kafka_bootstrap) as broker:
        run = Demo(target, http, broker, timeout=timeout)
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=out, transient=True) as progress:
            task = progress.add_task("", total=len(Demo.STEPS))
            for title, step in Demo.STEPS:
                progress.update(task, description=title)
                try:
                    result = await step(run)
                except OperatorError:
                    progress.console.print(f"[red]✗[/] {title}")
                    raise
                progress.console.print(f"[green]✓[/] {title}: [dim]{result}[/]")
                progress.advance(task)
        did, steps = await run.summary()
    table = Table(title="What each service did")
    table.add_column("service")
    table.add_column("")
    for service in SERVICES:
        table.add_row(service, did[service])
    out.print(table)
    out.print(_journey_table(steps, f"The journey on the topics (`carecoord journey {run.j.patient_id}`)"))
    _print_trace_links(steps)
    out.print(f"[bold green]Demo complete[/]: patient {run.j.patient_id}.")
    return 0


# --- parked patients ------------------------------------------------------------------


@parked_app.command("list")
def parked_list(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Patients whose events wait, per service: how many, and the event that holds them and why."""
    _run(_parked_list(ctx.obj, service, as_json))


async def _parked_list(target: Target, service: str | None, as_json: bool) -> int:
    services = [_service(service)] if service else list(SERVICES)
    async with Services(target) as http:
        found = [(name, p) for name in services for p in (await http.get(name, "/v1/ops/parked"))["parked"]]
    if as_json:
        _json([{"service": name, **p} for name, p in found])
        return 0
    if not found:
        out.print("No parked patients.")
        return 0
    table = Table(title="Parked patients")
    for column in ("service", "patient", "events waiting", "held by", "reason", "error", "attempts", "parked for"):
        table.add_column(column)
    for name, p in found:
        head = p["head"]
        table.add_row(
            name,
            p["patient_id"],
            str(p["events"]),
            f"{head['event_type']} ({head['topic']}[{head['partition']}]@{head['offset']})",
            head["reason"],
            head["error"] or "-",
            str(head["attempts"]),
            f"{p['parked_s']:.0f}s",
        )
    out.print(table)
    out.print(
        "A bug: deploy the fix, then `carecoord parked release SERVICE PATIENT_ID`. Retries exhausted: the service retries by itself."
    )
    return 0


@parked_app.command("release")
def parked_release(
    ctx: typer.Context,
    service: ServiceArg,
    patient_id: Annotated[uuid.UUID, typer.Argument(help="The patient, as `carecoord parked list` shows it.")],
    as_json: JsonOption = False,
) -> None:
    """Apply a patient's parked events in the order they came; stops at the first that fails again."""
    _run(_parked_release(ctx.obj, _service(service), patient_id, as_json))


async def _parked_release(target: Target, service: str, patient_id: uuid.UUID, as_json: bool) -> int:
    async with Services(dataclasses.replace(target, token=operator_token())) as http:
        result = await http.post(service, f"/v1/ops/parked/{patient_id}/release", None)
    if as_json:
        _json(result)
    elif result["done"]:
        out.print(f"{service}: released {result['released']} event(s) of {patient_id}; the patient flows again.")
    else:
        out.print(
            f"[red]{service}: released {result['released']} event(s); the next failed again ({result['error']}).[/] "
            "It stays parked: see the service's log and `carecoord dlq list`."
        )
    return 0 if result["done"] else 1
