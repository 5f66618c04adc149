"""Fixtures shared by the personas tests: one analysis of the 2,000-customer demo."""

from __future__ import annotations

import pytest

import cxkit
from cxkit import personas as P


@pytest.fixture(scope="session")
def demo_report(demo_data: cxkit.CXData) -> P.PersonasResult:
    """``personas.analyze`` on the demo, computed once for every personas test module."""
    return P.analyze(demo_data, random_state=0)
