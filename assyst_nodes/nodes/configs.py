"""Config nodes: build a stage's *how* inside the graph.

Every frozen config dataclass of the core is a node as it is: ``pwf.node(VolumeRelax)`` has the
dataclass fields (with their defaults and hints) as inputs and the frozen ``instance`` as
output; :data:`CONFIG_CLASSES` lists them. The functions here cover what is not a dataclass
constructor: ``Formulas`` operators, putting a calculator into relax settings, series of
perturbations, the filter of the canonical run, and lists of configs.
"""

from __future__ import annotations

import flowrep as fr

from ..calculators import EMT, CalculatorConfig, ImportedCalculator, LennardJones, Morse
from ..defaults import CALCULATOR, MAX_ASPECT, PERTURBATIONS, RADII, canonical_filter
from ..runtime.executors import LocalProcesses, Slurm
from ..stages import relax as relaxations
from ..stages.duplicates import Duplicates
from ..stages.filter import (
    AndFilter,
    AspectFilter,
    DistanceFilter,
    EnergyFilter,
    FilterBase,
    ForceFilter,
    NotFilter,
    OrFilter,
    VolumeFilter,
    distance_filter_of,
)
from ..stages.fit import MACE, LinearACE, PacemakerACE
from ..stages.isolated import IsolatedAtoms
from ..stages.label import SinglePoint
from ..stages.perturb import (
    ElementScaledRattle,
    Perturbation,
    RandomChoice,
    Rattle,
    Series,
    Stretch,
    as_perturbation,
)
from ..stages.relax import CellRelax, FullRelax, Relax, SymmetryRelax, VolumeRelax
from ..stages.sample import Formulas
from ..stages.split import Split
from ..stages.validate import Suite
from ..stages.weights import Weights
from .executors import ExecutorLike

RADII_PAIRS: tuple[tuple[str, float], ...] = tuple(sorted(RADII.items()))
"""The default radii (Å) as (element, radius) pairs, a value a node input can hold."""

__all__ = [
    "CONFIG_CLASSES",
    "RADII_PAIRS",
    "assyst_filters",
    "executor_or",
    "formulas_concat",
    "formulas_for",
    "formulas_from",
    "formulas_pair",
    "formulas_product",
    "formulas_range",
    "formulas_trim",
    "perturbation_list",
    "perturbations_or_default",
    "run_relax_settings",
    "series",
    "with_calculator",
]

CONFIG_CLASSES: tuple[type, ...] = (
    LocalProcesses,
    Slurm,
    EMT,
    Morse,
    LennardJones,
    ImportedCalculator,
    Relax,
    CellRelax,
    VolumeRelax,
    SymmetryRelax,
    FullRelax,
    SinglePoint,
    Duplicates,
    IsolatedAtoms,
    Split,
    Weights,
    LinearACE,
    PacemakerACE,
    MACE,
    Suite,
    Rattle,
    ElementScaledRattle,
    Stretch,
    Series,
    RandomChoice,
    DistanceFilter,
    AspectFilter,
    VolumeFilter,
    EnergyFilter,
    ForceFilter,
    AndFilter,
    OrFilter,
    NotFilter,
)
"""The frozen config dataclasses; ``pwf.node(cls)`` of each is a config node."""


@fr.atomic("formulas")
def formulas_range(
    elements: str | list[str] | tuple[str, ...], start: int = 0, stop: int = 5, step: int = 1
) -> Formulas:
    """Every combination of ``range(start, stop, step)`` counts of each element.

    A node around :meth:`Formulas.range <assyst_nodes.stages.sample.Formulas.range>`. Counts
    of 0 are kept in the compositions; sampling ignores them.

    Parameters
    ----------
    elements : str or list of str or tuple of str
        Chemical symbols, e.g. ``["Cu", "Ag"]``; a single string is one element.
    start : int, default 0
        The smallest count (atoms per cell) of each element.
    stop : int, default 5
        The end of the counts, exclusive: the largest count is at most ``stop - 1``.
    step : int, default 1
        The step between counts (as in the builtin ``range``).

    Returns
    -------
    Formulas
        One composition ``{element: count}`` per combination of counts.
    """
    names = elements if isinstance(elements, str) else tuple(elements)
    return Formulas.range(names, start, stop, step)


