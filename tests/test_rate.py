"""The rate loop: deadlines on the grid, overrun policies, statistics, sections, driver clocks
and bad rates. Timing is checked on a FakeClock or the simulator's clock, never on wall time."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robolearn.control.clock import FakeClock, WallClock
from robolearn.control.rate import RateLoop, TimingStats
from robolearn.core.types import Command, ConfigError, ControlMode
from robolearn.drivers.mujoco_panda import MujocoPandaDriver

# Rates whose periods are exact binary fractions keep FakeClock arithmetic exact.
HZ = 4.0  # period 0.25 s


def run_ticks(loop: RateLoop, clock: FakeClock, work_s: list[float]) -> list[tuple[int, float]]:
    """Tick once per entry of ``work_s``, letting that much time pass inside each tick."""
    seen = []
    for work in work_s:
        k = loop.tick()
        seen.append((k, clock.now()))
        clock.advance(work)
    return seen


# ----------------------------------------------------------------------------- the grid


def test_ticks_land_on_absolute_deadlines() -> None:
    clock = FakeClock(start=10.0)
    loop = RateLoop(HZ, clock)
    seen = run_ticks(loop, clock, [0.1, 0.0, 0.2, 0.125])
    assert seen == [(0, 10.0), (1, 10.25), (2, 10.5), (3, 10.75)]
    assert loop.deadline_s == 10.75


def test_iterating_ticks_like_tick() -> None:
    clock = FakeClock()
    loop = RateLoop(8.0, clock)
    times = [(k, clock.now()) for k in itertools.islice(loop, 4)]
    assert times == [(0, 0.0), (1, 0.125), (2, 0.25), (3, 0.375)]


def test_skip_drops_missed_deadlines_and_stays_on_the_grid() -> None:
    clock = FakeClock()
    loop = RateLoop(HZ, clock, overrun="skip")
    # Tick 0 works 0.625 s: deadlines 0.25 and 0.5 pass. The late tick takes 0.5 (the latest
    # passed deadline) at once, 0.25 is skipped; then the grid resumes at 0.75.
    seen = run_ticks(loop, clock, [0.625, 0.0, 0.0])
    assert seen == [(0, 0.0), (2, 0.625), (3, 0.75)]
    s = loop.stats.summary()
    assert (s["ticks"], s["overruns"], s["skipped"]) == (3, 1, 1)
    assert s["worst_period_error_ms"] == 125.0


def test_catch_up_runs_missed_ticks_back_to_back() -> None:
    clock = FakeClock()
    loop = RateLoop(HZ, clock, overrun="catch_up")
    seen = run_ticks(loop, clock, [0.625, 0.0, 0.0, 0.0])
    assert seen == [(0, 0.0), (1, 0.625), (2, 0.625), (3, 0.75)]
    s = loop.stats.summary()
    assert (s["ticks"], s["overruns"], s["skipped"]) == (4, 2, 0)
    assert s["worst_period_error_ms"] == 375.0


@settings(max_examples=60, deadline=None)
@given(
    work=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    policy=st.sampled_from(["skip", "catch_up"]),
)
def test_overrun_policies_hold_their_promises(work: list[int], policy: str) -> None:
    clock = FakeClock()
    loop = RateLoop(HZ, clock, overrun=policy)  # type: ignore[arg-type]
    seen = run_ticks(loop, clock, [w / 32 for w in work])  # work in exact multiples of 1/32 s
    ks = [k for k, _ in seen]
    for k, start in seen:
        assert start >= k * 0.25  # never before its deadline
    if policy == "catch_up":
        assert ks == list(range(len(ks)))
    else:
        assert all(b > a for a, b in itertools.pairwise(ks))
        assert all(start - k * 0.25 < 0.25 for k, start in seen)  # less than a period late
        assert loop.stats.skipped == ks[-1] - (len(ks) - 1)


# --------------------------------------------------------------------------- statistics


def test_statistics_are_exact_on_a_fake_clock() -> None:
    clock = FakeClock()
    loop = RateLoop(HZ, clock)
    run_ticks(loop, clock, [0.0, 0.375, 0.0, 0.0])  # tick 2 is 0.125 s late
    s = loop.stats.summary()
    assert s["time_base"] == "clock" and s["overrun_policy"] == "skip"
    assert (s["ticks"], s["overruns"], s["skipped"], s["window_ticks"]) == (4, 1, 0, 4)
    assert s["period_error_ms"]["p50"] == 0.0
    assert s["period_error_ms"]["max"] == 125.0
    assert s["mean_period_ms"] == 250.0  # starts 0, 0.25, 0.625, 0.75
    assert s["period_ms"] == 250.0


def test_percentiles_cover_the_window_counts_cover_the_run() -> None:
    stats = TimingStats(hz=100.0, window=4)
    for i, error_s in enumerate([0.5, 0.0, 0.0, 0.0, 0.0, 0.0]):
        stats.record_tick(start_s=i * 0.01, error_s=error_s, late=error_s > 0)
    s = stats.summary()
    assert s["window_ticks"] == 4 and s["ticks"] == 6 and s["overruns"] == 1
    assert s["period_error_ms"]["max"] == 0.0  # the late tick has left the window
    assert s["worst_period_error_ms"] == 500.0


def test_period_errors_come_oldest_first() -> None:
    stats = TimingStats(hz=100.0, window=3)
    for i in range(5):
        stats.record_tick(start_s=i * 0.01, error_s=i * 1e-3)
    assert stats.period_errors_s().tolist() == [2e-3, 3e-3, 4e-3]


def test_write_json_writes_the_summary(tmp_path: Path) -> None:
    clock = FakeClock()
    loop = RateLoop(HZ, clock)
    run_ticks(loop, clock, [0.0, 0.0])
    out = loop.stats.write_json(tmp_path / "run" / "timing.json")
    assert json.loads(out.read_text()) == loop.stats.summary()


def test_empty_statistics_summarise() -> None:
    s = RateLoop(HZ, FakeClock()).stats.summary()
    assert s["ticks"] == 0 and s["period_error_ms"]["p99"] is None


# ----------------------------------------------------------------------------- sections


def test_sections_record_one_duration_per_tick() -> None:
    clock = FakeClock()
    loop = RateLoop(HZ, clock)
    for _ in range(3):
        loop.tick()
        for name in ("observe", "infer", "command", "record"):
            with loop.section(name):
                pass
    sections = loop.stats.summary()["sections_ms"]
    assert list(sections) == ["observe", "infer", "command", "record"]
    for figures in sections.values():
        assert set(figures) == {"p50", "p99", "max", "mean"}
        assert figures["max"] >= figures["p50"] >= 0.0


def test_repeated_section_entries_add_up_within_a_tick() -> None:
    stats = TimingStats(hz=100.0, window=8)
    stats.record_tick(0.0, 0.0)
    stats.add_section("infer", 0.001)
    stats.add_section("infer", 0.002)
    stats.record_tick(0.01, 0.0)  # a tick without "infer" adds no sample
    infer = stats.summary()["sections_ms"]["infer"]
    assert infer["max"] == pytest.approx(3.0) and infer["mean"] == pytest.approx(3.0)


def test_section_is_reused_and_lets_exceptions_through() -> None:
    loop = RateLoop(HZ, FakeClock())
    loop.tick()
    assert loop.section("infer") is loop.section("infer")
    with pytest.raises(KeyError), loop.section("infer"):
        raise KeyError("boom")
    assert loop.stats.summary()["sections_ms"]["infer"]["p50"] is not None


# ------------------------------------------------------------------------------ drivers


def test_fast_sim_advances_exactly_one_period_per_tick(panda: MujocoPandaDriver) -> None:
    loop = RateLoop.for_driver(panda, hz=50)
    assert not loop.wall_time
    t0 = panda.now()
    hold = Command(ControlMode.JOINT_POSITION, joint_position=panda.joint_positions())
    for k in itertools.islice(loop, 10):
        assert panda.now() == pytest.approx(t0 + k * 0.02, abs=1e-9)
        with loop.section("observe"):
            panda.read()
        with loop.section("command"):
            panda.command(hold)
    s = loop.stats.summary()
    assert s["ticks"] == 10 and s["overruns"] == 0
    assert s["period_error_ms"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert s["mean_period_ms"] == pytest.approx(20.0)


def test_for_driver_defaults_to_the_spec_rate(panda: MujocoPandaDriver) -> None:
    assert RateLoop.for_driver(panda).hz == panda.spec.control_hz


def test_a_sim_reset_restarts_the_grid(panda: MujocoPandaDriver) -> None:
    loop = RateLoop.for_driver(panda, hz=100)
    for _ in itertools.islice(loop, 5):
        pass
    panda.reset_robot(panda.joint_positions())  # simulated time back to 0
    assert loop.tick() == 0
    assert panda.now() == 0.0  # no physics run to reach the old grid
    loop.tick()
    assert panda.now() == pytest.approx(0.01)
    assert loop.stats.restarts == 1


def test_realtime_sim_loop_runs_on_wall_time() -> None:
    with MujocoPandaDriver(realtime=True) as drv:
        loop = RateLoop.for_driver(drv, hz=100, wall_time=True)
        for _ in itertools.islice(loop, 5):
            drv.read()
        assert loop.stats.summary()["time_base"] == "wall"
        assert drv.now() == pytest.approx(4 * 0.01)


def test_wall_clock_loop_completes() -> None:
    loop = RateLoop(1000.0, WallClock())
    assert loop.wall_time
    ks = list(itertools.islice(loop, 10))  # a busy machine may skip ticks: no timing claims
    assert ks[0] == 0 and ks == sorted(set(ks))
    assert loop.stats.ticks == 10


def test_time_base_follows_the_clock() -> None:
    assert RateLoop(HZ, WallClock()).wall_time
    assert not RateLoop(HZ, FakeClock()).wall_time
    assert RateLoop(HZ, FakeClock(), wall_time=True).wall_time


# ---------------------------------------------------------------------------- bad input


def test_rates_above_the_driver_maximum_are_refused(panda: MujocoPandaDriver) -> None:
    top = panda.spec.max_control_hz
    with pytest.raises(ConfigError, match=rf"{2 * top:g} Hz.*{top:g} Hz"):
        RateLoop.for_driver(panda, hz=2 * top)
    assert RateLoop.for_driver(panda, hz=top).hz == top


@pytest.mark.parametrize("hz", [0, -10.0, math.nan, math.inf, "100", None])
def test_bad_rates_are_refused(hz: object) -> None:
    with pytest.raises(ConfigError, match="control rate"):
        RateLoop(hz, FakeClock())  # type: ignore[arg-type]


def test_bad_overrun_policy_and_window_are_refused() -> None:
    with pytest.raises(ConfigError, match="skip"):
        RateLoop(HZ, FakeClock(), overrun="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 2"):
        RateLoop(HZ, FakeClock(), stats_window=1)
