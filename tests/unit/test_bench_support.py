"""The benchmark's pure parts: the Poisson schedule, the duration estimate, RSS parsing, target verdicts,
multiples of the floor, the headline mode's plan."""

from __future__ import annotations

import random
import statistics

import pytest

from bench.__main__ import parse_args, plan, selected_arms
from bench.arms import ARMS
from bench.infra import asyncpg_dsn
from bench.load import Sizing, SustainedSearch, arrival_offsets, fell_behind, human_duration, plan_levels
from bench.memory import parse_vmrss_kib
from bench.profiling import top_frames
from bench.skipped import event_type, handled_types, split_deliveries, unhandled_on_topics
from bench.spans import flow_parts, summarize
from bench.targets import at_least, at_most, evaluate, floor_multiples, multiple, within_multiple


def test_poisson_offsets_rise_and_average_the_asked_rate() -> None:
    offsets = arrival_offsets(50.0, 20000, random.Random(1))
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    assert all(g > 0 for g in gaps)
    assert statistics.mean(gaps) == pytest.approx(1 / 50, rel=0.03)
    # exponential gaps: standard deviation equals the mean (a fixed interval would have none)
    assert statistics.pstdev(gaps) == pytest.approx(1 / 50, rel=0.05)


def test_poisson_offsets_refuse_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        arrival_offsets(0.0, 10, random.Random(1))


def test_level_plans_scale_the_maximum_and_add_up_the_time() -> None:
    plans = plan_levels(20.0, samples=1000, prepare_s_per_sample=0.05, drain_s=10.0, levels=(0.1, 0.5))
    assert [p.rate_per_s for p in plans] == pytest.approx([2.0, 10.0])
    assert plans[0].send_s == pytest.approx(500.0)
    assert plans[0].total_s == pytest.approx(50.0 + 500.0 + 10.0)
    assert plans[1].send_s == pytest.approx(100.0)


def test_levels_sized_by_sending_time_keep_a_floor_and_a_ceiling() -> None:
    sizing = Sizing(send_s=150.0, least=1000, most=10000)
    plans = plan_levels(40.0, sizing, prepare_s_per_sample=0.05, drain_s=10.0, levels=(0.1, 0.5, 0.8))
    # 4/s for 150 s is 600: raised to the floor; 20/s is 3 000; 32/s is 4 800
    assert [p.samples for p in plans] == [1000, 3000, 4800]
    assert plans[1].send_s == pytest.approx(150.0)
    assert plan_levels(100.0, sizing, 0.05, 10.0, levels=(1.0,))[0].samples == 10000  # 15 000 capped


def test_a_step_fell_behind_when_the_last_thirds_median_latency_rose_or_the_drain_was_long() -> None:
    steady = [0.05, 0.04, 0.30, 0.05, 0.06, 0.05, 0.04, 0.05, 0.07]  # one Poisson burst is not a backlog
    assert fell_behind(steady, drain_s=0.3) is None
    rising = [0.05 + 0.05 * i for i in range(9)]  # each report waits behind more: 0.10 → 0.40 s medians
    assert fell_behind(rising, drain_s=0.45) == "latency rose: median 100 → 400 ms"
    # The margin: twice the first third's median plus 100 ms, no more.
    assert fell_behind([0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3], drain_s=0.3) is None
    assert fell_behind([0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.31, 0.31, 0.31], drain_s=0.3) is not None
    # Latency flat but the last pause long after the last report was due: still working off a backlog.
    assert fell_behind(steady, drain_s=1.0) is None
    assert fell_behind(steady, drain_s=1.01) == "drain 1.01 s"
    with pytest.raises(ValueError):
        fell_behind([0.1, 0.2], drain_s=0.1)


def test_the_sustained_search_climbs_until_a_step_falls_behind_then_refines_between() -> None:
    search = SustainedSearch(start=40.0, ceiling=200.0, growth=1.25, refine=2)
    capacity = 60.0  # a stand-in stack: keeps up with any rate up to this
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(round(rate, 2))
        search.record(rate, rate <= capacity)
    assert tried == [40.0, 50.0, 62.5, 55.9, 59.11]  # up ×1.25, then two geometric means of kept and fell
    assert search.kept == pytest.approx(59.11, abs=0.01) and search.fell == 62.5


