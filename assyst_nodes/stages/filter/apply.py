"""The filter stage: :func:`filter` applies filters to many structures and records in a report
which filter rejected what."""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import reduce

from ase import Atoms

from ...lineage import UUID
from ...reports import StageReport
from ...validation import structure_list
from .base import AndFilter, FilterBase, FilterLike, as_filter

__all__ = ["apply_filters"]  # and ``filter``, left out so a star import keeps the builtin


def _combine(filters: FilterLike | Iterable[FilterLike]) -> FilterBase | None:
    """One filter from one or several (and-ed, in order); ``None`` for an empty collection."""
    if isinstance(filters, FilterBase) or callable(filters):
        return as_filter(filters)
    if isinstance(filters, str | bytes) or not isinstance(filters, Iterable):
        raise TypeError(
            f"filters must be a filter, a callable Atoms -> bool or an iterable of them, "
            f"not {filters!r} ({type(filters).__name__})"
        )
    parts = [as_filter(f) for f in filters]
    return reduce(AndFilter, parts) if parts else None


def filter(  # shadows the builtin inside this module, on purpose
    structures: Iterable[Atoms],
    filters: FilterLike | Iterable[FilterLike],
    report: StageReport | None = None,
) -> list[Atoms]:
    """The structures that every one of ``filters`` keeps, in input order.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures to judge; they are not modified.
    filters : FilterBase, callable or iterable of them
        One filter, a plain callable ``Atoms -> bool``, or an iterable of them (and-ed, in
        order; an empty one keeps everything).
    report : StageReport, optional
        Where to record the stage. Its ``stage`` becomes the ``str`` of the combined filter
        (``"no filter"`` for none), ``n_in``/``n_out``/``seconds`` (s) grow, and each
        rejection is recorded with the uuid (or formula and position, e.g. ``AgCu #0``) as
        label, the ``str`` of the filter to blame as reason (see
        :meth:`FilterBase.first_rejecting_leaf`) and its :meth:`FilterBase.explain` as detail,
        so ``report.dropped`` counts rejections per filter. Default: ``None`` (nothing is
        recorded).

    Returns
    -------
    list of ase.Atoms
        The kept structures in input order: the input objects themselves, so their uuids do
        not change.

    Raises
    ------
    TypeError
        If an item of ``structures`` is not an ``Atoms`` (or ``structures`` is not an
        iterable of them); if ``filters`` is not a filter, a callable or an iterable of them;
        if the first argument is a filter, i.e. the builtin order
        ``filter(predicate, structures)`` of ``builtins.filter``.

    Notes
    -----
    Errors raised by the filters themselves propagate, e.g. :class:`MissingResultError` from
    an :class:`EnergyFilter` with ``if_missing="raise"``.
    """
    if isinstance(structures, FilterBase) or (
        callable(structures) and not isinstance(structures, Iterable)
    ):
        raise TypeError(
            "filter(structures, filters): the first argument is a filter; the builtin order "
            "filter(predicate, structures) belongs to builtins.filter"
        )
    items = structure_list(structures)
    combined = _combine(filters)
    start = time.perf_counter()
    if report is not None:
        report.stage = "no filter" if combined is None else str(combined)
    kept: list[Atoms] = []
    for position, structure in enumerate(items):
        if report is not None:
            report.n_in += 1
        if combined is None:
            blame = None
        elif report is None:
            blame = None if combined(structure) else combined
        else:
            blame = combined.first_rejecting_leaf(structure)
        if blame is None:
            kept.append(structure)
            if report is not None:
                report.n_out += 1
        elif report is not None:
            uid = structure.info.get(UUID)
            formula = structure.get_chemical_formula()
            label = str(uid) if uid is not None else f"{formula} #{position}"
            report.drop(label, str(blame), blame.explain(structure))
    if report is not None:
        report.seconds += time.perf_counter() - start
    return kept


apply_filters = filter
"""Alias of :func:`filter` that does not shadow the builtin where it is imported."""
