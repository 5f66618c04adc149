"""The shape every analysis returns: ``analyze(data, *, as_of=None, **options) -> Result``.

Each domain package (:mod:`cxkit.lifecycle`, :mod:`cxkit.churn`, :mod:`cxkit.clv`,
:mod:`cxkit.personas`, :mod:`cxkit.voc`) has one ``analyze`` function. It reads a
:class:`~cxkit.data.CXData`, resolves ``as_of`` with :func:`cxkit.data.resolve_as_of`
(the one meaning of ``as_of``), and returns a subclass of :class:`Result`: the tables the
report shows as attributes, what could not be computed in :attr:`Result.not_available`,
and :meth:`Result.findings`, the sentences the domain report and the executive summary
both show. To add an analysis, copy that shape::

    @dataclass(kw_only=True)
    class RefundsResult(Result):
        domain: ClassVar[str] = "refunds"
        by_month: pd.DataFrame

        def findings(self) -> list[Finding]:
            return [finding_from_rate(r, domain=self.domain, ...) for ...]

    def analyze(data: CXData, *, as_of: AsOf = None) -> RefundsResult:
        end = resolve_as_of(data, as_of)
        ...
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import ClassVar

import pandas as pd

from cxkit.findings import Finding

__all__ = ["AsOf", "Result"]

#: What an ``as_of`` argument accepts (see :func:`cxkit.data.resolve_as_of`).
AsOf = str | pd.Timestamp | dt.date | None


@dataclass(kw_only=True)
class Result:
    """The base of every domain's ``analyze`` result.

    Attributes
    ----------
    domain
        The domain's name, as in :attr:`cxkit.findings.Finding.domain`.
    as_of
        The resolved instant the analysis ran at (:func:`cxkit.data.resolve_as_of`).
    not_available
        One plain sentence per part the data could not support.
    """

    domain: ClassVar[str] = ""
    as_of: pd.Timestamp
    not_available: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        """Return the domain's findings, most important first.

        Returns
        -------
        list of Finding
            What the domain report and the executive summary show.

        Raises
        ------
        NotImplementedError
            On the base class: every domain's result defines its own.
        """
        raise NotImplementedError(f"{type(self).__name__} must define findings()")

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return every table of the result by name.

        Returns
        -------
        dict of str to pandas.DataFrame
            The attributes that are data frames (``None`` attributes are left out).
        """
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), pd.DataFrame)
        }
