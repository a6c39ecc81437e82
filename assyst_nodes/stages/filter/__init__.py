"""Filters: predicates that decide which structures to keep.

A filter is a frozen dataclass called on one :class:`ase.Atoms`; ``True`` means *keep*. Filters
combine with ``&`` (:class:`AndFilter`), ``|`` (:class:`OrFilter`) and ``~`` (:class:`NotFilter`);
a plain function ``Atoms -> bool`` may stand on either side of ``&``/``|`` (it is wrapped in a
:class:`PredicateFilter`). Every filter is hashable, picklable, equal by value and has a short
``str`` (e.g. ``(distance(Ag=1.44, Cu=1.28) & aspect(6.0))``) that names the stage in reports.

:func:`filter` applies filters to many structures and records in a
:class:`~assyst_nodes.reports.StageReport` which filter rejected what. Being plain predicates,
the filters also work with the builtin: ``builtins.filter(DistanceFilter(1.0), structures)``.

Filters never compute anything expensive: energies and forces are read from the results a
calculator already holds (see :class:`EnergyFilter`), never calculated.
"""

from .apply import apply_filters
from .apply import filter as filter  # public, outside __all__ (see below)
from .base import (
    AndFilter,
    FilterBase,
    FilterLike,
    NotFilter,
    OrFilter,
    Predicate,
    PredicateFilter,
    as_filter,
)
from .geometry import (
    ASPECT_MEASURES,
    AspectFilter,
    DistanceFilter,
    VolumeFilter,
    distance_filter_of,
)
from .results import EnergyFilter, ForceFilter, MissingPolicy, MissingResultError

__all__ = [
    "ASPECT_MEASURES",
    "AndFilter",
    "AspectFilter",
    "DistanceFilter",
    "EnergyFilter",
    "FilterBase",
    "FilterLike",
    "ForceFilter",
    "MissingPolicy",
    "MissingResultError",
    "NotFilter",
    "OrFilter",
    "Predicate",
    "PredicateFilter",
    "VolumeFilter",
    "apply_filters",
    "as_filter",
    "distance_filter_of",
]
# ``filter`` itself is public (``from assyst_nodes.stages.filter import filter``) but left out of
# ``__all__`` so that a star import does not shadow the builtin by surprise.
