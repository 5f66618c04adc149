"""Run notebooks with papermill in a small pool of worker processes.

Each worker is a ``python -m cxkit.report._worker`` subprocess started in its own session
(``start_new_session=True``), so it and everything it starts can be killed as a group.
Jupyter starts every kernel in a session of its own as well, so a kill collects the
worker's whole process tree (and every process carrying the job's marker in its
environment) and kills each process group found, never our own.

A worker dies with its runner, even one killed with ``kill -9`` (see
:mod:`cxkit.report._worker`): it learns the runner's pid from :data:`PARENT_ENV`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from cxkit.report.scheduler import Estimate, niceness, plan_next

__all__ = [
    "MARKER_ENV",
    "PARENT_ENV",
    "Job",
    "JobResult",
    "kill_tree",
    "leftover_processes",
    "run_jobs",
]

_READY_TIMEOUT = 120.0
#: Environment variable carrying the job marker into the worker and its kernel.
MARKER_ENV = "CXKIT_REPORT_JOB"
#: Environment variable telling a worker its runner's pid: the worker dies with it.
PARENT_ENV = "CXKIT_REPORT_PARENT"


@dataclass(frozen=True)
class Job:
    """One notebook execution.

    Attributes
    ----------
    name
        The report's name (results are keyed by it).
    input, output
        The notebook to run and where papermill writes the executed copy.
    parameters
        The notebook's parameters.
    cell_timeout, timeout
        Seconds allowed per cell and for the whole job (kernel start included).
    marker
        A unique text put in the environment of the worker and its kernel
        (:data:`MARKER_ENV`), so that leftover processes can be found and killed.
    memory_mb
        The estimated peak memory of the kernel, for ``memory_limit_mb``.
    expected_seconds
        The expected duration (the previous run's), or None when never measured: the
        longest jobs start first (:func:`cxkit.report.scheduler.plan_next`).
    after
        Names of the jobs that must finish before this one starts.
    """

    name: str
    input: Path
    output: Path
    parameters: dict[str, Any]
    cell_timeout: float
    timeout: float
    marker: str
    #: estimated peak memory of the notebook's kernel (MB), for ``memory_limit_mb``
    memory_mb: float | None = None
    #: expected duration (s) from the previous run, None when never measured
    expected_seconds: float | None = None
    #: jobs that must finish before this one starts
    after: tuple[str, ...] = ()

    def payload(self, *, nice: int = 0) -> dict[str, Any]:
        """Return the job line sent to the worker (see :mod:`cxkit.report._worker`).

        Parameters
        ----------
        nice
            The niceness the worker gives the job's kernel (0: normal priority).

        Returns
        -------
        dict
            JSON-able: paths as text, the working folder (the notebook's), the marker
            with its environment variable's name and the kernel's niceness.
        """
        return {
            "name": self.name,
            "input": str(self.input),
            "output": str(self.output),
            "parameters": self.parameters,
            "cell_timeout": self.cell_timeout,
            "cwd": str(self.input.parent),
            "marker": self.marker,
            "marker_env": MARKER_ENV,
            "nice": int(nice),
        }


@dataclass(frozen=True)
class JobResult:
    """How a job ended.

    Attributes
    ----------
    name
        The job's name.
    ok
        True when the notebook ran to its end.
    error
        What went wrong, in one line, or None.
    seconds
        How long the job took.
    started_at, finished_at
        Epoch seconds.
    killed
        Command lines of the processes killed after a job timeout.
    peak_memory_mb
        Peak resident memory of the kernel and its children (MB, sampled), if measured.
    niceness
        The niceness its kernel ran at (:func:`cxkit.report.scheduler.niceness`).
    """

    name: str
    ok: bool
    error: str | None
    seconds: float
    started_at: float
    finished_at: float
    #: command lines of the processes killed after a job timeout
    killed: tuple[str, ...] = ()
    #: peak resident memory of the notebook's kernel and its children (MB, sampled)
    peak_memory_mb: float | None = None
    #: the niceness its kernel ran at (0: normal priority)
    niceness: int = 0


def leftover_processes(marker: str, *, env: str = MARKER_ENV) -> list[psutil.Process]:
    """Find the live processes whose environment carries ``marker`` (a job's kernels).

    Parameters
    ----------
    marker
        The job's :attr:`Job.marker`, or the value of ``env`` to look for.
    env
        The environment variable that holds it: :data:`MARKER_ENV` by default; a run's
        cache folder in :data:`cxkit.cache.CACHE_ENV` finds every worker and kernel of
        that run.

    Returns
    -------
    list of psutil.Process
        Every such process but this one.
    """
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(env) == marker:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def kill_tree(pid: int | None, marker: str | None = None) -> list[str]:
    """Kill process ``pid``, all its descendants, their process groups and any marked process.

    Our own process group is never killed. Kernel connection files of killed kernels
    are removed.

    Parameters
    ----------
    pid
        The root process, or None to kill only the marked processes.
    marker
        A job's :attr:`Job.marker`: processes carrying it are killed too.

    Returns
    -------
    list of str
        The command lines of the processes found (for the manifest).
    """
    procs: list[psutil.Process] = []
    if pid is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
    if marker:
        seen = {p.pid for p in procs}
        procs += [p for p in leftover_processes(marker) if p.pid not in seen]
    connection_files: list[str] = []
    own_group = os.getpgrp()
    groups: set[int] = set()
    found: list[str] = []
    for p in procs:
        try:
            cmd = p.cmdline()
            found.append(" ".join(cmd)[:200])
            if "-f" in cmd:
                i = cmd.index("-f")
                if i + 1 < len(cmd) and cmd[i + 1].endswith(".json"):
                    connection_files.append(cmd[i + 1])
            groups.add(os.getpgid(p.pid))
        except (psutil.Error, OSError):
            continue
    for g in groups - {own_group, 0, 1}:
        with contextlib.suppress(OSError):
            os.killpg(g, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            p.kill()
    psutil.wait_procs(procs, timeout=5)
    for f in connection_files:  # a killed kernel cannot remove its own connection file
        with contextlib.suppress(OSError):
            os.unlink(f)
    return found


class _Worker:
    """One worker subprocess, restarted after a kill."""

    def __init__(self, index: int, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.index = index
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.ready = False

    def start(self) -> None:
        env = {**os.environ, **self.env}
        env.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
        env["PYTHONUNBUFFERED"] = "1"
        env[PARENT_ENV] = str(os.getpid())  # the worker (and its kernels) die with us
        log = open(self.log_dir / f"worker-{self.index}.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cxkit.report._worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
                env=env,
            )
        finally:
            log.close()
        self.ready = False

    def _readline(self, deadline: float) -> str | None:
        """Return a line from the worker, or None on timeout; '' when the worker died."""
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], min(remaining, 1.0))
            if ready:
                return self.proc.stdout.readline()

    def kill(self, marker: str | None = None) -> list[str]:
        found: list[str] = []
        if self.proc is not None:
            found = kill_tree(self.proc.pid, marker)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
        self.proc = None
        self.ready = False
        return found

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.proc = None

    def run(self, job: Job, nice: int = 0) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        if not self.ready:
            line = self._readline(time.monotonic() + _READY_TIMEOUT)
            if not line:
                self.kill()
                return {"ok": False, "error": "the report worker did not start (see worker log)"}
            self.ready = True
        try:
            self.proc.stdin.write(json.dumps(job.payload(nice=nice)) + "\n")
            self.proc.stdin.flush()
        except OSError as err:
            self.kill(job.marker)
            return {"ok": False, "error": f"the report worker died: {err}"}
        line = self._readline(time.monotonic() + job.timeout)
        if line is None:
            killed = self.kill(job.marker)
            return {
                "ok": False,
                "error": f"timed out: the notebook ran longer than the job timeout of "
                f"{job.timeout:g} s; its kernel was stopped",
                "killed": killed,
            }
        if not line:
            code = self.proc.poll()
            self.kill(job.marker)
            return {"ok": False, "error": f"the report worker died (exit code {code})"}
        result = json.loads(line)
        # A kernel that outlived its job (should not happen) must not outlive the run.
        if leftover_processes(job.marker):
            kill_tree(None, job.marker)
        return result


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int,
    log_dir: Path,
    on_start: Callable[[Job], None] | None = None,
    on_finish: Callable[[Job, JobResult], None] | None = None,
    env: Mapping[str, str] | None = None,
    memory_limit_mb: float | None = None,
    yield_cpu: bool = False,
) -> dict[str, JobResult]:
    """Run ``jobs`` on at most ``workers`` worker processes.

    Each time a worker is free, :func:`cxkit.report.scheduler.plan_next` chooses the
    job: one whose :attr:`Job.after` jobs have all finished and whose estimated peak
    (:attr:`Job.memory_mb`) fits beside the estimates of the jobs running (within
    ``memory_limit_mb``); never measured first, then the longest
    (:attr:`Job.expected_seconds`), then the first in ``jobs``. A job larger than the
    budget runs when nothing else runs. Without any expected duration the order is that
    of ``jobs``, with a smaller job filling a worker the next one does not fit beside.
    With ``yield_cpu``, a job that starts while another is expected to end after it runs
    its kernel at a higher niceness (:func:`cxkit.report.scheduler.niceness`), so that
    the job the run waits for gets the cores first.

    Parameters
    ----------
    jobs
        The notebooks to run, in file order (which breaks ties).
    workers
        How many run at once (at most one per job).
    log_dir
        Where each worker's log (``worker-<i>.log``) goes.
    on_start, on_finish
        Called (under a lock) when a job starts and when it ends.
    env
        Environment variables added for the workers and their kernels.
    memory_limit_mb
        The memory budget, or None for none.
    yield_cpu
        Let jobs yield the CPU to the job expected to end last (default False: every
        kernel at the normal priority; ``cxkit report`` reads
        :data:`cxkit.report.pipeline.YIELD_CPU_ENV`).

    Returns
    -------
    dict of str to JobResult
        The results by job name. A failed notebook is a result, not an exception.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C or SIGTERM, after every worker and kernel was killed; any other
        error of the scheduling is re-raised the same way.
    """
    results: dict[str, JobResult] = {}
    if not jobs:
        return results
    n = max(1, min(workers, len(jobs)))
    pool: queue.Queue[_Worker] = queue.Queue()
    all_workers = [_Worker(i, log_dir, env) for i in range(n)]
    for w in all_workers:
        w.start()  # start now: each imports papermill in parallel while we queue jobs
        pool.put(w)
    lock = threading.Lock()
    changed = threading.Condition()
    pending = list(jobs)
    by_name = {job.name: job for job in jobs}
    estimates = {j.name: Estimate(j.memory_mb or 0.0, j.expected_seconds) for j in jobs}
    after = {job.name: job.after for job in jobs}
    running: dict[str, float] = {}  # job name -> estimated peak (MB)
    ends: dict[str, float | None] = {}  # job name -> expected end (monotonic s), if measured
    errors: list[BaseException] = []

    def choose() -> Job | None:
        if len(running) >= n or not pending:
            return None
        name = plan_next(
            [j.name for j in pending],
            list(running),
            budget_mb=memory_limit_mb,
            estimates=estimates,
            after=after,
        )
        return None if name is None else by_name[name]

    def one(job: Job, nice: int) -> None:
        worker = pool.get()
        try:
            started = time.time()
            if on_start:
                with lock:
                    on_start(job)
            t0 = time.monotonic()
            raw = worker.run(job, nice)
            res = JobResult(
                name=job.name,
                ok=bool(raw.get("ok")),
                error=raw.get("error"),
                seconds=round(time.monotonic() - t0, 3),
                started_at=started,
                finished_at=time.time(),
                killed=tuple(raw.get("killed") or ()),
                peak_memory_mb=raw.get("peak_memory_mb"),
                niceness=int(raw.get("nice") or 0),
            )
            with lock:
                results[job.name] = res
                if on_finish:
                    on_finish(job, res)
        except BaseException as err:  # reported to the scheduling loop
            errors.append(err)
        finally:
            pool.put(worker)
            with changed:
                running.pop(job.name, None)
                ends.pop(job.name, None)
                changed.notify_all()

    ex = ThreadPoolExecutor(max_workers=n)
    restore = _terminate_as_interrupt()
    futures = []
    try:
        with changed:
            while pending or running:
                if errors:
                    raise errors[0]
                nxt = choose()
                if nxt is None:
                    changed.wait(timeout=1.0)
                    continue
                pending.remove(nxt)
                now = time.monotonic()
                end = None if nxt.expected_seconds is None else now + nxt.expected_seconds
                nice = niceness(end, ends.values()) if yield_cpu else 0
                running[nxt.name] = nxt.memory_mb or 0.0
                ends[nxt.name] = end
                futures.append(ex.submit(one, nxt, nice))
        for f in futures:
            f.result()
        if errors:
            raise errors[0]
    except BaseException:
        # Ctrl-C or SIGTERM: stop now, kill every worker and kernel, then re-raise
        ex.shutdown(wait=False, cancel_futures=True)
        for w in all_workers:
            w.kill()
        raise
    else:
        ex.shutdown()
    finally:
        restore()
        for w in all_workers:
            w.close()
    return results


def _terminate_as_interrupt() -> Callable[[], None]:
    """While jobs run, turn SIGTERM (a scheduler stopping us) into KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