def test_the_sustained_search_steps_down_when_the_first_rate_falls_behind_and_stops_at_its_bounds() -> None:
    down = SustainedSearch(start=40.0, ceiling=200.0, growth=2.0, refine=0)
    tried = []
    while (rate := down.next_rate()) is not None:
        tried.append(rate)
        down.record(rate, rate <= 12.0)
    assert tried == [40.0, 20.0, 10.0] and down.kept == 10.0
    never = SustainedSearch(start=2.0, ceiling=200.0, growth=2.0, least=0.5)
    while (rate := never.next_rate()) is not None:
        never.record(rate, False)
    assert never.kept is None and never.fell == 0.5
    always = SustainedSearch(start=40.0, ceiling=100.0, growth=2.0)
    while (rate := always.next_rate()) is not None:
        always.record(rate, True)
    assert always.kept == 80.0  # the next, 160, is past the ceiling


def test_human_duration() -> None:
    assert human_duration(42.4) == "42 s"
    assert human_duration(125) == "2 min 05 s"
    assert human_duration(3 * 3600 + 61) == "3 h 01 min"


def test_vmrss_is_read_from_the_status_text() -> None:
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmRSS:\t   81234 kB\nThreads:\t4\n"
    assert parse_vmrss_kib(status) == 81234
    with pytest.raises(ValueError):
        parse_vmrss_kib("Name:\tkthreadd\n")


def test_a_missed_minimum_says_by_how_much() -> None:
    v = at_least("A4", 5000, 49, "ev/s")
    assert v.met is False
    assert v.measured == "49 ev/s"
    assert v.margin == "4,951 ev/s short (×102.0 needed)"
    assert at_least("A4 / A0e", 20.0, 0.5, "%", "{:,.1f}").margin == "19.5 points short (×40.0 needed)"
    met = at_least("A4", 5000, 6000, "ev/s")
    assert met.met is True and met.margin == "1,000 ev/s above"


def test_a_maximum_is_met_only_below_it() -> None:
    assert at_most("p99", 50, 49.9, "ms").met is True
    over = at_most("p99", 50, 75, "ms")
    assert over.met is False and over.margin == "25 ms over (×1.5)"
    assert at_most("p99", 50, None, "ms").met is None


def test_evaluate_uses_the_half_load_level_and_each_service() -> None:
    summary = {
        "A0": {"median_msgs_per_s": 1000.0},
        "A0e": {"median_msgs_per_s": 100.0},
        "A1": {"median_msgs_per_s": 600.0},
        "A4": {"median_msgs_per_s": 10.0},
    }
    levels = [{"level": 0.1, "p99_ms": 20.0}, {"level": 0.5, "p99_ms": 80.0}]
    verdicts = {v.target: v for v in evaluate(summary, levels, {"safety": 120.0, "dosing": 160.0})}
    assert verdicts["A4 / A0e"].measured == "10.0 %" and verdicts["A4 / A0e"].met is False
    assert verdicts["A1 / A0"].met is True
    assert verdicts["report → plan paused p99 at 50 % load"].measured == "80 ms"
    assert verdicts["safety idle RSS"].met is True
    assert verdicts["dosing idle RSS"].met is False


def test_evaluate_without_a_latency_run_says_not_measured() -> None:
    verdicts = evaluate({}, [], {})
    assert all(v.met is None for v in verdicts)


def test_top_frames_counts_self_time_by_leaf() -> None:
    collapsed = (
        "run (asyncio/base_events.py:600);handle (consumer.py:130);execute (session.py:10) 30\n"
        "run (asyncio/base_events.py:600);handle (consumer.py:131);validate (envelope.py:5) 10\n"
        "run (asyncio/base_events.py:600);EpollSelector.select (selectors.py:400) 60\n"
        "run (asyncio/base_events.py:600);EventConsumer.handle (consumer.py:130) 0\n"
    )
    top = top_frames(collapsed)
    assert top["samples"] == 100
    assert top["waiting_pct"] == 60.0
    assert top["self_top"][0] == ("execute (session.py)", 30.0)
    inclusive = dict(top["inclusive_top"])
    assert inclusive["handle (consumer.py)"] == 40.0
    assert inclusive["run (base_events.py)"] == 100.0