@fr.atomic("formulas")
def formulas_for(
    elements: str | list[str] | tuple[str, ...] = ("Cu", "Ag"),
    min_atoms: int = 1,
    max_atoms: int = 4,
    formulas: Formulas | None = None,
) -> Formulas:
    """The compositions of ``min_atoms..max_atoms`` atoms per cell.

    Every mix of ``elements`` (counts may be 0, so single elements are included), or the given
    ``formulas`` trimmed to that window when they are not ``None``.

    Parameters
    ----------
    elements : str or list of str or tuple of str, default ("Cu", "Ag")
        Chemical symbols to mix; a single string is one element. Unused when ``formulas`` is
        given.
    min_atoms : int, default 1
        Atoms per cell at least.
    max_atoms : int, default 4
        Atoms per cell at most.
    formulas : Formulas, optional
        Explicit compositions to trim to the window instead of mixing ``elements``. Default:
        ``None`` (every mix of ``elements``).

    Returns
    -------
    Formulas
        The compositions with ``min_atoms`` to ``max_atoms`` atoms (element counts of 0 are
        kept; sampling ignores them).

    Raises
    ------
    ValueError
        ``min_atoms > max_atoms``.
    """
    if formulas is None:
        names = (elements,) if isinstance(elements, str) else tuple(elements)
        formulas = Formulas.range(names, 0, max_atoms + 1)
    return formulas.trim(min_atoms, max_atoms)


@fr.atomic("formulas")
def formulas_from(compositions: list[dict[str, int]]) -> Formulas:
    """``Formulas`` from explicit compositions.

    Parameters
    ----------
    compositions : list of dict of str to int
        One ``{element: count}`` per composition, e.g. ``[{"Cu": 1, "Ag": 3}]``; element order
        is kept (it is the species order handed to pyxtal).

    Returns
    -------
    Formulas
        The compositions, in the given order.
    """
    return Formulas(compositions)


@fr.atomic("formulas")
def formulas_concat(first: Formulas, second: Formulas) -> Formulas:
    """``first + second``: the compositions of both, in order.

    Parameters
    ----------
    first, second : Formulas
        The compositions to concatenate (``first``'s come first).

    Returns
    -------
    Formulas
        All compositions of ``first``, then all of ``second``.
    """
    return first + second


@fr.atomic("formulas")
def formulas_pair(first: Formulas, second: Formulas) -> Formulas:
    """``first | second``: item-by-item union of disjoint element sets.

    Parameters
    ----------
    first, second : Formulas
        Compositions over disjoint sets of elements; the i-th composition of one is joined with
        the i-th of the other (the shorter length wins).

    Returns
    -------
    Formulas
        The joined compositions.
    """
    return first | second


@fr.atomic("formulas")
def formulas_product(first: Formulas, second: Formulas) -> Formulas:
    """``first * second``: every composition of one with every one of the other.

    Parameters
    ----------
    first, second : Formulas
        Compositions over disjoint sets of elements.

    Returns
    -------
    Formulas
        ``len(first) * len(second)`` joined compositions.
    """
    return first * second


@fr.atomic("formulas")
def formulas_trim(formulas: Formulas, min_atoms: int = 1, max_atoms: int | None = None) -> Formulas:
    """Only the compositions with ``min_atoms`` to ``max_atoms`` atoms.

    Parameters
    ----------
    formulas : Formulas
        The compositions to trim.
    min_atoms : int, default 1
        Atoms per cell at least.
    max_atoms : int, optional
        Atoms per cell at most. Default: ``None`` (no upper limit).

    Returns
    -------
    Formulas
        The compositions with ``min_atoms <= total atoms <= max_atoms``, in order.

    Raises
    ------
    ValueError
        ``min_atoms > max_atoms``.
    """
    return formulas.trim(min_atoms, max_atoms)


@fr.atomic("settings")
def with_calculator(
    settings: Relax | None,
    calculator: CalculatorConfig | None = None,
    default: CalculatorConfig | None = None,
) -> Relax | None:
    """``settings`` relaxing with ``calculator``.

    A node around :func:`assyst_nodes.stages.relax.with_calculator` that lets a skipped
    relaxation (``settings=None``) through as ``None``.

    Parameters
    ----------
    settings : Relax or None
        The relaxation; ``None`` (a skipped relaxation) stays ``None``.
    calculator : CalculatorConfig, optional
        The calculator to relax with. Default: ``None`` (keep the settings' own).
    default : CalculatorConfig, optional
        The calculator of settings that name none when ``calculator`` is ``None``. Default:
        ``None`` (leave it unset).

    Returns
    -------
    Relax or None
        ``settings`` with the chosen calculator, or ``None`` for ``settings=None``.

    Raises
    ------
    ValueError
        ``settings`` name a calculator different from ``calculator`` (the error names both).
    """
    if settings is None:
        return None
    return relaxations.with_calculator(settings, calculator, default)


@fr.atomic("settings")
def run_relax_settings(
    settings: Relax | None, calculator: CalculatorConfig | None = None
) -> Relax | None:
    """The relax settings of the canonical run.

    :func:`with_calculator` with the run's default calculator
    (:data:`assyst_nodes.defaults.CALCULATOR`, EMT) for settings that name none.

    Parameters
    ----------
    settings : Relax or None
        The relaxation; ``None`` (a skipped relaxation) stays ``None``.
    calculator : CalculatorConfig, optional
        The run's calculator. Default: ``None`` (keep the settings' own, EMT where they name
        none).

    Returns
    -------
    Relax or None
        ``settings`` with their calculator set, or ``None`` for ``settings=None``.

    Raises
    ------
    ValueError
        ``settings`` name a calculator different from ``calculator`` (the error names both).
    """
    return with_calculator(settings, calculator, CALCULATOR)


