"""The report scheduler (cxkit.report.scheduler.plan_next), on simulated runs.

A small event simulation plays a run: each report takes its true duration, the scheduler
sees only the estimates, and a slot is refilled the moment a report ends. The old rule
(strictly first in, first out) is played beside it for comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxkit.report.scheduler import Estimate, plan_next

Policy = Callable[..., str | None]


@dataclass(frozen=True)
class Ran:
    name: str
    start: float
    end: float


def fifo_next(
    queue: Sequence[str],
    running: Collection[str],
    *,
    budget_mb: float | None,
    estimates: Mapping[str, Estimate],
    after: Mapping[str, Collection[str]] | None = None,
) -> str | None:
    """The rule before issue 18: the next report in file order, when it fits."""
    if not queue:
        return None
    used = sum(estimates[n].memory_mb for n in running)
    head = queue[0]
    if running and budget_mb is not None and used + estimates[head].memory_mb > budget_mb:
        return None
    return head


def simulate(
    names: Sequence[str],
    seconds: Mapping[str, float],
    estimates: Mapping[str, Estimate],
    *,
    slots: int = 2,
    budget_mb: float | None = 6000.0,
    after: Mapping[str, Collection[str]] | None = None,
    policy: Policy = plan_next,
) -> list[Ran]:
    """Play a run; return each report's start and end, in the order they started."""
    queue = list(names)
    running: dict[str, float] = {}  # name -> end time
    ran: list[Ran] = []
    now = 0.0
    while queue or running:
        while len(running) < slots and queue:
            nxt = policy(
                queue, list(running), budget_mb=budget_mb, estimates=estimates, after=after
            )
            if nxt is None:
                break
            queue.remove(nxt)
            running[nxt] = now + seconds[nxt]
            ran.append(Ran(nxt, now, now + seconds[nxt]))
        assert running, f"nothing runs and {queue} wait: the scheduler is stuck"
        now = min(running.values())
        running = {n: t for n, t in running.items() if t > now}
    return ran


def makespan(ran: Sequence[Ran]) -> float:
    return max(r.end for r in ran)


def running_at(ran: Sequence[Ran], t: float) -> list[str]:
    return [r.name for r in ran if r.start <= t < r.end]


def check_invariants(
    ran: Sequence[Ran],
    names: Sequence[str],
    estimates: Mapping[str, Estimate],
    *,
    slots: int,
    budget_mb: float | None,
    after: Mapping[str, Collection[str]],
) -> None:
    """Every report once; slots, budget and prerequisites kept; no slot idle for nothing."""
    assert sorted(r.name for r in ran) == sorted(names)
    by_name = {r.name: r for r in ran}
    for r in ran:
        for dep in after.get(r.name, ()):
            assert r.start >= by_name[dep].end, f"{r.name} started before {dep} ended"
    end = max((r.end for r in ran), default=0.0)
    for t in sorted({r.start for r in ran} | {r.end for r in ran if r.end < end}):
        now = running_at(ran, t)
        assert len(now) <= slots
        used = sum(estimates[n].memory_mb for n in now)
        if budget_mb is not None and len(now) > 1:
            assert used <= budget_mb + 1e-9, f"{now} use {used} MB > {budget_mb} at {t}"
        # work-conserving: a free slot stays free only when no ready report fits in it
        if len(now) < slots:
            waiting = [r.name for r in ran if r.start > t]
            for n in waiting:
                ready = all(by_name[d].end <= t for d in after.get(n, ()))
                fits = budget_mb is None or used + estimates[n].memory_mb <= budget_mb
                assert not (ready and fits), f"{n} fitted a free slot at {t} but waited"


# --------------------------------------------------------------------------------------
# the 1M-customer run of issue 18 (second run: estimates from the first run's peaks)
# --------------------------------------------------------------------------------------

GB = 1e9 / 2**20  # MB in a GB (budget and figures in 10^9 bytes, estimates in MiB)
NAMES = ["data_health", "lifecycle", "churn", "clv", "personas", "voice_of_customer"]
NAMES += ["executive_summary"]
#: seconds and measured peak (GB) per report at 1M customers
MEASURED_1M = {
    "data_health": (18.0, 0.80),
    "lifecycle": (137.0, 3.30),
    "churn": (135.0, 4.80),
    "clv": (17.0, 1.05),
    "personas": (6.0, 0.68),
    "voice_of_customer": (59.0, 1.12),
    "executive_summary": (37.0, 1.65),
}
SUMMARY_AFTER = {"executive_summary": NAMES[1:-1]}