FLOOR = {"p50_ms": 2.0, "p99_ms": 5.0}


def test_a_multiple_of_the_floor_is_met_up_to_and_including_the_limit() -> None:
    assert multiple(10.0, 2.0) == 5.0
    assert multiple(None, 2.0) is None and multiple(10.0, None) is None and multiple(10.0, 0.0) is None
    at_limit = within_multiple("p50 / floor", 5.0, 10.0, 2.0)
    assert at_limit.met is True and at_limit.measured == "5.0 × (10.0 / 2.00 ms)"
    assert at_limit.margin == "0.0 × below the limit"
    over = within_multiple("p50 / floor", 5.0, 10.2, 2.0)
    assert over.met is False and over.margin == "0.1 × over (1.0 times the limit)"
    far = within_multiple("p99 / floor", 5.0, 100.0, 2.0)
    assert far.margin == "45.0 × over (10.0 times the limit)"
    assert within_multiple("p99 / floor", 5.0, None, 2.0).met is None
    assert within_multiple("p99 / floor", 5.0, 9.0, None).measured == "not measured"


def test_floor_multiples_take_each_rows_p50_and_p99_over_the_floors() -> None:
    single = {"p50_ms": 12.0, "p99_ms": 30.0}
    levels = [{"level": 0.5, "p50_ms": 20.0, "p99_ms": 60.0}]
    rows = floor_multiples(FLOOR, single, levels)
    assert [r["row"] for r in rows] == ["single report, idle", "50% load"]
    assert (rows[0]["p50_x"], rows[0]["p99_x"]) == pytest.approx((6.0, 6.0))
    assert (rows[1]["p50_x"], rows[1]["p99_x"]) == pytest.approx((10.0, 12.0))
    assert floor_multiples(None, single, levels) == []
    assert [r["row"] for r in floor_multiples(FLOOR, None, levels)] == ["50% load"]


def test_evaluate_has_the_performance_issues_latency_maximum_and_floor_targets() -> None:
    single = {"p50_ms": 9.0, "p99_ms": 30.0}
    levels = [{"level": 0.1, "p99_ms": 4.0}, {"level": 0.5, "p99_ms": 40.0}]
    verdicts = {v.target: v for v in evaluate({}, levels, {}, maximum_per_s=149.9, single=single, floor=FLOOR)}
    assert verdicts["report → plan paused p50, single report idle"].met is True
    assert verdicts["report → plan paused p50, single report idle"].margin == "6 ms below the limit"
    assert verdicts["report → plan paused p99 at 50 % load"].met is True
    maximum = verdicts["maximum, end to end"]
    assert maximum.met is False and maximum.margin == "0.1 reports/s short (×1.0 needed)"
    assert verdicts["single report idle p50 / floor p50"].measured.startswith("4.5 ×")
    assert verdicts["single report idle p50 / floor p50"].met is True
    # the half-load level's p99 (40 ms), not the 10 % level's (4 ms), over the floor's p99 (5 ms)
    assert verdicts["50 % load p99 / floor p99"].measured.startswith("8.0 ×")
    assert verdicts["50 % load p99 / floor p99"].met is False
    at_limit = {v.target: v for v in evaluate({}, [], {}, maximum_per_s=150.0)}
    assert at_limit["maximum, end to end"].met is True  # ≥: the limit itself is met


def test_the_headline_mode_runs_the_last_part_alone() -> None:
    headline = parse_args(["--headline"])
    assert selected_arms(headline) == [] and headline.no_scaling and not headline.no_latency
    assert headline.levels == "50" and headline.samples == 1000
    assert plan(headline) == [
        "five services: idle RSS",
        "floor × 2000",
        "single report idle × 200",
        "burst 200",
        "sustained maximum (steps of 10 s, 1 refining)",
        "50 % load × 1000",
    ]
    # asked-for parts and sizes still count
    assert parse_args(["--headline", "--samples", "3000"]).samples == 3000
    with_a4 = parse_args(["--headline", "--arms", "A0e,A4"])
    assert [a.key for a in selected_arms(with_a4)] == ["A0e", "A4"] and with_a4.no_scaling


