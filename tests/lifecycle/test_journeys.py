"""Tests of cxkit.lifecycle.journeys: journey paths and Sankey links."""

from __future__ import annotations

import pandas as pd

from cxkit import lifecycle as lc
from tests.lifecycle.helpers import mini_data


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