def estimates_1m(
    measured: Mapping[str, tuple[float, float]] = MEASURED_1M,
) -> dict[str, Estimate]:
    # as cxkit.report.pipeline estimates them on the same data: 1.25 x the peak
    return {n: Estimate(1.25 * gb * GB, s) for n, (s, gb) in measured.items()}


def test_1m_run_packs_the_small_reports_beside_lifecycle() -> None:
    est = estimates_1m()
    seconds = {n: s for n, (s, _gb) in MEASURED_1M.items()}
    old = simulate(NAMES, seconds, est, budget_mb=6 * GB, policy=fifo_next)
    new = simulate(NAMES, seconds, est, budget_mb=6 * GB, after=SUMMARY_AFTER)
    assert makespan(old) == pytest.approx(337.0)  # lifecycle, then churn, each alone
    # churn's estimate (5.97 GB) fits only alone, so churn + lifecycle + the summary
    # (which needs both) is the least any order can take: 135 + 137 + 37 s
    assert makespan(new) == pytest.approx(309.0)
    assert [r.name for r in new][:2] == ["lifecycle", "voice_of_customer"]
    by_name = {r.name: r for r in new}
    small = ["data_health", "clv", "personas", "voice_of_customer"]
    assert all(by_name[n].end <= by_name["lifecycle"].end for n in small)
    assert by_name["executive_summary"].start == by_name["churn"].end
    check_invariants(new, NAMES, est, slots=2, budget_mb=6 * GB, after=SUMMARY_AFTER)


def test_1m_run_with_a_smaller_churn_runs_churn_beside_lifecycle() -> None:
    measured = {**MEASURED_1M, "churn": (70.0, 1.5), "lifecycle": (60.0, 3.3)}
    est = estimates_1m(measured)
    seconds = {n: s for n, (s, _gb) in measured.items()}
    new = simulate(NAMES, seconds, est, budget_mb=6 * GB, after=SUMMARY_AFTER)
    by_name = {r.name: r for r in new}
    assert by_name["churn"].start == 0.0 and by_name["lifecycle"].start == 0.0
    busy = sum(seconds[n] for n in NAMES[:-1])
    # both slots busy until the summary, which waits for the last domain report
    assert by_name["executive_summary"].start == pytest.approx(busy / 2, abs=10)
    check_invariants(new, NAMES, est, slots=2, budget_mb=6 * GB, after=SUMMARY_AFTER)


# --------------------------------------------------------------------------------------
# the rule, one case at a time
# --------------------------------------------------------------------------------------


def test_longest_that_fits_goes_first_and_ties_keep_file_order() -> None:
    est = {"a": Estimate(100, 10.0), "b": Estimate(100, 50.0), "c": Estimate(100, 50.0)}
    assert plan_next(["a", "b", "c"], [], budget_mb=None, estimates=est) == "b"
    assert plan_next(["a", "c", "b"], [], budget_mb=None, estimates=est) == "c"
    est["b"] = Estimate(900, 50.0)  # too big beside "x"
    est["x"] = Estimate(500, 1.0)
    assert plan_next(["a", "b", "c"], ["x"], budget_mb=1000, estimates=est) == "c"


def test_without_measurements_the_file_order_holds_and_a_smaller_one_fills_in() -> None:
    est = {"big_a": Estimate(600), "big_b": Estimate(600), "small": Estimate(300)}
    seconds = {"big_a": 10.0, "big_b": 10.0, "small": 3.0}
    ran = simulate(["big_a", "big_b", "small"], seconds, est, budget_mb=1000)
    assert [r.name for r in ran] == ["big_a", "small", "big_b"]
    assert ran[2].start == ran[0].end  # the two big ones never together
    # all alike (a first run on big data: the same guess for every report): file order
    same = {n: Estimate(5500) for n in NAMES}
    ran = simulate(NAMES, dict.fromkeys(NAMES, 5.0), same, budget_mb=6 * GB)
    assert [r.name for r in ran] == NAMES
    assert all(len(running_at(ran, r.start)) == 1 for r in ran)


def test_a_report_never_measured_goes_before_measured_ones() -> None:
    est = {"old": Estimate(100, 120.0), "new": Estimate(100, None), "tiny": Estimate(1, 1.0)}
    assert plan_next(["old", "tiny", "new"], [], budget_mb=None, estimates=est) == "new"
    assert plan_next(["old", "tiny"], ["new"], budget_mb=None, estimates=est) == "old"


