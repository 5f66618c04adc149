"""Gamma-Gamma: the published CDNOW estimates, spend predictions, edge cases, simulation.

Published figures: Fader & Hardie (2013) on the CDNOW sample's 946 repeat customers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from cxkit import clv
from tests.clv._data import orders


@pytest.mark.parametrize(("name", "published"), [("p", 6.25), ("q", 3.74), ("gamma", 15.44)])
def test_cdnow_gamma_gamma_parameters(
    cdnow_gg: clv.GammaGamma, name: str, published: float
) -> None:
    assert cdnow_gg.params_[name] == pytest.approx(published, rel=0.005)
    assert cdnow_gg.n_customers_ == 946


def test_zero_value_orders() -> None:
    data = orders(
        [
            ("a", "2024-01-01", 0.0),
            ("a", "2024-01-05", 0.0),  # a repeat purchase worth nothing
            ("b", "2024-01-01", 10.0),
            ("b", "2024-01-08", 20.0),
            ("c", "2024-01-01", 5.0),
            ("c", "2024-01-03", 15.0),
            ("c", "2024-01-09", 0.0),
        ]
    )
    s = clv.rfm_summary(data, observation_end="2024-01-31", time_unit="D")
    assert s.frequency.tolist() == [1, 1, 2]  # zero-value orders still count as purchases
    assert s.monetary_value.tolist() == [0.0, 20.0, 7.5]
    with pytest.warns(UserWarning, match="1 repeat customers with a mean repeat value of 0"):
        gg = clv.GammaGamma(correlation_warning=1.0).fit(s)
    assert gg.n_customers_ == 2


def test_gamma_gamma_correlation_warning() -> None:
    x = np.random.default_rng(0).integers(1, 20, 2_000)
    s = clv.simulate_spend(x, p=6.0, q=4.0, gamma=15.0, random_state=1)
    s["monetary_value"] *= (x / x.mean()) ** 1.5  # frequent buyers spend more
    with pytest.warns(UserWarning, match=r"frequency and mean spend are correlated \(Pearson r"):
        gg = clv.GammaGamma().fit(s)
    assert gg.correlation_ > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clv.GammaGamma(correlation_warning=0.99).fit(s)


def test_gamma_gamma_conditional_spend(cdnow_gg: clv.GammaGamma) -> None:
    p, q, g = cdnow_gg.params_
    frame = pd.DataFrame({"frequency": [0, 1, 10], "monetary_value": [0.0, 100.0, 100.0]})
    got = cdnow_gg.conditional_expected_average_spend(frame)
    assert got[0] == pytest.approx(cdnow_gg.mean_spend()) == pytest.approx(p * g / (q - 1))
    assert got[0] < got[1] < got[2] < 100  # shrunk towards the population mean


@pytest.mark.parametrize(
    "call",
    [
        lambda gg: gg.mean_spend(),
        lambda gg: gg.conditional_expected_average_spend({"frequency": [1], "monetary_value": [1]}),
        lambda gg: gg.params_table(),
    ],
)
def test_every_method_needing_a_fit_checks_it(call) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        call(clv.GammaGamma())


@pytest.mark.slow
def test_gamma_gamma_recovers_simulated_parameters() -> None:
    true = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    x = np.random.default_rng(5).integers(1, 15, 100_000)
    s = clv.simulate_spend(x, **true, random_state=3)
    gg = clv.GammaGamma().fit(s)
    z = (gg.params_ - pd.Series(true)) / gg.standard_errors_
    assert (z.abs() < 3).all(), z.to_dict()
