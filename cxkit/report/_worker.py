"""A report worker: imports papermill once, then executes notebooks sent on stdin.

Protocol (one JSON object per line): the worker prints ``{"ready": true}`` once papermill
is imported, then for every job line it answers with one result line. Everything else the
worker or papermill prints goes to stderr (the run's worker log), never to the protocol
pipe. The runner starts each worker in its own session (process group) and kills the
whole group, and any kernel it started, when a job runs past its timeout.

A worker dies with its runner, also when the runner is killed with ``kill -9`` and has
no chance to clean up (:func:`die_with_parent`): on Linux the kernel sends the worker
SIGTERM when the runner dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a watchdog
thread sees the parent pid change. Either way the worker kills its kernels first: they
are its children (jupyter_client starts each in a session of its own, so they do not
get a terminal's signals), and ipykernel's own parent poller would only stop a kernel
after its worker is gone, leaving what the kernel started running.

The SIGTERM handler only sets a flag that the watchdog reads: a handler that takes a lock
(``threading.Event.set``) deadlocks when a second SIGTERM arrives while the first handler
holds it, and the watchdog then waits on that lock forever (stop 30's CI: a worker and its
kernel outlived a ``kill -9`` of the runner). ``kill -USR1 <worker pid>`` writes every
thread's stack to the worker's log (:mod:`faulthandler`), for a worker that seems stuck.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, NoReturn

import psutil

from cxkit.report.runner import PARENT_ENV, kill_tree

#: How often (s) the watchdog checks that the runner is still the worker's parent.
WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: Set (to True) by the SIGTERM handler; the watchdog stops the worker when it is set.
#: A plain list item, not a :class:`threading.Event`: a signal handler must take no lock.
_stop_asked = [False]


def _first_line(text: str, limit: int = 300) -> str:
    """Return the first non-blank line of ``text``, cut at ``limit`` characters."""
    line = next((s for s in str(text).strip().splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _KernelMonitor:
    """Sample the summed resident memory of this process's children in a thread.

    The children are the kernel and anything it starts; they are sampled every
    ``interval`` seconds. With ``nice`` above 0, every thread of theirs seen is given
    that niceness (Linux keeps a niceness per thread; threads started later inherit
    their creator's, and the next sample catches any that did not).
    """

    def __init__(self, interval: float = 0.2, nice: int = 0) -> None:
        self.interval = interval
        self.nice = nice
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        """Sample until stopped."""
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                    if self.nice > 0:
                        _yield_cpu(child, self.nice)
                except psutil.Error:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (waits up to 5 s for the thread)."""
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mb(self) -> float | None:
        """The peak seen in MB, or None when nothing was sampled."""
        return round(self.peak_bytes / 2**20, 1) if self.peak_bytes else None


def _yield_cpu(proc: psutil.Process, nice: int) -> None:
    """Raise every thread of ``proc``, and its session's autogroup, to niceness ``nice``.

    Never lowers one. With Linux's autogroup scheduling (``kernel.sched_autogroup_enabled``)
    the CPU is shared between sessions first and a thread's niceness counts only within
    its session; jupyter_client starts each kernel in a session of its own, so the
    kernel's autogroup gets the niceness too (``/proc/<pid>/autogroup``).
    """
    for thread in proc.threads():
        with contextlib.suppress(OSError):
            if os.getpriority(os.PRIO_PROCESS, thread.id) < nice:
                os.setpriority(os.PRIO_PROCESS, thread.id, nice)
    group = f"/proc/{proc.pid}/autogroup"
    with contextlib.suppress(OSError, ValueError, IndexError):
        if os.getsid(proc.pid) == os.getsid(0):
            return  # the worker's own session: later jobs must not inherit the niceness
        with open(group) as f:  # "/autogroup-123 nice 0"
            current = int(f.read().split()[-1])
        if current < nice:
            with open(group, "w") as f:
                f.write(str(nice))


def _set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _stop(reason: str) -> NoReturn:
    """Kill this worker's kernels (and what they started), then exit at once."""
    try:
        os.write(2, f"cxkit report worker {os.getpid()}: {reason}; stopping its kernels\n".encode())
        for child in psutil.Process().children():
            kill_tree(child.pid)
    except BaseException as err:  # the exit below must happen whatever went wrong
        with contextlib.suppress(OSError):
            os.write(2, f"cxkit report worker: stopping its kernels failed: {err!r}\n".encode())
    finally:
        os._exit(1)


def _watch(parent: int, runner: int | None = None) -> None:
    """Stop the worker when the parent changes, the runner ends or SIGTERM came (a thread)."""
    while True:
        if _stop_asked[0]:
            _stop("asked to stop (SIGTERM, or its runner died)")
        if os.getppid() != parent:
            _stop(f"its runner (pid {parent}) is gone")
        if runner is not None and not _alive(runner):
            _stop(f"its runner (pid {runner}) has ended")
        time.sleep(WATCH_INTERVAL)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Hand the stop to the watchdog thread: set a flag, take no lock (it may re-enter)."""
    _stop_asked[0] = True


def _alive(pid: int) -> bool:
    """Tell whether process ``pid`` runs (a zombie is dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def die_with_parent(runner: int | None = None) -> bool:
    """Make this worker, and its kernels, end when its parent (the runner) ends.

    SIGTERM is handled by stopping the kernels and exiting; on Linux the kernel sends it
    when the parent dies (``PR_SET_PDEATHSIG``); a daemon thread checks
    :func:`os.getppid` every :data:`WATCH_INTERVAL` seconds on every system.

    Parameters
    ----------
    runner
        The runner's pid (:data:`cxkit.report.runner.PARENT_ENV`), or None. When the
        parent is not the runner, the runner died before this worker could watch it
        (and the worker stops), or a wrapper started the worker (and it is watched).

    Returns
    -------
    bool
        True when the parent-death signal is set (Linux), False when only the watchdog
        thread watches.
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    armed = _set_parent_death_signal(signal.SIGTERM)
    parent = os.getppid()  # after arming: a parent that dies from now on is seen
    threading.Thread(
        target=_watch, args=(parent, runner), name="cxkit-watch-runner", daemon=True
    ).start()
    if runner is not None and runner != parent and not _alive(runner):
        _stop_asked[0] = True  # the runner died before the signal was set
    return armed


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Execute one notebook with papermill; never raises (but on Ctrl-C).

    Parameters
    ----------
    job
        A job line from the runner (:meth:`cxkit.report.runner.Job.payload`).

    Returns
    -------
    dict
        ``name``, ``ok``, ``error`` (one line, or None), ``seconds``,
        ``peak_memory_mb`` and ``nice`` (the niceness its kernel ran at).
    """
    # papermill is imported here, not at the top: main() must first point stdout at the
    # log, so that nothing printed while importing it reaches the protocol pipe.
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    marker_env = job["marker_env"]
    os.environ[marker_env] = job["marker"]
    started = time.monotonic()
    result: dict[str, Any] = {"name": job["name"], "ok": False, "error": None, "nice": 0}
    nice = max(0, int(job.get("nice") or 0))
    memory = _KernelMonitor(nice=nice)
    memory.start()
    try:
        pm.execute_notebook(
            job["input"],
            job["output"],
            parameters=job["parameters"],
            kernel_name=job.get("kernel_name") or "python3",
            execution_timeout=job["cell_timeout"],
            cwd=job["cwd"],
            progress_bar=False,
            log_output=False,
            start_timeout=120,
        )
        result["ok"] = True
    except PapermillExecutionError as err:
        result["error"] = f"{err.ename}: {_first_line(err.evalue)} (cell {err.exec_count})"
    except BaseException as err:
        name = type(err).__name__
        if name == "CellTimeoutError" or "timed out" in str(err):
            result["error"] = (
                f"a cell ran longer than the cell timeout of {job['cell_timeout']:g} s "
                f"({_first_line(str(err), 160)})"
            )
        else:
            result["error"] = f"{name}: {_first_line(str(err))}"
        if isinstance(err, KeyboardInterrupt):
            raise
    finally:
        memory.stop()
        result["peak_memory_mb"] = memory.peak_mb
        result["nice"] = nice
        os.environ.pop(marker_env, None)
        result["seconds"] = round(time.monotonic() - started, 3)
    return result


def main() -> int:
    """Serve jobs from stdin until it closes.

    Returns
    -------
    int
        The exit code (0).
    """
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks to the log, on demand
    runner = os.environ.get(PARENT_ENV, "")
    die_with_parent(int(runner) if runner.isdigit() else None)
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # stray prints (papermill, warnings) go to the log, not the protocol
    sys.stdout = sys.stderr
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    import papermill  # noqa: F401  (import once: it costs seconds)

    proto.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        result = run_job(job)
        proto.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