def test_a_report_larger_than_the_budget_runs_alone_once_the_others_are_done() -> None:
    est = {"huge": Estimate(9000, 100.0), "s1": Estimate(500, 10.0), "s2": Estimate(500, 20.0)}
    assert plan_next(["huge", "s1"], ["s2"], budget_mb=6000, estimates=est) == "s1"
    assert plan_next(["huge"], ["s2"], budget_mb=6000, estimates=est) is None
    assert plan_next(["huge"], [], budget_mb=6000, estimates=est) == "huge"
    ran = simulate(["s1", "huge", "s2"], {"huge": 100.0, "s1": 10.0, "s2": 20.0}, est)
    huge = next(r for r in ran if r.name == "huge")
    assert huge.start == 0.0 and running_at(ran, 0.0) == ["huge"]  # longest, so first
    assert all(r.start >= huge.end for r in ran if r.name != "huge")


def test_prerequisites_finish_first_and_a_cycle_cannot_stall_the_run() -> None:
    est = {n: Estimate(100, s) for n, s in {"a": 5.0, "b": 9.0, "sum": 50.0}.items()}
    after = {"sum": ["a", "b"]}
    assert plan_next(["a", "b", "sum"], [], budget_mb=None, estimates=est, after=after) == "b"
    assert plan_next(["sum"], ["a"], budget_mb=None, estimates=est, after=after) is None
    # a prerequisite that is not part of the run (--only) counts as done
    assert plan_next(["sum"], [], budget_mb=None, estimates=est, after=after) == "sum"
    cycle = {"a": ["b"], "b": ["a"]}
    assert plan_next(["a", "b"], [], budget_mb=None, estimates=est, after=cycle) == "a"
    assert plan_next([], [], budget_mb=None, estimates=est) is None


def test_a_report_without_an_estimate_counts_as_zero_and_unmeasured() -> None:
    est = {"x": Estimate(5000, 10.0)}
    assert plan_next(["known", "other"], ["x"], budget_mb=5000, estimates=est) == "known"


# --------------------------------------------------------------------------------------
# invariants on random runs
# --------------------------------------------------------------------------------------


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[str], dict[str, float], dict[str, Estimate], dict]:
    n = draw(st.integers(1, 9))
    names = [f"r{i}" for i in range(n)]
    seconds = {m: draw(st.floats(1, 200)) for m in names}
    est = {
        m: Estimate(
            draw(st.floats(50, 8000)),
            draw(st.one_of(st.none(), st.floats(0.5, 300))),
        )
        for m in names
    }
    after: dict[str, list[str]] = {}
    for i, m in enumerate(names):  # prerequisites among earlier reports: no cycle
        after[m] = draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
    return names, seconds, est, after


@settings(max_examples=300, deadline=None)
@given(
    run=runs(),
    slots=st.integers(1, 3),
    budget=st.one_of(st.none(), st.floats(500, 9000)),
)
def test_random_runs_keep_budget_slots_and_order(
    run: tuple[list[str], dict[str, float], dict[str, Estimate], dict],
    slots: int,
    budget: float | None,
) -> None:
    names, seconds, est, after = run
    ran = simulate(names, seconds, est, slots=slots, budget_mb=budget, after=after)
    check_invariants(ran, names, est, slots=slots, budget_mb=budget, after=after)


@settings(max_examples=200, deadline=None)
@given(run=runs())
def test_with_exact_durations_and_no_budget_longest_first_is_within_graham_bound(
    run: tuple[list[str], dict[str, float], dict[str, Estimate], dict],
) -> None:
    names, _seconds, est, _after = run
    # exact durations, no budget, no prerequisites: longest first is within 4/3 - 1/(3m)
    # of the optimum (Graham 1969), and the optimum is at most the file order's time
    exact = {n: Estimate(e.memory_mb, 1.0 + (e.seconds or 0.0)) for n, e in est.items()}
    seconds = {n: e.seconds or 0.0 for n, e in exact.items()}
    old = makespan(simulate(names, seconds, exact, budget_mb=None, policy=fifo_next))
    new = makespan(simulate(names, seconds, exact, budget_mb=None))
    lower = max(max(seconds.values()), sum(seconds.values()) / 2)  # no order does better
    assert lower - 1e-9 <= new <= (4 / 3 - 1 / 6) * old + 1e-9


def test_a_report_yields_only_to_a_measured_report_expected_to_end_after_it() -> None:
    from cxkit.report.scheduler import YIELD_NICENESS, niceness

    assert niceness(100.0, [160.0, 50.0]) == YIELD_NICENESS
    assert niceness(160.0, [100.0, 159.9]) == 0
    assert niceness(100.0, [100.0]) == 0  # a tie: nobody is behind whom to wait
    assert niceness(100.0, []) == 0
    assert niceness(None, [160.0]) == 0
    assert niceness(100.0, [None]) == 0
