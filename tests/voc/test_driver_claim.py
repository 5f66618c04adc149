"""The wording rule of key-driver claims: R² thresholds, the top driver's lead, its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxkit import voc
from cxkit.voc.drivers import R2_NEGLIGIBLE, R2_STRONG


def kd(r2: float, shares: list[tuple[str, float, float, float]], n: int = 400) -> pd.DataFrame:
    """A key-driver frame: (driver, share %, low %, high %), most important first."""
    out = pd.DataFrame(
        shares, columns=["driver", "importance_pct", "importance_low_pct", "importance_high_pct"]
    )
    out.attrs.update(r2=r2, n=n, method="linear")
    return out


CLEAR = [("csat_delivery", 60.0, 45.0, 75.0), ("csat_product", 25.0, 10.0, 40.0)]
UNCLEAR = [("csat_delivery", 38.0, 9.0, 59.0), ("csat_product", 21.0, 3.0, 39.0)]


def test_r2_words_rise_with_r2_at_the_stated_thresholds() -> None:
    bounds = [b for b, _ in voc.R2_WORDS]
    assert bounds == sorted(bounds) and bounds[-1] == float("inf")
    assert R2_NEGLIGIBLE == bounds[0] and R2_STRONG in bounds
    for (bound, word), (_, nxt) in zip(voc.R2_WORDS, voc.R2_WORDS[1:], strict=False):
        assert voc.driver_claim(kd(bound - 1e-6, CLEAR)).explained == word
        assert voc.driver_claim(kd(bound, CLEAR)).explained == nxt


def test_a_negligible_r2_names_no_driver() -> None:
    claim = voc.driver_claim(kd(0.012, CLEAR))
    assert claim.explained == "almost none" and not claim.clear_lead
    assert "csat_delivery" not in claim.sentence and "csat_delivery" not in claim.title
    assert "R² 0.01" in claim.sentence and "n=400 customers" in claim.sentence
    assert "no touchpoint can be named" in claim.sentence


def test_a_weak_model_says_so_and_words_the_lead_by_its_interval() -> None:
    claim = voc.driver_claim(kd(0.03, UNCLEAR))
    assert claim.explained == "little"
    assert claim.sentence.startswith("The touchpoint scores explain little of the NPS answer")
    assert "csat_delivery weighs most with 38% (95% CI 9-59%" in claim.sentence
    assert "1.1% of the whole variation" in claim.sentence  # 38% of R² = 0.03
    assert "though not clearly ahead of csat_product (21%)" in claim.sentence
    assert "matters most" not in claim.title and "matters most" not in claim.sentence
    assert claim.title == (
        "Touchpoint scores explain little of the NPS answer (R² 0.03); of that, "
        "csat_delivery weighs most"
    )


def test_matters_most_needs_a_strong_model_and_a_clear_lead() -> None:
    strong_clear = voc.driver_claim(kd(R2_STRONG, CLEAR))
    assert strong_clear.clear_lead
    assert (
        strong_clear.title == f"csat_delivery matters most for the NPS answer (R² {R2_STRONG:.2f})"
    )
    assert "clearly ahead of csat_product (25%)" in strong_clear.sentence
    # a strong model without a clear lead, or a clear lead in a moderate model: no
    for claim in (voc.driver_claim(kd(0.5, UNCLEAR)), voc.driver_claim(kd(0.2, CLEAR))):
        assert "matters most" not in claim.title and "weighs most" in claim.title
    # the lead is clear only when the top interval starts above the runner-up's share
    tie = [("a", 50.0, 30.0, 70.0), ("b", 30.0, 10.0, 50.0)]
    assert not voc.driver_claim(kd(0.5, tie)).clear_lead
    above = [("a", 50.0, 30.01, 70.0), ("b", 30.0, 10.0, 50.0)]
    assert voc.driver_claim(kd(0.5, above)).clear_lead


def test_one_driver_and_another_outcome() -> None:
    claim = voc.driver_claim(
        kd(0.3, [("ces_billing", 100.0, 100.0, 100.0)]), outcome="being a promoter"
    )
    assert claim.clear_lead and "ahead" not in claim.sentence
    assert claim.title == "ces_billing matters most for being a promoter (R² 0.30)"


def test_the_voc_finding_uses_the_rule() -> None:
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "csat_delivery": rng.integers(1, 6, n).astype(float),
            "csat_product": rng.integers(1, 6, n).astype(float),
        }
    )
    table["nps_score"] = np.clip(np.round(2 * table.csat_delivery + rng.normal(0, 3, n)), 0, 10)
    table["promoter"] = table.nps_score >= 9
    drivers = voc.driver_importance(table, n_boot=50, random_state=0)
    res = voc.VocResult(as_of=pd.Timestamp("2024-01-01"), days=90, key_drivers=drivers)
    found = {f.metric: f for f in res.findings()}["top_driver"]
    claim = voc.driver_claim(drivers)
    assert found.sentence == claim.sentence
    assert found.extra["explained"] == claim.explained
    assert found.extra["r2"] == pytest.approx(drivers.attrs["r2"])


def test_the_quadrant_chart_is_titled_by_the_wording_rule_by_default() -> None:
    for r2, shares in ((0.03, UNCLEAR), (R2_STRONG, CLEAR), (0.005, CLEAR)):
        frame = kd(r2, shares).assign(performance_0_100=[60.0, 70.0], n_observed=[300, 250])
        title = voc.plot_drivers_quadrant(frame).layout.title.text
        assert title == voc.driver_claim(frame).title
        assert ("matters most" in title) == (r2 >= R2_STRONG)
    # a frame without the model's R² and n claims nothing about a top driver
    bare = kd(0.03, CLEAR).assign(performance_0_100=[60.0, 70.0], n_observed=[300, 250])
    bare.attrs.clear()
    assert "csat_delivery" not in voc.plot_drivers_quadrant(bare).layout.title.text
