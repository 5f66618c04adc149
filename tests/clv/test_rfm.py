"""RFM summaries: hand-worked tiny tables, invariants, CDNOW counts, other engines."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cxkit
from cxkit import clv
from cxkit.errors import NotAvailableError, UsageError
from tests.clv._data import TINY, engine_orders, fixed_bg, orders, orders_frame


def test_rfm_summary_hand_worked_days() -> None:
    s = clv.rfm_summary(orders(TINY[:5]), observation_end="2024-02-04", time_unit="D")
    expected = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "b"], dtype="string"),
            "frequency": [2, 0],
            "recency": [28.0, 0.0],
            "T": [34.0, 27.0],
            "monetary_value": [30.0, 0.0],  # mean of the repeat days (20 + 40) / 2
        }
    )
    pd.testing.assert_frame_equal(s, expected)
    assert s.attrs["time_unit"] == "D"
    assert s.attrs["observation_end"] == "2024-02-04"


def test_rfm_summary_weeks_and_holdout() -> None:
    s = clv.rfm_summary(
        orders(TINY), calibration_end="2024-02-04", observation_end="2024-02-25", time_unit="W"
    )
    assert s.customer_id.tolist() == ["a", "b"]  # c was born in the holdout
    assert s.recency.tolist() == [4.0, 0.0]
    assert s["T"].tolist() == [34 / 7, 27 / 7]
    assert s.holdout_frequency.tolist() == [1, 1]  # a's two holdout orders are one day
    assert s.holdout_monetary_value.tolist() == [10.0, 6.0]
    assert s.holdout_duration.tolist() == [3.0, 3.0]
    assert s.attrs["calibration_end"] == "2024-02-04"


def test_rfm_summary_takes_one_data_input() -> None:
    frame = orders_frame(TINY)
    frame.insert(0, "order_id", [f"o{i}" for i in range(len(frame))])
    data = cxkit.load({"orders": frame})
    a = clv.rfm_summary(data, observation_end="2024-03-01")
    # a frame without order IDs, loaded, gives the same summary
    c = clv.rfm_summary(orders(TINY), observation_end="2024-03-01")
    pd.testing.assert_frame_equal(a, c)
    # a bare table or frame is not a data input: the message says how to wrap it
    for bare in (frame, data.table("orders")):
        with pytest.raises(UsageError, match=r"data must be a CXData, got .*cxkit\.load"):
            clv.rfm_summary(bare)  # type: ignore[arg-type]
    # Default observation end: the data's latest order (or its as_of).
    d = clv.rfm_summary(data.upto("2024-02-20"))
    assert d.attrs["observation_end"] == "2024-02-20"


def test_rfm_summary_expr_is_lazy() -> None:
    expr = clv.rfm_summary_expr(orders(TINY), observation_end="2024-03-01")
    assert set(expr.columns) == {"customer_id", "frequency", "recency", "T", "monetary_value"}


def test_rfm_summary_bad_options() -> None:
    with pytest.raises(UsageError, match="time_unit must be 'D' or 'W', got 'M'"):
        clv.rfm_summary(orders(TINY), time_unit="M")
    with pytest.raises(UsageError, match=r"calibration_end .* must be before observation_end"):
        clv.rfm_summary(orders(TINY), calibration_end="2024-03-01", observation_end="2024-02-01")
    no_amount = cxkit.load({"orders": orders_frame(TINY).drop(columns="amount")})
    with pytest.raises(NotAvailableError, match=r"table 'orders' with column\(s\) 'amount'"):
        clv.rfm_summary(no_amount)


def test_rfm_summary_as_of_meaning() -> None:
    """observation_end reads like as_of: a date includes its whole day, a date-time is exact."""
    data = orders(TINY)
    whole_day = clv.rfm_summary(data, observation_end="2024-01-29", time_unit="D")
    assert whole_day.loc[whole_day.customer_id == "a", "frequency"].item() == 2  # 12:00 is in
    exact = clv.rfm_summary(data, observation_end="2024-01-29 11:00", time_unit="D")
    assert exact.loc[exact.customer_id == "a", "frequency"].item() == 1  # 12:00 is after it
    aware = clv.rfm_summary(data, observation_end="2024-01-29 13:00+02:00", time_unit="D")
    pd.testing.assert_frame_equal(aware, exact)  # 11:00 UTC


@settings(max_examples=15, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 60), st.integers(0, 23), st.floats(0, 50)),
        min_size=1,
        max_size=25,
    )
)
def test_rfm_summary_invariants(rows: list[tuple[str, int, int, float]]) -> None:
    start = pd.Timestamp("2024-01-01")
    frame = pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [start + pd.Timedelta(days=r[1], hours=r[2]) for r in rows],
            "amount": [round(r[3], 2) for r in rows],
        }
    )
    s = clv.rfm_summary(cxkit.load({"orders": frame}), observation_end="2024-03-15", time_unit="D")
    days = frame.assign(day=frame.ts.dt.normalize()).drop_duplicates(["customer_id", "day"])
    assert len(s) == frame.customer_id.nunique()
    assert int(s.frequency.sum()) + len(s) == len(days)  # every purchase day counted once
    assert (s.recency <= s["T"]).all() and (s.recency >= 0).all()
    assert ((s.frequency == 0) == (s.recency == 0)).all()
    assert (s.monetary_value >= 0).all()
    assert (s.loc[s.frequency == 0, "monetary_value"] == 0).all()


def test_cdnow_summary_counts(cdnow_summary: pd.DataFrame) -> None:
    assert len(cdnow_summary) == 2_357
    assert cdnow_summary.frequency.sum() == 2_457
    assert (cdnow_summary.frequency > 0).sum() == 946
    assert cdnow_summary.holdout_duration.iloc[0] == 39.0


def test_customer_with_one_purchase() -> None:
    s = clv.rfm_summary(orders([("x", "2024-01-01", 5.0)]), observation_end="2024-01-15")
    assert s.to_dict("records") == [
        {"customer_id": "x", "frequency": 0, "recency": 0.0, "T": 2.0, "monetary_value": 0.0}
    ]


# ----------------------------------------------------------------------------------------
# the engine side runs unchanged on PostgreSQL and Spark
# ----------------------------------------------------------------------------------------


def _same_rfm(other: cxkit.CXData) -> None:
    ref = cxkit.load({"orders": engine_orders()})
    for data in (ref, other):
        assert data.table("orders").count().to_pandas() == len(TINY)
    kwargs = {"calibration_end": "2024-02-04", "observation_end": "2024-02-25"}
    a = clv.rfm_summary(ref, **kwargs)
    b = clv.rfm_summary(other, **kwargs)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    bg = fixed_bg()
    ta = clv.cumulative_repeat_purchases(ref, bg, **kwargs)
    tb = clv.cumulative_repeat_purchases(other, bg, **kwargs)
    pd.testing.assert_frame_equal(ta, tb, check_dtype=False)


@pytest.mark.postgres
@pytest.mark.slow
def test_rfm_summary_on_postgres(postgres_server: str) -> None:
    from tests.test_backends import into_postgres

    _same_rfm(into_postgres(postgres_server, {"orders": engine_orders()}))


@pytest.mark.spark
@pytest.mark.slow
def test_rfm_summary_on_spark(spark_session: object) -> None:
    from tests.test_backends import into_spark

    _same_rfm(into_spark(spark_session, {"orders": engine_orders()}))
