"""Equivalent structures: found before labelling, so that each is labelled (paid for) once.

Two structures are equivalent when pymatgen's ``StructureMatcher`` maps one onto the other
within :class:`Duplicates`' tolerances, after reducing both to their primitive Niggli cells
(symmetry-aware: another origin, another setting of the cell, a supercell or another order of
the atoms is the same structure). A fully relaxed fcc crystal reached from five seed crystals
is one structure; a rattled or strained copy is not.

The verdicts are those of ``StructureMatcher.group_structures`` with one change: the primitive
cell is found within the site tolerance, not within pymatgen's fixed 0.25 Å, which reduces a
cell rattled by up to ~0.1 Å to the unrattled primitive cell and so calls the rattle a
duplicate. They are found faster (``benchmarks/deduplicate.py`` compares both on the canonical
Cu-Ag run): each structure is reduced once, and only structures of one composition whose
volumes per atom lie within a window that the length tolerance implies are compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ase import Atoms

from ..lineage import SEED, UUID

__all__ = ["Duplicates", "duplicate_groups", "families"]


def _fraction(name: str, value: object, upper: float) -> float:
    """``value`` as a float in (0, upper), else a ``TypeError``/``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Duplicates.{name} must be a number, got {value!r}")
    if not math.isfinite(value) or not 0 < value < upper:
        raise ValueError(f"Duplicates.{name} must be in (0, {upper:g}), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Duplicates:
    """When two structures count as one: the tolerances of pymatgen's ``StructureMatcher``.

    ``str()`` is ``duplicates(length=0.001, site=0.01, angle=0.05)``. Tight by default, so
    that duplicates carry the same label: a structure rattled by more than ~0.02 Å or strained
    by more than 0.1 % is not a duplicate of its parent, while crystals relaxed to the same
    minimum from different seeds are (their lattices agree to ~1e-4). Measured on the canonical
    Cu-Ag run with EMT (``benchmarks/deduplicate.py``): the energies within a group agree to
    0.03 meV/atom; at 1 % of the lengths (pymatgen's usual 0.2 is far looser still) sampled and
    volume-relaxed crystals 3 % apart in volume joined, up to 37 meV/atom apart.

    Parameters
    ----------
    length_tolerance : float, default 0.001
        Largest relative difference of the reduced lattices' lengths (``ltol``), in (0, 1).
    site_tolerance : float, default 0.01
        Largest distance between matched atoms (``stol``) in units of (volume per atom)^(1/3)
        (e.g. 0.01 is ~0.023 Å for Cu), in (0, 1); also the tolerance (in the same units) of
        the search for the primitive cell.
    angle_tolerance : float, default 0.05
        Largest difference of the lattice angles (degrees), in (0, 90).

    Raises
    ------
    TypeError
        A tolerance that is not a number (the message names it).
    ValueError
        A tolerance out of its range.
    """

    length_tolerance: float = 0.001
    site_tolerance: float = 0.01
    angle_tolerance: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "length_tolerance", _fraction("length_tolerance", self.length_tolerance, 1)
        )
        object.__setattr__(
            self, "site_tolerance", _fraction("site_tolerance", self.site_tolerance, 1)
        )
        object.__setattr__(
            self, "angle_tolerance", _fraction("angle_tolerance", self.angle_tolerance, 90)
        )

    def __str__(self) -> str:
        return (
            f"duplicates(length={self.length_tolerance:g}, site={self.site_tolerance:g}, "
            f"angle={self.angle_tolerance:g})"
        )

    def volume_window(self) -> float:
        """Relative difference of volume per atom beyond which two structures cannot match.

        Returns
        -------
        float
            ``(1 + length_tolerance)^3 * (1 + angle term) - 1`` with a margin: lengths within
            the tolerance change the volume by at most the cube, and the angles by a factor
            below ``1 + 3 * sin(angle_tolerance)``; doubled, so no pair the matcher would
            accept is left out.
        """
        angle = 3 * math.sin(math.radians(self.angle_tolerance))
        return 2 * ((1 + self.length_tolerance) ** 3 * (1 + angle) - 1)


