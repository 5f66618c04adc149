"""Fixtures shared by the CLV tests: the CDNOW sample's calibration summary and fits."""

from __future__ import annotations

import pandas as pd
import pytest

from cxkit import clv, datasets
from tests.clv._data import CAL_END, OBS_END


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    data = datasets.cdnow(sample=True)
    return clv.rfm_summary(data, calibration_end=CAL_END, observation_end=OBS_END, time_unit="W")


@pytest.fixture(scope="session")
def cdnow_bg(cdnow_summary: pd.DataFrame) -> clv.BetaGeo:
    return clv.BetaGeo().fit(cdnow_summary)


@pytest.fixture(scope="session")
def cdnow_gg(cdnow_summary: pd.DataFrame) -> clv.GammaGamma:
    return clv.GammaGamma().fit(cdnow_summary)
