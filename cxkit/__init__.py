"""cxkit: customer-experience analytics behind parametrised notebooks and offline HTML reports.

>>> import cxkit
>>> sorted(cxkit.TABLES)
['customers', 'events', 'orders', 'responses']
"""

from __future__ import annotations

from cxkit.data import SCHEMA, TABLES, CXData, load, resolve_as_of
from cxkit.errors import (
    ConvergenceError,
    CxkitError,
    DataError,
    NotAvailableError,
    Problem,
    UsageError,
)
from cxkit.findings import Finding
from cxkit.validate import validate

__version__ = "0.1.0"

__all__ = [
    "SCHEMA",
    "TABLES",
    "CXData",
    "ConvergenceError",
    "CxkitError",
    "DataError",
    "Finding",
    "NotAvailableError",
    "Problem",
    "UsageError",
    "__version__",
    "load",
    "resolve_as_of",
    "validate",
]