def duplicate_groups(
    structures: Sequence[Atoms], settings: Duplicates = Duplicates()
) -> list[list[int]]:
    """Group equivalent structures (see the module docstring).

    Each structure is compared with the first member of the groups found so far (of its
    composition, within :meth:`Duplicates.volume_window`), in input order, and joins the
    first that matches, as ``StructureMatcher.group_structures`` does. Structures without a
    3D cell are never grouped.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        The structures, e.g. a training set before labelling.
    settings : Duplicates, default Duplicates()
        The tolerances.

    Returns
    -------
    list of list of int
        Indices into ``structures``: every index in exactly one group. Within a group the
        first index is the structure that stands for the others: the one with the fewest atoms
        (the cheapest to label), the earliest of those; groups are ordered by it.

    Raises
    ------
    TypeError
        ``settings`` is not :class:`Duplicates`.
    """
    if not isinstance(settings, Duplicates):
        raise TypeError(f"settings must be Duplicates(...), got {settings!r}")
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    matcher = StructureMatcher(
        ltol=settings.length_tolerance,
        stol=settings.site_tolerance,
        angle_tol=settings.angle_tolerance,
        primitive_cell=True,
        scale=False,
        attempt_supercell=False,
    )
    window = settings.volume_window()
    candidates: dict[str, list[tuple[float, int, object]]] = {}
    groups: list[list[int]] = []
    for index, atoms in enumerate(structures):
        if len(atoms) == 0 or not atoms.pbc.all() or atoms.cell.rank < 3:
            groups.append([index])
            continue
        structure = AseAtomsAdaptor.get_structure(atoms)
        volume = structure.volume / len(structure)
        # the primitive cell within the site tolerance (pymatgen's matcher takes 0.25 Å, so a
        # cell rattled by 0.1 Å would reduce to, and match, its unrattled primitive cell)
        primitive = structure.get_primitive_structure(
            tolerance=settings.site_tolerance * volume ** (1 / 3)
        )
        reduced = primitive.get_reduced_structure("niggli")
        composition = structure.composition.reduced_formula
        joined = None
        for other_volume, group, other in candidates.get(composition, []):
            if abs(other_volume - volume) <= window * min(other_volume, volume) and matcher.fit(
                other, reduced, skip_structure_reduction=True
            ):
                joined = group
                break
        if joined is None:
            candidates.setdefault(composition, []).append((volume, len(groups), reduced))
            groups.append([index])
        else:
            groups[joined].append(index)
    for group in groups:
        kept = min(group, key=lambda i: (len(structures[i]), i))
        group.remove(kept)
        group.insert(0, kept)
    return sorted(groups, key=lambda group: group[0])


def families(structures: Sequence[Atoms], groups: Sequence[Sequence[int]]) -> list[str]:
    """The family of each structure: its seed crystal, merged across duplicate groups.

    Two structures are of one family when they share a seed crystal (``info["seed"]``), or
    when a duplicate group holds structures of both families (fcc Ag relaxed from five seed
    crystals makes the five one family), transitively. A family is named by the smallest
    seed uuid in it, so the name does not depend on the order of the structures.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        The structures; one without a ``seed`` is its own seed (its ``uuid``, else its index).
    groups : sequence of sequence of int
        Groups of equivalent structures, e.g. of :func:`duplicate_groups`.

    Returns
    -------
    list of str
        The family of each structure, in input order.
    """
    seeds = [
        str(a.info.get(SEED) or a.info.get(UUID) or f"structure {i}")
        for i, a in enumerate(structures)
    ]
    parent = {seed: seed for seed in seeds}

    def root(seed: str) -> str:
        while parent[seed] != seed:
            parent[seed] = parent[parent[seed]]
            seed = parent[seed]
        return seed

    for group in groups:
        first = root(seeds[group[0]])
        for index in group[1:]:
            other = root(seeds[index])
            if other != first:
                low, high = sorted((first, other))
                parent[high] = low
                first = low
    return [root(seed) for seed in seeds]
