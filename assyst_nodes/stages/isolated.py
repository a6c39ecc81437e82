"""Isolated atoms: one atom of each element in a large box, to be labelled like any structure.

Their energies, computed with the label calculator and its settings, are what fitting codes
subtract from each structure's energy before fitting (MACE's ``E0s``, pacemaker's
``reference_energy``); :func:`~assyst_nodes.stages.label.label` labels them beside the
training set, so both come from the same calculator, are stored and reused alike, and the
exports (:mod:`assyst_nodes.io.fitting`) carry them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ase import Atoms
from ase.data import atomic_numbers, ground_state_magnetic_moments

from ..lineage import SEED, STEP, UUID, derive_uuid

__all__ = ["CONFIG_TYPE", "ISOLATED_ATOM", "IsolatedAtoms", "isolated_atoms"]

CONFIG_TYPE: Final[str] = "config_type"
"""``Atoms.info`` key of a structure's origin, as fitting codes read it (MACE, NequIP)."""

ISOLATED_ATOM: Final[str] = "IsolatedAtom"
"""The ``config_type`` of an isolated atom: the name MACE looks for to take its ``E0s``."""


@dataclass(frozen=True)
class IsolatedAtoms:
    """How isolated atoms are built: one atom in the middle of a periodic cubic box.

    ``str()`` is the step name of the built atoms, ``isolated_atom(box=12.0)`` (with
    ``, spin_polarized=False`` where set).

    Parameters
    ----------
    box : float, default 12.0
        Edge of the cubic box (Å), large enough that the atom does not see its periodic
        images: beyond the cutoff of the potentials and classical calculators, and a common
        choice for plane-wave DFT (converge it for your code: the energy must not change with
        the box). A finite number > 0.
    spin_polarized : bool, default True
        Start from the atom's ground-state magnetic moment (Hund's rule, ASE's
        ``ground_state_magnetic_moments``; e.g. 1 μB for Cu and Ag) as its initial magnetic
        moment, so DFT codes that take initial moments (GPAW, VASP with ``ISPIN=2``) compute
        the spin-polarised atom, the reference of cohesive energies. Calculators without spin
        (EMT, MLIPs) ignore it. ``False``: no initial moment.

    Raises
    ------
    TypeError
        ``box`` not a number or ``spin_polarized`` not a bool (the message names the value).
    ValueError
        ``box`` not finite or <= 0.
    """

    box: float = 12.0
    spin_polarized: bool = True

    def __post_init__(self) -> None:
        box = self.box
        if isinstance(box, bool) or not isinstance(box, int | float):
            raise TypeError(f"IsolatedAtoms.box must be a number of Å, got {box!r}")
        if not math.isfinite(box) or box <= 0:
            raise ValueError(f"IsolatedAtoms.box must be a finite length > 0 Å, got {box!r}")
        if not isinstance(self.spin_polarized, bool):
            raise TypeError(
                f"IsolatedAtoms.spin_polarized must be True or False, got {self.spin_polarized!r}"
            )
        object.__setattr__(self, "box", float(box))

    def __str__(self) -> str:
        spin = "" if self.spin_polarized else ", spin_polarized=False"
        return f"isolated_atom(box={self.box:g}{spin})"

    def atom(self, element: str) -> Atoms:
        """The isolated atom of ``element``.

        Parameters
        ----------
        element : str
            A chemical symbol, e.g. ``"Cu"``.

        Returns
        -------
        ase.Atoms
            One atom at the centre of the periodic cubic box, its own ``seed`` with an empty
            ``lineage``, ``step`` ``str(self)``, ``config_type`` :data:`ISOLATED_ATOM` and a
            uuid derived from the element and these settings (the same in every run).

        Raises
        ------
        ValueError
            ``element`` is not a chemical symbol.
        """
        if element not in atomic_numbers or element == "X":
            raise ValueError(f"{element!r} is not a chemical symbol (e.g. 'Cu')")
        half = self.box / 2
        atoms = Atoms(element, positions=[[half, half, half]], cell=[self.box] * 3, pbc=True)
        if self.spin_polarized:
            atoms.set_initial_magnetic_moments(
                [float(ground_state_magnetic_moments[atomic_numbers[element]])]
            )
        uuid = derive_uuid("isolated atom", element, repr(self))
        atoms.info.update(
            {UUID: uuid, SEED: uuid, "lineage": [], STEP: str(self), CONFIG_TYPE: ISOLATED_ATOM}
        )
        return atoms


def isolated_atoms(
    elements: Iterable[str], settings: IsolatedAtoms = IsolatedAtoms()
) -> list[Atoms]:
    """One isolated atom of each element (see :class:`IsolatedAtoms`), sorted by symbol.

    Parameters
    ----------
    elements : iterable of str
        Chemical symbols; repeats count once.
    settings : IsolatedAtoms, default IsolatedAtoms()
        Box (Å) and spin of the atoms.

    Returns
    -------
    list of ase.Atoms
        The atoms, one per element, in alphabetical order of the symbols.

    Raises
    ------
    TypeError
        ``settings`` is not an :class:`IsolatedAtoms` or ``elements`` is a single string.
    ValueError
        A symbol that is not a chemical element.
    """
    if not isinstance(settings, IsolatedAtoms):
        raise TypeError(f"settings must be IsolatedAtoms(box=..., ...), got {settings!r}")
    if isinstance(elements, str):
        raise TypeError(f"elements must be a list of symbols (['Cu', 'Ag']), got {elements!r}")
    return [settings.atom(element) for element in sorted(set(elements))]
