"""Tests of cxkit.lifecycle.journeys: journey paths and Sankey links."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

import cxkit
from cxkit import lifecycle as lc
from cxkit import stats
from cxkit.errors import NotAvailableError, UsageError
from tests.lifecycle.helpers import mini_data
from tests.test_backends import into_postgres, into_spark


def test_journeys():
    data = mini_data()
    p = lc.journey_paths(data, kind="touchpoint", max_steps=3)
    top = dict(zip(p.path, p.customers, strict=True))
    assert top["marketing > browse > support"] == 1
    assert top["browse"] == 2  # b (browse, browse collapsed) and d
    assert p.customers.sum() == 4
    s = lc.journey_sankey(data, kind="touchpoint", max_steps=3, top=2)
    assert "(end)" in set(s.target)
    expected = pd.DataFrame(
        {
            "source": ["1. browse", "1. marketing", "1. marketing", "2. browse"],
            "target": ["(end)", "(end)", "2. browse", "3. other"],
            "customers": [2, 1, 1, 1],
        }
    )
    pd.testing.assert_frame_equal(s, expected, check_dtype=False)
    sp = lc.journey_paths(data, kind="stage", max_steps=5)
    assert sp.customers.sum() == 4


# ---- the engine implementation against a straightforward one ---------------------------

_T = pd.Timestamp("2024-03-01")


def _tie_events() -> pd.DataFrame:
    """Ties in time, repeats (also across a missing touchpoint), one-step customers."""
    rows = [
        # a: browse and marketing at the same instant (name order), a run of browse
        ("a", 0, "marketing", "product_view"), ("a", 0, "browse", "site_visit"),
        ("a", 1, "browse", "site_visit"), ("a", 2, "browse", "product_view"),
        ("a", 3, "checkout", "add_to_cart"), ("a", 4, "support", "site_visit"),
        # b: one event
        ("b", 5, "support", "site_visit"),
        # c: only repeats, one across a missing touchpoint
        ("c", 1, "browse", "site_visit"), ("c", 2, None, "site_visit"),
        ("c", 2, "browse", "product_view"), ("c", 3, "browse", "site_visit"),
        # d: the same path as a, ties everywhere
        ("d", 7, "browse", "site_visit"), ("d", 7, "marketing", "site_visit"),
        ("d", 7, "marketing", "product_view"), ("d", 8, "browse", "site_visit"),
        ("d", 8, "checkout", "site_visit"), ("d", 9, "support", "site_visit"),
        # e: longer than max_steps, coming back to earlier touchpoints
        ("e", 2, "marketing", "site_visit"), ("e", 3, "browse", "product_view"),
        ("e", 4, "checkout", "site_visit"), ("e", 5, "browse", "site_visit"),
        ("e", 6, "marketing", "site_visit"), ("e", 7, "billing", "site_visit"),
        # f and g: one step each, g with two events at one instant
        ("f", 3, "billing", "site_visit"),
        ("g", 4, "checkout", "product_view"), ("g", 4, "checkout", "site_visit"),
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=["customer_id", "hours", "touchpoint", "event"])
    df.insert(0, "event_id", [f"e{i:02d}" for i in range(len(df))])
    df["ts"] = _T + pd.to_timedelta(df.pop("hours"), unit="h")
    # shuffled, so nothing rests on the input order
    return df.sample(frac=1.0, random_state=3).reset_index(drop=True)


_ORDERS = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3"],
        "customer_id": ["a", "e", "h"],  # h has an order and nothing else: one stage
        "ts": _T + pd.to_timedelta([0, 3, 5], unit="h"),  # a and e: ties with other stages
        "amount": [10.0, 20.0, 5.0],
    }
)

# stage order is the reverse of name order, so ties show which one decides
_STAGE_MAP = {
    "visit": {"events": "any"},
    "view": {"events": ["product_view"]},
    "buy": {"orders": "any"},
}


def _tie_data() -> cxkit.CXData:
    return cxkit.load({"events": _tie_events(), "orders": _ORDERS})


def _ref_sequences(data: cxkit.CXData, kind: str, max_steps: int) -> dict[str, list[str]]:
    """Per customer the first max_steps items, by a plain loop over sorted rows."""
    if kind == "stage":
        st = lc.stages(data, _STAGE_MAP, monotone=False)
        out = {}
        for _, row in st.iterrows():
            reached = [(row[f"{n}_at"], i, n) for i, n in enumerate(_STAGE_MAP)]
            out[row.customer_id] = [n for ts, _, n in sorted(r for r in reached if pd.notna(r[0]))]
        return {c: items[:max_steps] for c, items in out.items()}
    e = data.to_pandas("events")
    e = e[e[kind].notna()].sort_values(["customer_id", "ts", kind, "event_id"])
    out: dict[str, list[str]] = {}
    for cid, item in zip(e.customer_id, e[kind], strict=True):
        items = out.setdefault(cid, [])
        if not items or items[-1] != item:
            items.append(item)
    return {c: items[:max_steps] for c, items in out.items()}


def _ref_paths(seqs: dict[str, list[str]], top: int) -> pd.DataFrame:
    counts: dict[str, int] = {}
    for items in seqs.values():
        path = " > ".join(items)
        counts[path] = counts.get(path, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    total = len(seqs)
    out = pd.DataFrame(
        {
            "path": pd.Series([p for p, _ in ranked], dtype="str"),
            "steps": pd.Series([p.count(" > ") + 1 for p, _ in ranked], dtype="int64"),
            "customers": pd.Series([n for _, n in ranked], dtype="int64"),
        }
    )
    out["share"] = out.customers / total
    out["ci_low"], out["ci_high"] = stats.wilson_ci(out.customers, total)
    return out


def _ref_sankey(seqs: dict[str, list[str]], max_steps: int, top: int) -> pd.DataFrame:
    freq: dict[str, int] = {}
    for items in seqs.values():
        for item in items:
            freq[item] = freq.get(item, 0) + 1
    keep = {i for i, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    links: dict[tuple[str, str], int] = {}
    for items in seqs.values():
        nodes = [f"{k}. {i if i in keep else 'other'}" for k, i in enumerate(items, start=1)]
        if len(items) < max_steps:
            nodes.append("(end)")
        for pair in itertools.pairwise(nodes):
            links[pair] = links.get(pair, 0) + 1
    ranked = sorted(links.items(), key=lambda kv: (int(kv[0][0].split(".")[0]), -kv[1], kv[0]))
    return pd.DataFrame(
        {
            "source": pd.Series([s for (s, _), _ in ranked], dtype="str"),
            "target": pd.Series([t for (_, t), _ in ranked], dtype="str"),
            "customers": pd.Series([n for _, n in ranked], dtype="int64"),
        }
    )


@pytest.mark.parametrize("kind", ["touchpoint", "event", "stage"])
@pytest.mark.parametrize("max_steps", [1, 2, 3, 4, 6, 40])  # 40: longer than the pivot
def test_journeys_match_a_plain_reference(kind: str, max_steps: int) -> None:
    data = _tie_data()
    seqs = _ref_sequences(data, kind, max_steps)
    smap = _STAGE_MAP if kind == "stage" else None
    for top in (0, 1, 2, 3, 10):
        got = lc.journey_paths(data, kind=kind, max_steps=max_steps, top=top, stage_map=smap)
        pd.testing.assert_frame_equal(got, _ref_paths(seqs, top))
        links = lc.journey_sankey(data, kind=kind, max_steps=max_steps, top=top, stage_map=smap)
        pd.testing.assert_frame_equal(links, _ref_sankey(seqs, max_steps, top))
        both = lc.journey_tables(
            data, kind=kind, max_steps=max_steps, top_paths=top, top_items=top, stage_map=smap
        )
        pd.testing.assert_frame_equal(both[0], got)
        pd.testing.assert_frame_equal(both[1], links)


def test_reference_data_has_the_hard_cases() -> None:
    seqs = _ref_sequences(_tie_data(), "touchpoint", 4)
    assert seqs["a"] == seqs["d"] == ["browse", "marketing", "browse", "checkout"]
    assert seqs["c"] == ["browse"] and seqs["b"] == ["support"]
    assert len(seqs["e"]) == 4
    stage_seqs = _ref_sequences(_tie_data(), "stage", 3)
    assert stage_seqs["a"] == ["visit", "view", "buy"]  # all three at 00:00
    assert stage_seqs["h"] == ["buy"]
    # with max_steps=2 and top=3 the sankey cut falls inside a three-way tie
    seqs = _ref_sequences(_tie_data(), "touchpoint", 2)
    freq = pd.Series([i for items in seqs.values() for i in items]).value_counts()
    assert freq.iloc[2] == freq.iloc[3] == freq.iloc[4] == 1


def test_journeys_when_nothing_qualifies() -> None:
    data = _tie_data()
    for max_steps in (0, -1):
        paths, links = lc.journey_tables(data, max_steps=max_steps)
        assert paths.empty and list(paths.columns) == list(lc.journey_paths(data).columns)
        assert links.empty and list(links.columns) == ["source", "target", "customers"]
    with pytest.raises(UsageError, match=r"kind must be 'stage'.*got 'page'"):
        lc.journey_tables(data, kind="page")
    with pytest.raises(NotAvailableError, match="channel"):
        lc.journey_tables(data, kind="channel")


def test_events_without_a_customer_count_only_towards_the_kept_items() -> None:
    ev = pd.DataFrame(
        {
            "customer_id": pd.Series(["a", "a", "b", None, None, None], dtype="str"),
            "touchpoint": ["x", "w", "w", "z", "q", "z"],
            "event": ["site_visit"] * 6,
            "ts": _T + pd.to_timedelta(range(6), unit="h"),
        }
    )
    data = cxkit.load({"events": ev})
    for max_steps in (3, 40):  # the engine pivot and the row fallback
        paths, links = lc.journey_tables(data, max_steps=max_steps, top_items=2)
        assert paths.path.tolist() == ["w", "x > w"] and paths.share.tolist() == [0.5, 0.5]
        # w and z (twice each, z only without a customer) are kept; x becomes other
        expected = pd.DataFrame(
            {
                "source": ["1. other", "1. w", "2. w"],
                "target": ["2. w", "(end)", "(end)"],
                "customers": [1, 1, 1],
            }
        )
        pd.testing.assert_frame_equal(links, expected, check_dtype=False)


def test_analyze_shares_one_journey_query_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    data = mini_data()
    calls: list[str] = []
    real = lc.analysis.journey_tables

    def counting(*args: object, **kwargs: object) -> tuple[pd.DataFrame, pd.DataFrame]:
        calls.append(str(kwargs["kind"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(lc.analysis, "journey_tables", counting)
    res = lc.analyze(data)
    assert calls == ["touchpoint", "stage"]
    pd.testing.assert_frame_equal(res.journey_paths, lc.journey_paths(data, top=10))
    pd.testing.assert_frame_equal(res.journey_links, lc.journey_sankey(data, top=6))
    n = len(res.stage_map)
    kw = {"kind": "stage", "max_steps": n, "stage_map": res.stage_map}
    pd.testing.assert_frame_equal(res.stage_paths, lc.journey_paths(data, top=8, **kw))
    pd.testing.assert_frame_equal(res.stage_links, lc.journey_sankey(data, top=n, **kw))


# ---- the same engine query on PostgreSQL and Spark ------------------------------------


def _tie_tables() -> dict[str, pd.DataFrame]:
    return {"events": _tie_events(), "orders": _ORDERS}


def _assert_journeys_match_duckdb(other: cxkit.CXData) -> None:
    ref = _tie_data()
    for kw in (
        {"kind": "touchpoint", "max_steps": 3, "top_items": 3},  # the cut inside a tie
        {"kind": "stage", "max_steps": 3, "stage_map": _STAGE_MAP},
    ):
        want, got = lc.journey_tables(ref, **kw), lc.journey_tables(other, **kw)
        pd.testing.assert_frame_equal(got[0], want[0], check_dtype=False, obj=f"paths {kw}")
        pd.testing.assert_frame_equal(got[1], want[1], check_dtype=False, obj=f"links {kw}")


@pytest.mark.postgres
@pytest.mark.slow
def test_journeys_on_postgres_match_duckdb(postgres_server: str) -> None:
    _assert_journeys_match_duckdb(into_postgres(postgres_server, _tie_tables()))


@pytest.mark.spark
@pytest.mark.slow
def test_journeys_on_spark_match_duckdb(spark_session: object) -> None:
    _assert_journeys_match_duckdb(into_spark(spark_session, _tie_tables()))
