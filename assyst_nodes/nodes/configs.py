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
    """Counts ``range(start, stop, step)`` of each element, all combinations
    (``Formulas.range``); counts of 0 are ignored by sampling."""
    names = elements if isinstance(elements, str) else tuple(elements)
    return Formulas.range(names, start, stop, step)


@fr.atomic("formulas")
def formulas_for(
    elements: str | list[str] | tuple[str, ...] = ("Cu", "Ag"),
    min_atoms: int = 1,
    max_atoms: int = 4,
    formulas: Formulas | None = None,
) -> Formulas:
    """Compositions of ``min_atoms..max_atoms`` atoms: every mix of ``elements`` (counts may be
    0), or the given ``formulas`` trimmed to that window when they are not ``None``."""
    if formulas is None:
        names = (elements,) if isinstance(elements, str) else tuple(elements)
        formulas = Formulas.range(names, 0, max_atoms + 1)
    return formulas.trim(min_atoms, max_atoms)


@fr.atomic("formulas")
def formulas_from(compositions: list[dict[str, int]]) -> Formulas:
    """``Formulas`` from explicit compositions, e.g. ``[{"Cu": 1, "Ag": 3}]``."""
    return Formulas(compositions)


@fr.atomic("formulas")
def formulas_concat(first: Formulas, second: Formulas) -> Formulas:
    """``first + second``: the compositions of both, in order."""
    return first + second


@fr.atomic("formulas")
def formulas_pair(first: Formulas, second: Formulas) -> Formulas:
    """``first | second``: item-by-item union of disjoint element sets."""
    return first | second


@fr.atomic("formulas")
def formulas_product(first: Formulas, second: Formulas) -> Formulas:
    """``first * second``: every composition of one with every one of the other."""
    return first * second


@fr.atomic("formulas")
def formulas_trim(formulas: Formulas, min_atoms: int = 1, max_atoms: int | None = None) -> Formulas:
    """Only compositions with ``min_atoms`` to ``max_atoms`` atoms."""
    return formulas.trim(min_atoms, max_atoms)


@fr.atomic("settings")
def with_calculator(
    settings: Relax | None,
    calculator: CalculatorConfig | None = None,
    default: CalculatorConfig | None = None,
) -> Relax | None:
    """``settings`` relaxing with ``calculator`` (see
    :func:`assyst_nodes.stages.relax.with_calculator`): ``None`` keeps the settings' own, a
    different one given both ways is a ``ValueError`` naming both, ``default`` serves settings
    that name none. ``settings=None`` (a skipped relaxation) stays ``None``."""
    if settings is None:
        return None
    return relaxations.with_calculator(settings, calculator, default)


@fr.atomic("settings")
def run_relax_settings(
    settings: Relax | None, calculator: CalculatorConfig | None = None
) -> Relax | None:
    """The relax settings of the canonical run: :func:`with_calculator` with the run's
    default calculator (:data:`assyst_nodes.defaults.CALCULATOR`, EMT) for settings that name
    none."""
    return with_calculator(settings, calculator, CALCULATOR)


@fr.atomic("perturbation")
def series(first: Perturbation, second: Perturbation) -> Perturbation:
    """``first + second``: apply ``first``, then ``second`` to its result."""
    return first + second


@fr.atomic("perturbations")
def perturbation_list(
    first: Perturbation,
    second: Perturbation | None = None,
    third: Perturbation | None = None,
    fourth: Perturbation | None = None,
) -> list[Perturbation]:
    """The given perturbations as a list (``None`` left out); each is applied separately."""
    return [p for p in (first, second, third, fourth) if p is not None]


@fr.atomic("perturbations")
def perturbations_or_default(
    perturbations: list[Perturbation] | tuple[Perturbation, ...] | None = None,
) -> list[Perturbation]:
    """``perturbations`` as a list, or the canonical run's two when ``None``: a 0.1 Å rattle
    (one-atom cells first repeated to 8 atoms) on a 5 % strain, and a random choice of a large
    volume change (80 %) or a large shear (20 %)."""
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

    ``filters=None``: minimum distances (``radii`` in Å, pair limit r_i + r_j) and cells no
    more elongated than ``max_aspect`` (:func:`assyst_nodes.defaults.canonical_filter`); else
    ``filters`` as given (``radii`` and ``max_aspect`` unused). ``tolerance`` (``None``: the
    ``DistanceFilter`` inside the filter, else pyxtal's ``"metallic"`` table) bounds the
    sampling, so crystals are drawn with the same radii the filter keeps."""
    if filters is None:
        filters = canonical_filter(dict(radii) if isinstance(radii, tuple) else radii, max_aspect)
    if tolerance is None:
        tolerance = distance_filter_of(filters) or "metallic"
    return tolerance, filters


@fr.atomic("executor")
def executor_or(specific: ExecutorLike = None, default: ExecutorLike = None) -> ExecutorLike:
    """``specific`` (a stage's own executor) if given, else ``default`` (the run's)."""
    return default if specific is None else specific
