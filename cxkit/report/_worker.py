"""A report worker: imports papermill once, then executes notebooks sent on stdin.

Protocol (one JSON object per line): the worker prints ``{"ready": true}`` once papermill
is imported, then for every job line it answers with one result line. Everything else the
worker or papermill prints goes to stderr (the run's worker log), never to the protocol
pipe. The runner starts each worker in its own session (process group) and kills the
whole group, and any kernel it started, when a job runs past its timeout.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import psutil


def _first_line(text: str, limit: int = 300) -> str:
    """Return the first non-blank line of ``text``, cut at ``limit`` characters."""
    line = next((s for s in str(text).strip().splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _PeakMemory:
    """Sample the summed resident memory of this process's children in a thread.

    The children are the kernel and anything it starts; they are sampled every
    ``interval`` seconds.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
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


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Execute one notebook with papermill; never raises (but on Ctrl-C).

    Parameters
    ----------
    job
        A job line from the runner (:meth:`cxkit.report.runner.Job.payload`).

    Returns
    -------
    dict
        ``name``, ``ok``, ``error`` (one line, or None), ``seconds`` and
        ``peak_memory_mb``.
    """
    # papermill is imported here, not at the top: main() must first point stdout at the
    # log, so that nothing printed while importing it reaches the protocol pipe.
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    marker_env = job["marker_env"]
    os.environ[marker_env] = job["marker"]
    started = time.monotonic()
    result: dict[str, Any] = {"name": job["name"], "ok": False, "error": None}
    memory = _PeakMemory()
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
