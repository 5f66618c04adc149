"""Fixtures that start real engines for the distributed-path tests.

* :func:`postgres_server` runs Debian's PostgreSQL (``initdb`` / ``pg_ctl``) on a
  temporary directory and a free loopback port, as the unprivileged ``postgres`` user when
  the tests run as root (PostgreSQL refuses to run as root), and stops it afterwards.
* :func:`spark_session` starts pyspark in local mode (needs Java 17) with the session
  time zone set to UTC, so timestamps compare equal with DuckDB's.

Each skips with a clear message only where the thing truly cannot exist on the machine
(no PostgreSQL binaries, no Java, pyspark not installed); ``make test`` installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[str]:
    """A running PostgreSQL server on 127.0.0.1 for the session; yields its base URL."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip(
            "PostgreSQL is not installed (initdb/pg_ctl not found); "
            "'make test' installs Debian's postgresql package"
        )
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="cxkit-pg-"))
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    prefix: list[str] = []
    if as_root:
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without 'runuser' to start PostgreSQL as 'postgres'")
        shutil.chown(base, "postgres")
        shutil.chown(sockdir, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off -c TimeZone=UTC"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(datadir), "-o", opts, "-l", str(base / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(datadir), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_server(postgres_cluster: str) -> Iterator[str]:
    """A fresh, empty database on the session's server for one test; yields its URL."""
    import ibis

    name = f"cx_{next(_DB_COUNTER)}"
    admin = ibis.connect(postgres_cluster)
    admin.raw_sql(f"CREATE DATABASE {name}")
    admin.disconnect()
    base = postgres_cluster.rsplit("/", 1)[0]
    yield f"{base}/{name}"


_DB_COUNTER = itertools.count()


@pytest.fixture
def spark_session(spark_cluster: object) -> Iterator[object]:
    """The session's Spark, with no temporary view or table left from an earlier test."""
    catalog = spark_cluster.catalog  # type: ignore[attr-defined]
    for table in catalog.listTables():
        if table.isTemporary:
            catalog.dropTempView(table.name)
        else:
            spark_cluster.sql(f"DROP TABLE IF EXISTS {table.name}")  # type: ignore[attr-defined]
    yield spark_cluster


@pytest.fixture(scope="session")
def spark_cluster() -> Iterator[object]:
    """A local pyspark session (2 cores, UTC) for the whole test session."""
    if not shutil.which("java"):
        pytest.skip(
            "Java is not installed; pyspark needs Java 17 "
            "('make test' installs Debian's openjdk-17-jre-headless)"
        )
    pyspark = pytest.importorskip(
        "pyspark", reason="pyspark not installed: pip install -e '.[spark]'"
    )
    from pyspark.sql import SparkSession

    del pyspark
    session = (
        SparkSession.builder.master("local[2]")
        .appName("cxkit-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        # Small test data: one partition and no code generation keep each query to
        # a fraction of a second instead of seconds of planning and compiling.
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.ansi.enabled", "false")
        # tables a test writes (e.g. scale mode's scores) stay out of the checkout
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="cxkit-spark-warehouse-"))
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()
