"""The base of every filter and the algebra on filters: :class:`FilterBase` (``&``, ``|``,
``~``), :func:`as_filter` for plain predicates, and the helpers the concrete filters share."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ...lineage import UUID

__all__ = [
    "AndFilter",
    "FilterBase",
    "FilterLike",
    "NotFilter",
    "OrFilter",
    "Predicate",
    "PredicateFilter",
    "as_filter",
]


Predicate = Callable[[Atoms], bool]
"""Any callable ``Atoms -> bool``; ``True`` means keep."""


class FilterBase(ABC):
    """A predicate on one structure: ``filter(structure)`` is ``True`` to keep it.

    The abstract base of all filters; it takes no parameters itself. Subclasses are frozen
    dataclasses that implement ``__call__`` (and ``__str__`` for a readable name; overriding
    :meth:`explain` is optional).

    Notes
    -----
    ``a & b`` (:class:`AndFilter`) keeps what both keep, ``a | b`` (:class:`OrFilter`) what
    either keeps, ``~a`` (:class:`NotFilter`) what ``a`` rejects. A plain callable
    ``Atoms -> bool`` may stand on either side of ``&`` and ``|``; it is wrapped in a
    :class:`PredicateFilter`.
    """

    @abstractmethod
    def __call__(self, structure: Atoms) -> bool:
        """``True`` to keep ``structure``, ``False`` to drop it.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to judge; it is not modified.

        Returns
        -------
        bool
            ``True`` to keep ``structure``, ``False`` to drop it.
        """

    def first_rejecting_leaf(self, structure: Atoms) -> FilterBase | None:
        """The filter to blame if ``structure`` is rejected, ``None`` if it is kept.

        Parameters
        ----------
        structure : ase.Atoms
            The structure to judge.

        Returns
        -------
        FilterBase or None
            ``None`` if this filter keeps ``structure``, else the filter to blame: a leaf
            blames itself; :class:`AndFilter` blames the first operand that rejects;
            :class:`OrFilter` and :class:`NotFilter` blame themselves as a whole.
        """
        return None if self(structure) else self

    def explain(self, structure: Atoms) -> str:
        """A one-line reason why this filter rejects ``structure`` (measured value vs bound).

        Parameters
        ----------
        structure : ase.Atoms
            The structure this filter rejects.

        Returns
        -------
        str
            The measured value against the bound, with units, e.g.
            ``1 pair(s) too close, worst Cu0-Ag1 at 1.62 Å < 1.9 Å``; the base class says
            ``rejected by <str of the filter>``. :func:`filter` records it as the detail of a
            rejection in its report.
        """
        return f"rejected by {self}"

    def __and__(self, other: FilterLike) -> AndFilter:
        if not callable(other):
            return NotImplemented
        return AndFilter(self, as_filter(other))

    def __rand__(self, other: FilterLike) -> AndFilter:
        if not callable(other):
            return NotImplemented
        return AndFilter(as_filter(other), self)

    def __or__(self, other: FilterLike) -> OrFilter:
        if not callable(other):
            return NotImplemented
        return OrFilter(self, as_filter(other))

    def __ror__(self, other: FilterLike) -> OrFilter:
        if not callable(other):
            return NotImplemented
        return OrFilter(as_filter(other), self)

    def __invert__(self) -> NotFilter:
        return NotFilter(self)


FilterLike = FilterBase | Predicate
"""What the functions of this module accept as a filter."""


def as_filter(predicate: FilterLike) -> FilterBase:
    """``predicate`` itself if it is a :class:`FilterBase`, else wrapped in a PredicateFilter.

    Parameters
    ----------
    predicate : FilterBase or callable
        A filter, or a plain callable ``Atoms -> bool`` (``True`` keeps).

    Returns
    -------
    FilterBase
        ``predicate`` itself if it is a :class:`FilterBase`, else
        ``PredicateFilter(predicate)`` (:class:`PredicateFilter`).

    Raises
    ------
    TypeError
        If ``predicate`` is neither a :class:`FilterBase` nor callable.
    """
    if isinstance(predicate, FilterBase):
        return predicate
    if callable(predicate):
        return PredicateFilter(predicate)
    raise TypeError(
        f"a filter must be a FilterBase or a callable Atoms -> bool, not {predicate!r} "
        f"({type(predicate).__name__})"
    )


@dataclass(frozen=True)
class PredicateFilter(FilterBase):
    """Wraps a plain callable ``Atoms -> bool`` (``True`` keeps); ``str`` is its name.

    Equal when the callable is the same object; picklable when the callable is (a module-level
    function, not a lambda). Made automatically when a plain function meets ``&`` or ``|``
    (see :func:`as_filter`).

    Parameters
    ----------
    predicate : callable
        ``Atoms -> bool``; a true result keeps the structure. Its ``__qualname__`` (else its
        ``__name__``, else its ``repr``) is the filter's ``str``.

    Raises
    ------
    TypeError
        If ``predicate`` is not callable or is already a :class:`FilterBase` (use it as it is).
    """

    predicate: Predicate

    def __post_init__(self) -> None:
        if not callable(self.predicate) or isinstance(self.predicate, FilterBase):
            raise TypeError(
                f"PredicateFilter needs a plain callable Atoms -> bool, not {self.predicate!r}"
            )

    def __call__(self, structure: Atoms) -> bool:
        return bool(self.predicate(structure))

    def __str__(self) -> str:
        name = getattr(self.predicate, "__qualname__", None) or getattr(
            self.predicate, "__name__", None
        )
        return str(name) if name else repr(self.predicate)


@dataclass(frozen=True)
class AndFilter(FilterBase):
    """Keeps a structure iff both ``left`` and ``right`` keep it; ``str``: ``(left & right)``.

    Usually built by ``left & right``. ``right`` is skipped if ``left`` rejects. A rejection is
    blamed on the first rejecting operand (see :meth:`FilterBase.first_rejecting_leaf`).

    Parameters
    ----------
    left, right : FilterBase or callable
        The two operands, ``left`` applied first; a plain callable ``Atoms -> bool`` is
        wrapped by :func:`as_filter`.
    """

    left: FilterBase
    right: FilterBase

    def __post_init__(self) -> None:
        object.__setattr__(self, "left", as_filter(self.left))
        object.__setattr__(self, "right", as_filter(self.right))

    def __call__(self, structure: Atoms) -> bool:
        return bool(self.left(structure) and self.right(structure))

    def first_rejecting_leaf(self, structure: Atoms) -> FilterBase | None:
        leaf = self.left.first_rejecting_leaf(structure)
        return leaf if leaf is not None else self.right.first_rejecting_leaf(structure)

    def __str__(self) -> str:
        return f"({self.left} & {self.right})"


@dataclass(frozen=True)
class OrFilter(FilterBase):
    """Keeps a structure iff ``left`` or ``right`` keeps it; ``str``: ``(left | right)``.

    Usually built by ``left | right``. ``right`` is skipped if ``left`` keeps. A rejection is
    blamed on the whole filter, and its :meth:`~FilterBase.explain` gives both operands'
    reasons.

    Parameters
    ----------
    left, right : FilterBase or callable
        The two operands, ``left`` applied first; a plain callable ``Atoms -> bool`` is
        wrapped by :func:`as_filter`.
    """

    left: FilterBase
    right: FilterBase

    def __post_init__(self) -> None:
        object.__setattr__(self, "left", as_filter(self.left))
        object.__setattr__(self, "right", as_filter(self.right))

    def __call__(self, structure: Atoms) -> bool:
        return bool(self.left(structure) or self.right(structure))

    def explain(self, structure: Atoms) -> str:
        return f"{self.left.explain(structure)}; and {self.right.explain(structure)}"

    def __str__(self) -> str:
        return f"({self.left} | {self.right})"


@dataclass(frozen=True)
class NotFilter(FilterBase):
    """Keeps a structure iff ``operand`` rejects it; ``str``: ``~operand``.

    Usually built by ``~operand``. A rejection is blamed on the whole filter.

    Parameters
    ----------
    operand : FilterBase or callable
        The filter to negate; a plain callable ``Atoms -> bool`` is wrapped by
        :func:`as_filter`.
    """

    operand: FilterBase

    def __post_init__(self) -> None:
        object.__setattr__(self, "operand", as_filter(self.operand))

    def __call__(self, structure: Atoms) -> bool:
        return not self.operand(structure)

    def explain(self, structure: Atoms) -> str:
        return f"{self.operand} keeps it"

    def __str__(self) -> str:
        return f"~{self.operand}"


def _check_number(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """``value`` as a float; ValueError unless it is a real, non-NaN number (or None if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        valid = "a number or None" if allow_none else "a number"
        raise ValueError(f"{name} must be {valid}, got {value!r} ({type(value).__name__})")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name} must be a number, got NaN")
    return number


def _label(structure: Atoms) -> str:
    """The uuid of ``structure``, or its chemical formula if it has none."""
    uid = structure.info.get(UUID)
    return str(uid) if uid is not None else structure.get_chemical_formula()


def _bounds_str(name: str, low: float | None, high: float | None, extra: str = "") -> str:
    parts = [f"{key}={value}" for key, value in (("min", low), ("max", high)) if value is not None]
    if extra:
        parts.append(extra)
    return f"{name}({', '.join(parts)})"


def _check_bounds(
    low_name: str, low: object, high_name: str, high: object, *, positive: bool
) -> tuple[float | None, float | None]:
    lo = _check_number(low_name, low, allow_none=True)
    hi = _check_number(high_name, high, allow_none=True)
    if positive:
        for name, value in ((low_name, lo), (high_name, hi)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None, got {value}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{low_name} must be <= {high_name}, got {low_name}={lo} > {hi}")
    return lo, hi
