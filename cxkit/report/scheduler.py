"""Which report to start next: pack the free slots by estimated memory and duration.

The runner (:func:`cxkit.report.runner.run_jobs`) asks :func:`plan_next` each time a slot
is free. The rule, with the estimates of the previous run (:class:`Estimate`):

- a report waits for the reports it runs ``after`` (``after:`` in ``reports.yml``) to
  finish, so that it reads their results from the run cache instead of computing them;
- among the reports whose estimated peak fits beside the estimates of those running,
  the one never measured goes first, then the longest, then the first in file order;
- a report that fits in no free slot lets the others go ahead, and runs at the latest
  when everything else that fits is done: with nothing running, the first candidate
  starts whatever its estimate, so no report waits for ever and the budget is the only
  reason a slot stays free.

Without any measurement every report is "never measured", so the order is the file's,
with a smaller report filling a slot that the next one in file order does not fit.

Which report gets the CPU first (:func:`niceness`; ``cxkit report`` does this unless
``CXKIT_REPORT_YIELD_CPU=0``): a report that starts while another is expected to end
after it runs its kernel at :data:`YIELD_NICENESS`. The report
expected to end last — the one the whole run waits for — then gets the cores whenever
it can use them, and the others run on what it leaves. Every report does the same work
either way; without measurements every kernel runs at the normal priority.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["YIELD_NICENESS", "Estimate", "niceness", "plan_next"]

#: The niceness of a kernel that yields the CPU to a report expected to end after it
#: (Linux: a nice-10 thread gets about a tenth of a core beside a nice-0 one).
YIELD_NICENESS = 10


@dataclass(frozen=True)
class Estimate:
    """What a report is expected to need, from the previous run.

    Attributes
    ----------
    memory_mb
        Estimated peak memory of its kernel (MB); 0 for no estimate.
    seconds
        Expected duration (s), or None when it was never measured.
    """

    memory_mb: float = 0.0
    seconds: float | None = None


def _priority(position: int, estimate: Estimate) -> tuple[int, float, int]:
    """Return the sort key of a candidate: never measured, then longest, then file order."""
    if estimate.seconds is None:
        return (0, 0.0, position)
    return (1, -estimate.seconds, position)


def plan_next(
    queue: Sequence[str],
    running: Collection[str],
    *,
    budget_mb: float | None,
    estimates: Mapping[str, Estimate],
    after: Mapping[str, Collection[str]] | None = None,
) -> str | None:
    """Choose the report to start in a free slot, or None to wait for one to finish.

    Pure: it only reads its arguments. The caller calls it while a slot is free.

    Parameters
    ----------
    queue
        The reports not started yet, in file order.
    running
        The reports running now.
    budget_mb
        The memory budget (MB) of the estimates of the reports running at once, or None
        for none.
    estimates
        Each report's :class:`Estimate`; a missing one counts as 0 MB, never measured.
    after
        Each report's prerequisites: it is ready only when none of them is waiting or
        running (a prerequisite that is not part of the run counts as done).

    Returns
    -------
    str or None
        The report to start now: the ready report that fits beside those running,
        never measured first, then the longest, then the first in ``queue``. None when
        none fits or none is ready; with nothing running it is never None while
        ``queue`` is not empty (a report larger than the whole budget then runs alone,
        and a dependency cycle is broken in file order).

    Examples
    --------
    >>> est = {"big": Estimate(4000, 130.0), "huge": Estimate(5500, 120.0),
    ...        "small": Estimate(1000, 20.0), "summary": Estimate(1500, 30.0)}
    >>> after = {"summary": ["big", "huge", "small"]}
    >>> queue = ["small", "huge", "big", "summary"]
    >>> plan_next(queue, [], budget_mb=6000, estimates=est, after=after)
    'big'
    >>> plan_next(["small", "huge", "summary"], ["big"], budget_mb=6000, estimates=est,
    ...           after=after)
    'small'
    >>> print(plan_next(["huge", "summary"], ["big"], budget_mb=6000, estimates=est,
    ...                 after=after))
    None
    """
    if not queue:
        return None
    after = after or {}
    unfinished = set(queue) | set(running)
    used = sum(estimates.get(n, Estimate()).memory_mb for n in running)
    candidates = []
    for position, name in enumerate(queue):
        if unfinished.intersection(after.get(name, ())) - {name}:
            continue
        estimate = estimates.get(name, Estimate())
        if running and budget_mb is not None and used + estimate.memory_mb > budget_mb:
            continue
        candidates.append((_priority(position, estimate), name))
    if candidates:
        return min(candidates)[1]
    if not running:  # only a dependency cycle blocks everything: never wait for ever
        return queue[0]
    return None


def niceness(expected_end: float | None, running_ends: Iterable[float | None]) -> int:
    """Return the niceness of a report's kernel at its start: yield to a later-ending report.

    Pure. A kernel's priority is set once, when it starts (an unprivileged process can
    raise its niceness but never lower it again).

    Parameters
    ----------
    expected_end
        When the report is expected to end (its start plus its previous duration), or
        None when it was never measured.
    running_ends
        The expected ends of the reports running now (None: never measured).

    Returns
    -------
    int
        :data:`YIELD_NICENESS` when a running report is expected to end after this one,
        else 0 (also whenever this or that report was never measured).

    Examples
    --------
    >>> niceness(100.0, [160.0])   # churn (to 160 s) runs: a shorter report yields
    10
    >>> niceness(160.0, [100.0])   # the report expected to end last does not
    0
    >>> niceness(None, [160.0]), niceness(100.0, [None])
    (0, 0)
    """
    if expected_end is None:
        return 0
    later = [end for end in running_ends if end is not None and end > expected_end]
    return YIELD_NICENESS if later else 0
