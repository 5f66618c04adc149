"""pyproject.toml and environment.yml list the same dependencies with the same pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    req = req.split("#")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    name = m.group(1).lower().replace("_", "-")
    extras = (m.group(2) or "").lower()
    spec = ",".join(sorted(s.strip() for s in m.group(3).split(",") if s.strip()))
    return f"{name}{extras}{spec}"


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"]}
    wanted |= {_norm(r) for r in project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_list = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    got = {_norm(r) for r in pip_list if not r.startswith("-e")}
    assert got == wanted, (
        f"only in environment.yml: {got - wanted}; only in pyproject: {wanted - got}"
    )


def test_design_pins_hold() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    text = " ".join(deps)
    assert "ibis-framework[duckdb]==12.0.0" in text
    assert "sqlglot>=28,<30.17" in text
    assert re.search(r"duckdb>=1\.5,<2\.[01]", text)


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