def test_the_full_run_keeps_every_part() -> None:
    full = parse_args([])
    assert [a.key for a in selected_arms(full)] == [a.key for a in ARMS]
    assert full.levels == "10,50,80" and full.samples is None  # sized per level by sending time
    parts = plan(full)
    assert parts[0].startswith("throughput arms A0,A0c,A0e,A1,A2,A3,A4 × 5 reps")
    assert parts[1] == "A4 scaling (partitions × instances) and profile"
    assert parts[2:7] == [
        "five services: idle RSS",
        "floor × 2000",
        "single report idle × 200",
        "burst 200",
        "sustained maximum (steps of 10 s, 2 refining)",
    ]
    assert parts[7:] == [f"{level} % load × 1000–5000 (120 s of sending)" for level in (10, 50, 80)]
    assert plan(parse_args(["--samples", "3000"]))[7:] == ["10 % load × 3000", "50 % load × 3000", "80 % load × 3000"]
    assert "floor × 2000" not in plan(parse_args(["--floor-samples", "0"]))


def test_the_floor_connects_with_asyncpg_to_the_bench_database() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://safety:safety@127.0.0.1:5433/bench") == (
        "postgresql://safety:safety@127.0.0.1:5433/bench"
    )


def test_skipped_deliveries_are_the_records_on_a_services_topics_of_types_it_does_not_handle() -> None:
    def record(kind: str) -> tuple[list[tuple[str, bytes]], bytes]:
        return [("event-id", b"1"), ("event-type", kind.encode())], kind.encode()

    records = {
        "dosing.plans": [record("TreatmentPlanPaused"), record("DoseProposed")],
        "safety.holds": [record("TreatmentHoldRequested")],
    }
    handled = dict.fromkeys(("intake", "scheduling", "dosing", "safety", "billing"), frozenset())
    handled["scheduling"] = frozenset({"TreatmentPlanPaused"})
    split = split_deliveries(records, handled)
    # scheduling consumes dosing.plans (not safety.holds): it handles the pause and skips the proposal
    assert split["scheduling"]["deliveries"] == 2
    assert split["scheduling"]["skipped_by_type"] == {"DoseProposed": 1}
    assert split["scheduling"]["_records"] == [record("DoseProposed")]
    # dosing consumes safety.holds, not its own dosing.plans
    assert split["dosing"]["deliveries"] == 1 and split["dosing"]["skipped"] == 1
    assert split["intake"]["deliveries"] == 0
    assert event_type([("producer", b"safety")]) is None


def test_the_handled_types_are_what_a_services_build_registers() -> None:
    dosing = handled_types("dosing")
    assert {"SideEffectReported", "TreatmentHoldRequested"} <= dosing
    assert "TreatmentPlanPaused" not in dosing  # its own event, on a topic it does not consume
    unhandled = unhandled_on_topics("dosing", dosing)
    assert "safety.holds" not in unhandled  # it handles every event on the holds topic
    assert all(kind not in dosing for kinds in unhandled.values() for kind in kinds)


def span(
    name: str, start_ms: float, end_ms: float, *, kind: str = "INTERNAL", service: str = "x", **attrs: str
) -> dict:
    return {
        "name": name,
        "kind": kind,
        "service": service,
        "attributes": attrs,
        "start": int(start_ms * 1e6),
        "end": int(end_ms * 1e6),
    }


def transaction(start_ms: float, end_ms: float, durations_ms: tuple[float, ...]) -> dict:
    tx = span("transaction", start_ms, end_ms, kind="CLIENT", service="carecoord-dosing", **{"db.system": "postgresql"})
    tx["attributes"]["db.statement_durations_ms"] = list(durations_ms)
    return tx


