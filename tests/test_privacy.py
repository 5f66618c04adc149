"""Pseudonymous customer IDs (cxkit.privacy) and the ``publish:`` options of a report run."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cxkit import cli, privacy
from cxkit.errors import UsageError
from cxkit.report import config as report_config
from cxkit.report import pipeline

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "20_churn.ipynb"


def _reference(value: str, key: bytes) -> str:
    return "c_" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


@pytest.mark.parametrize("key", ["secret", b"\x00binary key", "k" * 200], ids=repr)
def test_pseudonym_is_hmac_sha256_of_the_id(key: str | bytes) -> None:
    ids = ["C0000001", "C0000002", "00042", "ünï"]
    raw = key.encode() if isinstance(key, str) else key
    assert privacy.pseudonymize(ids, key) == [_reference(v, raw) for v in ids]


def test_pseudonyms_are_stable_per_key_and_differ_between_keys() -> None:
    ids = pd.Series([f"C{i:07d}" for i in range(1, 2001)])
    a = privacy.pseudonymize(ids, "key one")
    assert a.equals(privacy.pseudonymize(ids, "key one"))
    b = privacy.pseudonymize(ids, "key two")
    assert (a != b).all()
    assert a.is_unique and not set(a) & set(ids)
    assert a.str.fullmatch(r"c_[0-9a-f]{16}").all()


def test_pseudonymize_keeps_the_shape() -> None:
    key = "k"
    s = pd.Series(["C1", None, "C1"], index=[5, 6, 7], name="customer_id", dtype="string")
    out = privacy.pseudonymize(s, key)
    assert out.index.tolist() == [5, 6, 7] and out.name == "customer_id"
    assert out.dtype == s.dtype
    assert out[5] == out[7] and pd.isna(out[6])
    idx = privacy.pseudonymize(pd.Index(["C1", "C2"], name="id"), key)
    assert isinstance(idx, pd.Index) and idx.name == "id" and idx[0] == out[5]
    arr = privacy.pseudonymize(np.array([["C1", "C2"], ["C2", "C1"]], dtype=object), key)
    assert arr.shape == (2, 2) and arr[0, 0] == arr[1, 1] == out[5]
    assert privacy.pseudonymize(("C1", "C2"), key) == tuple(idx)
    assert privacy.pseudonymize("C1", key) == out[5]
    assert privacy.pseudonymize(None, key) is None
    # IDs are text: a number gives the pseudonym of its text
    assert privacy.pseudonymize([42], key) == privacy.pseudonymize(["42"], key)


@pytest.mark.parametrize("key", ["", "  ", b""], ids=repr)
def test_an_empty_key_is_refused(key: str | bytes) -> None:
    with pytest.raises(UsageError, match=r"key is empty.*CXKIT_ID_KEY"):
        privacy.pseudonymize(["C1"], key)


def test_published_ids_is_the_one_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"customer_id": ["C1", "C2"], "clv_52w": [1.5, 2.5]}, index=[3, 4])
    frame.attrs["as_of"] = "2024-12-31"
    assert privacy.published_ids(frame, mode="clear") is frame
    shown = privacy.published_ids(frame, mode="pseudonymous", key="k")
    assert shown["customer_id"].tolist() == privacy.pseudonymize(["C1", "C2"], "k")
    assert shown["clv_52w"].tolist() == [1.5, 2.5] and shown.index.tolist() == [3, 4]
    assert shown.attrs == frame.attrs
    assert frame["customer_id"].tolist() == ["C1", "C2"]  # the analysis keeps real IDs
    # a frame without the column has nothing to hide
    no_ids = frame[["clv_52w"]]
    assert privacy.published_ids(no_ids, mode="pseudonymous", key="k") is no_ids
    # without a key argument, the key comes from the environment (as in a report run)
    monkeypatch.setenv(privacy.KEY_ENV, "k")
    assert privacy.published_ids(frame, mode="pseudonymous").equals(shown)
    monkeypatch.delenv(privacy.KEY_ENV)
    with pytest.raises(UsageError, match=r"no key is set.*CXKIT_ID_KEY.*customer_ids='clear'"):
        privacy.published_ids(frame, mode="pseudonymous")
    with pytest.raises(UsageError, match="'pseudonymous' or 'clear', got 'hashed'"):
        privacy.published_ids(frame, mode="hashed")


def test_key_comes_from_env_then_config_then_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    old = os.umask(0)  # even a permissive umask must not open the key file
    try:
        key = privacy.resolve_key(tmp_path)
    finally:
        os.umask(old)
    path = privacy.key_file(tmp_path)
    assert path == tmp_path / "_private" / "id_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(key) == 64 and path.read_text().strip() == key
    assert privacy.resolve_key(tmp_path) == key  # created once, then kept
    assert [p.name for p in path.parent.iterdir()] == ["id_key"]  # no temporary left
    assert privacy.resolve_key(tmp_path, config_key="from yml") == "from yml"
    monkeypatch.setenv(privacy.KEY_ENV, "from env")
    assert privacy.resolve_key(tmp_path, config_key="from yml") == "from env"
    monkeypatch.setenv(privacy.KEY_ENV, "")
    with pytest.raises(UsageError, match="key is empty"):
        privacy.resolve_key(tmp_path)
    monkeypatch.delenv(privacy.KEY_ENV)
    with pytest.raises(UsageError, match="no key is set"):
        privacy.resolve_key(None)
    path.write_text("\n")
    with pytest.raises(UsageError, match=r"key file .* is empty; delete it"):
        privacy.resolve_key(tmp_path)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / privacy.PRIVATE_DIR).write_text("a file where the folder goes")
    with pytest.raises(UsageError, match=r"cannot use the customer-ID key file .*permissions"):
        privacy.resolve_key(blocked)


def test_note_only_when_pseudonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(privacy, "takeaway", shown.append)
    privacy.show_ids_note("clear")
    assert shown == [] and privacy.ids_note("clear") == ""
    privacy.show_ids_note("pseudonymous")
    assert shown == [privacy.ids_note("pseudonymous")]
    assert "pseudonymous (keyed hash)" in shown[0]
    assert "publish.customer_ids: clear" in shown[0]


def _parse(raw: dict[str, Any], **kwargs: Any) -> report_config.ReportConfig:
    base = {"data": "/d", "reports": [{"name": "churn", "notebook": str(NOTEBOOK)}]}
    return report_config.parse_config({**base, **raw}, base=Path("/"), **kwargs)


def test_publish_options_in_reports_yml() -> None:
    assert _parse({}).customer_ids == "pseudonymous"
    assert _parse({"publish": {"customer_ids": "clear"}}).customer_ids == "clear"
    assert _parse({}, clear_ids=True).customer_ids == "clear"  # --clear-ids
    cfg = _parse({"publish": {"id_key": "s3cret"}})
    assert cfg.id_key == "s3cret" and "s3cret" not in repr(cfg)
    for bad in ("hashed", False, ""):
        with pytest.raises(UsageError, match="customer_ids must be 'pseudonymous' or 'clear'"):
            _parse({"publish": {"customer_ids": bad}})
    assert _parse({"publish": {"customer_ids": None}}).customer_ids == "pseudonymous"
    with pytest.raises(UsageError, match=r"publish: unknown key.*'salt'.*customer_ids, id_key"):
        _parse({"publish": {"salt": "x"}})
    with pytest.raises(UsageError, match="id_key must be a non-empty secret"):
        _parse({"publish": {"id_key": 12}})
    with pytest.raises(UsageError, match="publish must look like"):
        _parse({"publish": "clear"})


def test_clear_ids_flag_reaches_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(config: str, **kwargs: Any) -> pipeline.RunResult:
        seen.update(kwargs)
        return pipeline.RunResult("r", 0, Path("/o"), Path("/o/_runs/r"))

    monkeypatch.setattr(pipeline, "run_reports", fake_run)
    assert cli.main(["report", "--clear-ids"]) == 0
    assert seen["clear_ids"] is True
    assert cli.main(["report"]) == 0
    assert seen["clear_ids"] is False
