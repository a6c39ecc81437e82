"""The defaults of the canonical ASSYST run, stated once.

The macro :func:`assyst_nodes.nodes.assyst`, the function
:func:`assyst_nodes.pipeline.run_pipeline` and the command ``assyst-nodes run`` (through
:class:`assyst_nodes.cli.settings.RunSettings`) take their defaults from here; a test compares
the three signatures and ``--help`` with these values. The embedded example is a Cu-Ag binary
with up to 4 atoms per cell, relaxed with ASE's EMT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from .calculators import EMT, CalculatorConfig
from .stages.duplicates import Duplicates
from .stages.filter import AspectFilter, DistanceFilter, FilterBase
from .stages.isolated import IsolatedAtoms
from .stages.perturb import PerturbationLike, RandomChoice, Rattle, Stretch
from .stages.relax import FullRelax, Relax, VolumeRelax
from .stages.split import Split

__all__ = [
    "CALCULATOR",
    "DUPLICATES",
    "ELEMENTS",
    "FILTER",
    "FULL_RELAX",
    "ISOLATED_ATOMS",
    "LARGE_STRAIN",
    "MAX_ASPECT",
    "MAX_ATOMS",
    "MAX_STRUCTURES",
    "MIN_ATOMS",
    "PERTURBATIONS",
    "RADII",
    "RATTLE",
    "RETRIES",
    "SEED",
    "STRAIN",
    "SUPERCELLS",
    "VOLUME_RELAX",
    "WORKERS",
    "canonical_filter",
    "canonical_perturbations",
]

ELEMENTS: Final[tuple[str, ...]] = ("Cu", "Ag")
"""The elements of the embedded example."""

MIN_ATOMS: Final = 1
"""Atoms per cell at least."""

MAX_ATOMS: Final = 4
"""Atoms per cell at most."""

MAX_STRUCTURES: Final = 30
"""Sampled crystals at most (``None`` in a call: no cap)."""

SEED: Final = 0
"""Base seed of every random choice."""

WORKERS: Final = 1
"""Local processes that sample, relax and label."""

CALCULATOR: Final[CalculatorConfig] = EMT()
"""The calculator of a relaxation whose settings name none and to which the run gives none."""

VOLUME_RELAX: Final[Relax] = VolumeRelax()
"""The first relaxation: the volume only (100 steps at most, forces below 1e-3 eV/Å)."""

FULL_RELAX: Final[Relax] = FullRelax()
"""The second relaxation: cell and positions."""

RATTLE: Final = 0.1
"""Standard deviation σ (Å) of the rattle of every atom."""

STRAIN: Final[tuple[float, float]] = (0.05, 0.05)
"""The small strain (hydrostatic, shear), fractions, under the rattle."""

LARGE_STRAIN: Final[tuple[float, float]] = (0.8, 0.2)
"""The large strain (hydrostatic, shear), fractions: one of the two, drawn at random."""

SUPERCELLS: Final = True
"""Whether one-atom cells are repeated to 8 atoms before they are rattled."""

RETRIES: Final = 10
"""Draws of one perturbation at most until its result passes the filter."""

RADII: Final[Mapping[str, float]] = MappingProxyType({"Cu": 0.9, "Ag": 1.0})
"""Minimum-distance radii (Å): pairs closer than r_i + r_j (1.8 Å Cu-Cu, 2.0 Å Ag-Ag) are
neither sampled nor kept."""

MAX_ASPECT: Final = 6.0
"""Cells more elongated than this (ratio of the longest to the shortest cell height) are
dropped."""

DUPLICATES: Final[Duplicates] = Duplicates()
"""When two structures of the training set count as one, so only one is labelled: pymatgen's
``StructureMatcher`` within 0.1 % of the lengths, 0.01 (V/n)^(1/3) of the sites and 0.05°."""

ISOLATED_ATOMS: Final[IsolatedAtoms] = IsolatedAtoms()
"""The isolated atoms labelled beside the training set: one atom in a 12 Å periodic cubic box,
spin-polarised (Hund's-rule initial moment)."""

FIT_SPLIT: Final[Split] = Split(0.9, 0.1, 0.0)
"""The family split of the fit stage: 90 % of the families fitted, 10 % held out for the
validation errors (whole seed crystals, so no rattled copy of a fitted structure is among
them)."""

FIT_DIRECTORY: Final[str] = "fit"
"""Folder of the potential file and the fitting code's logs, without a project."""


def canonical_perturbations(
    rattle: float = RATTLE,
    strain: tuple[float, float] = STRAIN,
    large_strain: tuple[float, float] = LARGE_STRAIN,
    supercells: bool = SUPERCELLS,
) -> tuple[PerturbationLike, ...]:
    """The two perturbations of the canonical run, each applied once to every relaxed
    structure.

    Parameters
    ----------
    rattle : float, default 0.1
        Standard deviation σ (Å) of the rattle of every atom; default :data:`RATTLE`.
    strain : tuple of float, default (0.05, 0.05)
        The small strain (hydrostatic, shear) under the rattle, fractions; default
        :data:`STRAIN`.
    large_strain : tuple of float, default (0.8, 0.2)
        The large (hydrostatic, shear) strain, fractions; the second perturbation draws either
        a large volume change on the small shear or a large shear on the small volume change,
        with equal chance. Default :data:`LARGE_STRAIN`.
    supercells : bool, default True
        Whether one-atom cells are repeated to 8 atoms before they are rattled; default
        :data:`SUPERCELLS`.

    Returns
    -------
    tuple of PerturbationLike
        ``(rattle + small strain, RandomChoice(large volume change, large shear))``.
    """
    hydro, shear = strain
    large_hydro, large_shear = large_strain
    return (
        Rattle(rattle, create_supercells=supercells) + Stretch(hydro=hydro, shear=shear),
        RandomChoice(
            Stretch(hydro=large_hydro, shear=shear), Stretch(hydro=hydro, shear=large_shear), 0.5
        ),
    )


def canonical_filter(
    radii: float | Mapping[str, float] | Iterable[tuple[str, float]] = RADII,
    max_aspect: float = MAX_ASPECT,
) -> FilterBase:
    """The filter of the canonical run: minimum distances and cell aspect.

    Parameters
    ----------
    radii : float, mapping of str to float or (element, radius) pairs, default RADII
        Minimum-distance radii (Å), one for every element or one per element: pairs closer
        than r_i + r_j are rejected; default :data:`RADII` (Cu 0.9 Å, Ag 1.0 Å).
    max_aspect : float, default 6.0
        The most elongated cell kept (ratio of the longest to the shortest cell height);
        default :data:`MAX_ASPECT`.

    Returns
    -------
    FilterBase
        ``DistanceFilter(radii) & AspectFilter(max_aspect, measure="heights")``.
    """
    radii = radii if isinstance(radii, float | int) else dict(radii)
    return DistanceFilter(radii) & AspectFilter(max_aspect, measure="heights")


PERTURBATIONS: Final[tuple[PerturbationLike, ...]] = canonical_perturbations()
"""The perturbations of the embedded example: a small rattle (σ = 0.1 Å; one-atom cells are
first repeated to 8 atoms) on a small strain, and either a large volume change or a large
shear."""

FILTER: Final[FilterBase] = canonical_filter()
"""The filter of the embedded example: minimum distances and cells no more elongated than
6:1."""