def report_trace(t0_ms: float) -> list[dict]:
    return [
        span("POST /v1/side-effect-reports", t0_ms, t0_ms + 20, kind="SERVER", service="carecoord-safety"),
        span("publish safety.holds", t0_ms + 25, t0_ms + 25.1, kind="PRODUCER"),
        span("process safety.holds", t0_ms + 30, t0_ms + 50, kind="CONSUMER"),
        transaction(t0_ms + 31, t0_ms + 49, (2.0, 1.0)),
        # dosing's transaction outside the processing span (its relay's) is not the handling's
        transaction(t0_ms + 52, t0_ms + 53, (1.0,)),
        span(
            "publish dosing.plans",
            t0_ms + 57,
            t0_ms + 57.1,
            kind="PRODUCER",
            **{"carecoord.event.type": "TreatmentPlanPaused"},
        ),
        # a later event on the same topic (the file's order is not the flow's): not the pause
        span(
            "publish dosing.plans",
            t0_ms + 51,
            t0_ms + 51.1,
            kind="PRODUCER",
            **{"carecoord.event.type": "TreatmentHoldStarted"},
        ),
    ]


def test_a_reports_trace_is_cut_into_the_hops_between_its_spans() -> None:
    parts = flow_parts(report_trace(1000.0))
    assert parts is not None
    assert parts["safety_http"] == pytest.approx(20.0)
    assert parts["safety_relay"] == pytest.approx(5.0)  # 201 at 1020 → published at 1025
    assert parts["kafka_and_wait"] == pytest.approx(5.0)
    assert parts["dosing_handling"] == pytest.approx(20.0)
    assert parts["dosing_sql"] == pytest.approx(3.0) and parts["dosing_statements"] == 2
    assert parts["dosing_relay"] == pytest.approx(7.0)  # to the pause's publish, not the other event's
    assert flow_parts(report_trace(0.0)[:2]) is None  # no processing span: not a complete report


def test_span_windows_take_the_reports_whose_post_started_in_them() -> None:
    flows = [flow_parts(report_trace(t)) for t in (1000.0, 2000.0, 3000.0)]
    out = summarize(
        [f for f in flows if f], {"a": (0, int(2500 * 1e6)), "b": (int(2500 * 1e6), int(9e9)), "none": (0, 1)}
    )
    assert out["a"]["reports"] == 2 and out["b"]["reports"] == 1
    assert "none" not in out
    assert out["a"]["dosing_relay"] == {"p50": pytest.approx(7.0), "p99": pytest.approx(7.0)}


def test_cpu_time_is_read_from_proc_stat_lines_even_with_odd_process_names() -> None:
    from bench.cpu_share import TICK_S, machine_busy_s, parse_stat

    # comm may hold spaces and parentheses: the fields start after the last ')'
    line = "4242 (weird) name)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 0 0"
    p = parse_stat(line)
    assert (p.pid, p.ppid, p.comm) == (4242, 17, "weird) name)")
    assert p.cpu_s == pytest.approx(300 * TICK_S)
    stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
    assert machine_busy_s(stat) == pytest.approx((100 + 5 + 50 + 3 + 2) * TICK_S)  # idle and iowait left out


def test_cpu_is_attributed_to_services_broker_postgres_and_the_bench_only() -> None:
    from bench.cpu_share import Proc, components

    procs = [
        Proc(10, 1, "python", 2.0),  # safety
        Proc(20, 1, "java", 5.0),  # the stack's broker
        Proc(21, 1, "java", 9.0),  # another stack's broker: not ours
        Proc(30, 1, "postgres", 1.0),  # the stack's postmaster
        Proc(31, 30, "postgres", 3.0),  # one of its backends
        Proc(40, 1, "postgres", 7.0),  # someone else's postgres
        Proc(50, 1, "python", 4.0),  # the bench
        Proc(60, 1, "bash", 8.0),
    ]
    lines = {
        20: "java -cp x kafka.Kafka /s/bench-stack/kafka.properties",
        21: "java kafka.Kafka /other/kafka",
        30: "postgres -D /s/bench-stack/pg",
        40: "postgres -D /elsewhere",
    }
    got = components(procs, {10: "safety"}, "/s/bench-stack", own_pid=50, command_of=lambda pid: lines.get(pid, ""))
    assert got == {"safety": 2.0, "kafka": 5.0, "postgresql": 4.0, "bench (load and watcher)": 4.0}
