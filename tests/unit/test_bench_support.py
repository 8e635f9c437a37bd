"""The benchmark's pure parts: the Poisson schedule, the duration estimate, RSS parsing, target verdicts."""

from __future__ import annotations

import random
import statistics

import pytest

from bench.load import arrival_offsets, human_duration, plan_levels
from bench.memory import parse_vmrss_kib
from bench.profiling import top_frames
from bench.targets import at_least, at_most, evaluate


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