@fr.atomic("perturbation")
def series(first: Perturbation, second: Perturbation) -> Perturbation:
    """``first + second``: apply ``first``, then ``second`` to its result.

    Parameters
    ----------
    first, second : Perturbation
        The perturbations, in the order they are applied.

    Returns
    -------
    Perturbation
        The series of both (a :class:`~assyst_nodes.stages.perturb.Series`).
    """
    return first + second


@fr.atomic("perturbations")
def perturbation_list(
    first: Perturbation,
    second: Perturbation | None = None,
    third: Perturbation | None = None,
    fourth: Perturbation | None = None,
) -> list[Perturbation]:
    """The given perturbations as a list; each is applied separately.

    Parameters
    ----------
    first : Perturbation
        The first perturbation.
    second, third, fourth : Perturbation, optional
        Further perturbations. Default: ``None`` (left out).

    Returns
    -------
    list of Perturbation
        The perturbations that are not ``None``, in argument order.
    """
    return [p for p in (first, second, third, fourth) if p is not None]


@fr.atomic("perturbations")
def perturbations_or_default(
    perturbations: list[Perturbation] | tuple[Perturbation, ...] | None = None,
) -> list[Perturbation]:
    """``perturbations`` as a list, or the canonical run's two when ``None``.

    The canonical two (:data:`assyst_nodes.defaults.PERTURBATIONS`): a 0.1 Å rattle (one-atom
    cells first repeated to 8 atoms) on a 5 % strain, and a random choice of a large volume
    change (hydrostatic strain up to 80 %) or a large shear (shear strain up to 20 %).

    Parameters
    ----------
    perturbations : list or tuple of Perturbation, optional
        The perturbations, each applied separately to every structure. Default: ``None`` (the
        canonical two).

    Returns
    -------
    list of Perturbation
        The perturbations, each converted by
        :func:`~assyst_nodes.stages.perturb.as_perturbation`.
    """
    chosen = PERTURBATIONS if perturbations is None else perturbations
    return [as_perturbation(p) for p in chosen]


@fr.atomic("tolerance", "filters")
def assyst_filters(
    radii: float | dict[str, float] | tuple[tuple[str, float], ...] = RADII_PAIRS,
    max_aspect: float = MAX_ASPECT,
    filters: FilterBase | None = None,
    tolerance: str | float | dict[str, float] | DistanceFilter | None = None,
) -> tuple[str | float | dict[str, float] | DistanceFilter, FilterBase | None]:
    """The sampling tolerance and the filter of the canonical run.

    The tolerance bounds the sampling, so crystals are drawn with the same radii the filter
    keeps.

    Parameters
    ----------
    radii : float or dict of str to float or tuple of (str, float), default RADII_PAIRS
        Minimum-distance radii (Å): one for every element, or one per element (a dict or
        ``(element, radius)`` pairs); a pair closer than r_i + r_j is dropped. Unused when
        ``filters`` is given. Default: :data:`~assyst_nodes.nodes.configs.RADII_PAIRS` (Cu 0.9 Å,
        Ag 1.0 Å).
    max_aspect : float, default 6.0
        The most elongated cell kept (longest over shortest cell height, dimensionless).
        Unused when ``filters`` is given.
    filters : FilterBase, optional
        The filter to use as given. Default: ``None`` (minimum distances from ``radii`` and
        cell aspect from ``max_aspect``, see :func:`assyst_nodes.defaults.canonical_filter`).
    tolerance : str or float or dict of str to float or DistanceFilter, optional
        What bounds the sampling: a pyxtal prototype name or radii (Å). Default: ``None`` (the
        ``DistanceFilter`` inside the filter, else pyxtal's ``"metallic"`` table).

    Returns
    -------
    tolerance : str or float or dict of str to float or DistanceFilter
        The sampling bound.
    filters : FilterBase
        The filter of the run.
    """
    if filters is None:
        filters = canonical_filter(radii, max_aspect)
    if tolerance is None:
        tolerance = distance_filter_of(filters) or "metallic"
    return tolerance, filters


@fr.atomic("executor")
def executor_or(specific: ExecutorLike = None, default: ExecutorLike = None) -> ExecutorLike:
    """``specific`` (a stage's own executor) if given, else ``default`` (the run's).

    Parameters
    ----------
    specific : ExecutorLike, optional
        The stage's own executor (config, instructions or live executor). Default: ``None``
        (use ``default``).
    default : ExecutorLike, optional
        The run's executor. Default: ``None`` (the stage's local ``workers``).

    Returns
    -------
    ExecutorLike
        ``specific`` unless it is ``None``, else ``default``.
    """
    return default if specific is None else specific
