"""Tests for cxkit.personas.journeys: journey maps and pain points on tiny tables, and
the same engine code on PostgreSQL and Spark."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import personas as P
from cxkit.errors import DataError, NotAvailableError
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures
from tests.personas._data import pain_data, tiny


def test_journey_map_hand_worked() -> None:
    data = cxkit.load(tiny())
    asg = pd.DataFrame({"customer_id": ["a", "b", "c"], "persona_name": ["P1", "P2", "P2"]})
    jm = P.journey_map(data, asg).set_index(["persona_name", "stage"])
    # a: site_visit, product_view, 2 orders on different days, NPS 9 -> all five stages
    assert jm.loc[("P1", slice(None)), "n_reached"].tolist() == [1, 1, 1, 1, 1]
    # b: social_view, an order (purchase implies consideration), no repeat, NPS 3;
    # c: nothing at all
    assert jm.loc[("P2", slice(None)), "n_reached"].tolist() == [1, 1, 1, 0, 0]
    assert jm.loc[("P2", "awareness"), "reach"] == 0.5
    assert jm.loc[("P2", "retention"), "drop_off"] == 1.0
    # awareness activity of a: web, chat, app (one each): ties go alphabetically
    assert jm.loc[("P1", "awareness"), "top_channel"] == "app"
    assert jm.loc[("P1", "awareness"), "top_channel_share"] == pytest.approx(1 / 3)
    assert jm.loc[("P1", "retention"), "top_channel"] == "app"  # the repeat order
    # csat 2 at day 6 (after product_view on day 5: consideration), csat 5 at day 8
    # (after the first order on day 7: purchase)
    assert jm.loc[("P1", "consideration"), "csat_n"] == 1
    assert jm.loc[("P1", "consideration"), "csat_top2"] == 0.0
    assert jm.loc[("P1", "purchase"), "csat_top2"] == 1.0
    assert jm.loc[("P1", "advocacy"), "nps_n"] == 1  # the NPS 9 makes a an advocate
    assert jm["small_n"].all()


def test_pain_points_find_planted_channel() -> None:
    data, asg = pain_data()
    pp = P.pain_points(data, asg, by=("channel",)).set_index("persona_name")
    assert pp.loc["P1", "value"] == "chat" and bool(pp.loc["P1", "significant"])
    assert pp.loc["P1", "p_adj"] < 0.001
    assert pp.loc["P1", "csat_top2"] < 0.5 < pp.loc["P1", "rest_top2"]
    assert not bool(pp.loc["P2", "significant"])
    assert "significant" in pp.loc["P1", "sentence"]
    by = P.csat_by(data, asg, by="channel")
    assert by.groupby("persona_name").n.sum().tolist() == [120, 120]
    with pytest.raises(NotAvailableError, match="column\\(s\\) 'touchpoint'"):
        P.csat_by(data, asg, by="touchpoint")


def test_assignments_must_name_columns() -> None:
    data, _ = pain_data()
    with pytest.raises(DataError, match="assignments need columns 'customer_id'"):
        P.csat_by(data, pd.DataFrame({"id": ["x"]}))


# --------------------------------------------------------------------------------------
# the same engine code on PostgreSQL and Spark
# --------------------------------------------------------------------------------------


def _same_on(other_of) -> None:
    tabs = tiny()
    asg = pd.DataFrame({"customer_id": ["a", "b", "c"], "persona_name": ["P1", "P2", "P2"]})
    ref, other = cxkit.load(tabs), other_of(tabs)
    pd.testing.assert_frame_equal(
        P.customer_features(ref, as_of="2024-02-10"),
        P.customer_features(other, as_of="2024-02-10"),
        check_dtype=False,
        rtol=1e-9,
    )
    pd.testing.assert_frame_equal(
        P.journey_map(ref, asg), P.journey_map(other, asg), check_dtype=False, rtol=1e-9
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_features_and_journey_on_postgres(postgres_server: str) -> None:  # noqa: F811
    from tests.test_backends import into_postgres

    _same_on(lambda tabs: into_postgres(postgres_server, tabs))


@pytest.mark.spark
@pytest.mark.slow
def test_features_and_journey_on_spark(spark_session: object) -> None:  # noqa: F811
    from tests.test_backends import into_spark

    _same_on(lambda tabs: into_spark(spark_session, tabs))


def test_channel_shares_hand_worked() -> None:
    asg = pd.Series(["P1", "P2", "P2"], index=["a", "b", "c"])  # a Series works too
    ch = P.channel_shares(cxkit.load(tiny()), asg, as_of="2024-02-10")
    a = ch[ch.persona_name == "P1"].set_index(["stage", "channel"])
    # a's awareness activity: site_visit (web), support_contact (chat), app_open (app)
    assert a.loc["awareness", "n"].to_dict() == {"app": 1, "chat": 1, "web": 1}
    assert a.loc[("consideration", "web"), "share"] == 1.0  # product_view
    assert a.loc[("purchase", "web"), "n"] == 1 and a.loc[("retention", "app"), "n"] == 1
    assert ch.groupby(["persona_name", "stage"]).share.sum().round(12).eq(1).all()


def test_journey_and_pain_tables_as_text() -> None:
    data = cxkit.load(tiny())
    asg = pd.DataFrame({"customer_id": ["a", "b", "c"], "persona_name": ["P1", "P2", "P2"]})
    tab = P.journey_table(P.journey_map(data, asg))
    assert list(tab.columns) == [
        "persona", "stage", "reached", "drop-off", "top channel", "CSAT top-2-box", "NPS",
    ]  # fmt: skip
    row = tab.iloc[0]
    assert (row.persona, row.stage, row["drop-off"]) == ("P1", "awareness", "–")
    assert row["reached"].startswith("1 = 100% (")
    assert tab.iloc[4]["NPS"].endswith("n = 1 (small n)")
    pdata, pasg = pain_data()
    pt = P.pain_table(P.pain_points(pdata, pasg, by=("channel",))).set_index("persona")
    assert pt.loc["P1", "worst"] == "channel 'chat'" and pt.loc["P1", "pain point"] == "yes"
    assert pt.loc["P1", "test (Holm)"] == "p < 0.001" and pt.loc["P2", "pain point"] == "no"
