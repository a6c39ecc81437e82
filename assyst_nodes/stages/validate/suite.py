"""The held-out validation suite: which structures and properties it holds, and how they are built.

:class:`Suite` is *what* is computed (a frozen dataclass); the builders here make the crystals
of the suite from a prototype at unit lattice parameter, scaled to a volume per atom.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, NamedTuple

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii, reference_states

__all__ = [
    "COMPOUNDS",
    "CUBIC",
    "LIQUID_EXPANSION",
    "PHASES",
    "Subject",
    "Suite",
]

PHASES: Final[tuple[str, ...]] = ("fcc", "bcc", "hcp", "sc", "diamond")
"""The phases of one element the suite can hold (hcp at the ideal c/a = (8/3)^(1/2))."""

CUBIC: Final[tuple[str, ...]] = ("fcc", "bcc", "sc", "diamond")
"""The cubic phases, among which each element's ground state (elastic constants, phonons,
vacancy, MD lattice) is chosen."""

COMPOUNDS: Final[tuple[str, ...]] = ("L1_2", "L1_0", "B2")
"""The ordered compounds of a pair of elements the suite can hold: L1_2 as A3B and AB3,
L1_0 (ideal c/a = 1) and B2 as AB."""

LIQUID_EXPANSION: Final[float] = 1.10
"""Volume of the liquid MD cell over that of the solid one (the liquid is less dense)."""

_BAND_PATHS: Final[dict[str, str]] = {
    "fcc": "GXWKGL",
    "diamond": "GXWKGL",
    "bcc": "GHNGPH",
    "sc": "GXMGRX",
}
"""High-symmetry paths of the phonon bands (ASE's names of the special points)."""

_PACKING: Final[dict[str, float]] = {
    "fcc": 1.0, "hcp": 1.0, "bcc": 1.03, "sc": 1.25, "diamond": 1.6,
    "L1_2": 1.0, "L1_0": 1.0, "B2": 1.03,
}
"""First guess of a structure's volume per atom over the fcc one of the same atoms."""


class Subject(NamedTuple):
    """One crystal of the suite whose E-V curve is computed.

    Parameters
    ----------
    label : str
        ``"<structure>:<formula>"``, e.g. ``"fcc:Cu"`` or ``"L1_2:Cu3Ag"``.
    structure : str
        One of :data:`PHASES` or :data:`COMPOUNDS`.
    symbols : tuple of str
        For a phase, its element; for a compound ``(A, B)`` in the order of ``Suite.elements``
        (``"L1_2:Cu3Ag"`` is ``("Cu", "Ag")`` with three Cu per Ag; ``"L1_2:CuAg3"`` is
        ``("Ag", "Cu")``).
    near : bool
        Whether the crystal is in the near domain (an element's fcc phase).
    """

    label: str
    structure: str
    symbols: tuple[str, ...]
    near: bool


def _check_int(name: str, value: object, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Suite.{name} must be an int {what}, got {value!r}")
    if value < minimum:
        raise ValueError(f"Suite.{name} must be {what}, got {value!r}")
    return int(value)


def _check_float(name: str, value: object, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Suite.{name} must be a number {what}, got {value!r}")
    if not (math.isfinite(value) and low < value < high):
        raise ValueError(f"Suite.{name} must be {what}, got {value!r}")
    return float(value)


def _names(name: str, value: object, valid: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"Suite.{name} must be a tuple of names out of {valid}, got {value!r}")
    bad = [v for v in value if v not in valid]
    if bad:
        raise ValueError(f"Suite.{name}: unknown {bad!r}; valid are {valid}")
    if len(set(value)) != len(value):
        raise ValueError(f"Suite.{name} names one twice: {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Suite:
    """What the validation suite holds (see :func:`~assyst_nodes.stages.validate.reference_suite`).

    The defaults keep the reference suite of a binary with ASE's EMT near 10 s (114
    structures) and one validation of a calculator as cheap as EMT near 1.5 s, on one core.
    The liquid is melted first, for half of ``md_equilibration``, at twice
    ``liquid_temperature``.

    Parameters
    ----------
    elements : tuple of str
        Chemical symbols, e.g. ``("Cu", "Ag")``; at least one, no repeats. A list is taken
        as a tuple.
    phases : tuple of str, default PHASES
        Phases of each element out of :data:`PHASES`; must hold one of :data:`CUBIC` (each
        element's ground state, the lowest in energy of these with the reference calculator,
        carries elastic constants, phonons, vacancy and the MD lattice).
    compounds : tuple of str, default COMPOUNDS
        Compounds of each pair of elements out of :data:`COMPOUNDS` (L1_2 in both
        stoichiometries A3B and AB3); none for a single element.
    volume_range : float, default 0.10
        Half width of the E-V window, as a fraction of the reference's equilibrium volume
        V0: volumes from (1 - range) V0 to (1 + range) V0; in (0, 0.5).
    volume_points : int, default 7
        Volumes in the window, evenly spaced; >= 5 (the Birch-Murnaghan fit has four
        parameters).
    rattle_snapshots : int, default 2
        Rattled fcc cells of each element (where ``phases`` holds fcc): the conventional cell
        at the reference's V0 repeated twice along each axis (32 atoms), every position
        displaced by a normal random vector (seeded); they carry the near domain's forces
        (the E-V structures have none by symmetry). >= 0.
    rattle_amplitude : float, default 0.05
        Standard deviation of each displacement component (Å); in (0, 0.5).
    elastic : bool, default True
        Compute C11, C12, C44 (GPa) of each element's cubic ground state.
    elastic_strain : float, default 0.01
        Largest Lagrangian strain of the five-point energy-strain fits; in (0, 0.1).
    phonons : bool, default True
        Compute phonon bands (THz) of each element's ground state with phonopy.
    phonon_repeat : int, default 2
        The phonon supercell is the conventional cubic cell repeated this often along each
        axis (32 atoms for fcc); >= 1.
    phonon_displacement : float, default 0.01
        Finite displacement of phonopy (Å); in (0, 0.1).
    phonon_points : int, default 40
        q-points on the band path; >= 2.
    vacancy_repeat : int, default 3
        The vacancy cell is the conventional cubic cell repeated this often along each axis
        (3: 108 sites for fcc, 107 atoms); >= 2, or 0 for no vacancy.
    vacancy_steps : int, default 100
        At most this many LBFGS steps relax the vacancy cell's positions (fixed cell); >= 0.
    vacancy_fmax : float, default 0.01
        Force (eV/Å) below which the vacancy relaxation stops; in (0, 1).
    md_atoms : int, default 32
        Fewest atoms of the MD cells (the ground-state lattice of the first element,
        repeated); >= 32.
    md_snapshots : int, default 4
        Snapshots taken of each MD run (solid and liquid); 0 for no MD.
    md_steps : int, default 100
        MD steps between two snapshots; >= 1.
    md_equilibration : int, default 400
        MD steps before the first snapshot; >= 0.
    md_timestep : float, default 2.0
        MD time step (fs); in (0, 10).
    solid_temperature : float, default 300.0
        Temperature of the solid run (K), > 0.
    liquid_temperature : float, default 2500.0
        Temperature of the liquid run (K), > 0: well above the melting point of the
        reference (EMT melts Cu and Ag near 1300 K and 1000 K); the liquid cell has
        :data:`LIQUID_EXPANSION` times the solid's volume.
    seed : int, default 0
        Seed of the random alloy and of the MD (velocities and Langevin noise): the same seed
        gives bit-identical snapshots.

    Raises
    ------
    TypeError
        A field of the wrong type (the message names it and the value).
    ValueError
        An unknown element, phase or compound, or a number out of its range (the message
        names the field, the value and what is valid).
    """

    elements: tuple[str, ...]
    phases: tuple[str, ...] = PHASES
    compounds: tuple[str, ...] = COMPOUNDS
    volume_range: float = 0.10
    volume_points: int = 7
    rattle_snapshots: int = 2
    rattle_amplitude: float = 0.05
    elastic: bool = True
    elastic_strain: float = 0.01
    phonons: bool = True
    phonon_repeat: int = 2
    phonon_displacement: float = 0.01
    phonon_points: int = 40
    vacancy_repeat: int = 3
    vacancy_steps: int = 100
    vacancy_fmax: float = 0.01
    md_atoms: int = 32
    md_snapshots: int = 4
    md_steps: int = 100
    md_equilibration: int = 400
    md_timestep: float = 2.0
    solid_temperature: float = 300.0
    liquid_temperature: float = 2500.0
    seed: int = 0

    def __post_init__(self) -> None:
        elements = self.elements
        if isinstance(elements, str) or not isinstance(elements, list | tuple):
            raise TypeError(f"Suite.elements must be a tuple of symbols, e.g. ('Cu', 'Ag'), "
                            f"got {elements!r}")
        if not elements:
            raise ValueError("Suite.elements must name at least one element, got ()")
        for symbol in elements:
            if not isinstance(symbol, str) or symbol not in atomic_numbers or symbol == "X":
                raise ValueError(f"Suite.elements: {symbol!r} is not a chemical symbol (e.g. 'Cu')")
        if len(set(elements)) != len(elements):
            raise ValueError(f"Suite.elements names an element twice: {elements!r}")
        set_ = object.__setattr__
        set_(self, "elements", tuple(elements))
        set_(self, "phases", _names("phases", self.phases, PHASES))
        if not any(p in CUBIC for p in self.phases):
            raise ValueError(
                f"Suite.phases must hold a cubic phase out of {CUBIC} (the ground state of "
                f"elastic constants, phonons, vacancy, MD), got {self.phases!r}"
            )
        set_(self, "compounds", _names("compounds", self.compounds, COMPOUNDS))
        for name in ("elastic", "phonons"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Suite.{name} must be True or False, got {getattr(self, name)!r}")
        set_(self, "volume_range",
             _check_float("volume_range", self.volume_range, 0, 0.5, "in (0, 0.5)"))
        set_(self, "volume_points", _check_int("volume_points", self.volume_points, 5, ">= 5"))
        set_(self, "rattle_snapshots",
             _check_int("rattle_snapshots", self.rattle_snapshots, 0, ">= 0"))
        set_(self, "rattle_amplitude",
             _check_float("rattle_amplitude", self.rattle_amplitude, 0, 0.5, "in (0, 0.5) Å"))
        set_(self, "elastic_strain",
             _check_float("elastic_strain", self.elastic_strain, 0, 0.1, "in (0, 0.1)"))
        set_(self, "phonon_repeat", _check_int("phonon_repeat", self.phonon_repeat, 1, ">= 1"))
        set_(self, "phonon_displacement", _check_float(
            "phonon_displacement", self.phonon_displacement, 0, 0.1, "in (0, 0.1) Å"))
        set_(self, "phonon_points", _check_int("phonon_points", self.phonon_points, 2, ">= 2"))
        repeat = _check_int("vacancy_repeat", self.vacancy_repeat, 0, ">= 2, or 0 for none")
        if repeat == 1:
            raise ValueError(f"Suite.vacancy_repeat must be >= 2, or 0 for none, got {repeat!r}")
        set_(self, "vacancy_repeat", repeat)
        set_(self, "vacancy_steps", _check_int("vacancy_steps", self.vacancy_steps, 0, ">= 0"))
        set_(self, "vacancy_fmax",
             _check_float("vacancy_fmax", self.vacancy_fmax, 0, 1, "in (0, 1) eV/Å"))
        set_(self, "md_atoms", _check_int("md_atoms", self.md_atoms, 32, ">= 32"))
        set_(self, "md_snapshots", _check_int("md_snapshots", self.md_snapshots, 0, ">= 0"))
        set_(self, "md_steps", _check_int("md_steps", self.md_steps, 1, ">= 1"))
        set_(self, "md_equilibration",
             _check_int("md_equilibration", self.md_equilibration, 0, ">= 0"))
        set_(self, "md_timestep",
             _check_float("md_timestep", self.md_timestep, 0, 10, "in (0, 10) fs"))
        for name in ("solid_temperature", "liquid_temperature"):
            set_(self, name, _check_float(name, getattr(self, name), 0, math.inf, "> 0 K"))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"Suite.seed must be an int, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"Suite.seed must be >= 0, got {self.seed!r}")
        set_(self, "seed", int(self.seed))

    def __str__(self) -> str:
        parts = [
            f"{len(self.phases)} phases",
            f"{len(self.pairs()) * len(self.compounds)} compound kinds" if self.pairs() else "",
            f"E-V ±{self.volume_range:.0%} x {self.volume_points}",
            f"rattled fcc x {self.rattle_snapshots}" if self.rattle_snapshots else "",
            "elastic" if self.elastic else "",
            "phonons" if self.phonons else "",
            f"vacancy {self.vacancy_repeat}^3" if self.vacancy_repeat else "",
            f"md {self.md_snapshots} x 2 snapshots >= {self.md_atoms} atoms"
            if self.md_snapshots else "",
            f"seed={self.seed}",
        ]
        return f"suite({'-'.join(self.elements)}: {', '.join(p for p in parts if p)})"

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs of elements whose compounds the suite holds.

        Returns
        -------
        list of tuple of str
            ``(A, B)`` for each pair, in the order of :attr:`elements`.
        """
        return [(a, b) for i, a in enumerate(self.elements) for b in self.elements[i + 1:]]

    def subjects(self) -> list[Subject]:
        """The crystals whose E-V curves the suite holds: the phases, then the compounds.

        Returns
        -------
        list of Subject
            Each element's phases in the order of :attr:`phases`, then per pair the
            compounds (L1_2 as A3B and AB3).
        """
        out = [Subject(f"{p}:{e}", p, (e,), p == "fcc") for e in self.elements for p in self.phases]
        for a, b in self.pairs():
            for compound in self.compounds:
                if compound == "L1_2":
                    out.append(Subject(f"L1_2:{a}3{b}", compound, (a, b), False))
                    out.append(Subject(f"L1_2:{a}{b}3", compound, (b, a), False))
                else:
                    out.append(Subject(f"{compound}:{a}{b}", compound, (a, b), False))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-able types (tuples become lists).

        Returns
        -------
        dict
            Field name to value; ``Suite(**d)`` gives the suite back.
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suite:
        """The suite of :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            As :meth:`to_dict` gives it; unknown keys raise ``TypeError``.

        Returns
        -------
        Suite
            Equal to the suite that gave ``data``.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"Suite.from_dict: unknown fields {unknown}; valid are {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# ---------------------------------------------------------------------------------------------
# builders


def prototype(structure: str, symbols: tuple[str, ...]) -> Atoms:
    """The crystal ``structure`` of ``symbols`` at unit lattice parameter (periodic).

    Phases are primitive cells (hcp at ideal c/a); compounds are their cubic cells
    (L1_2: ``symbols[1]`` at the corner, ``symbols[0]`` on the faces; L1_0 with c/a = 1;
    B2).
    """
    if structure in PHASES:
        if structure == "hcp":
            return bulk(symbols[0], "hcp", a=1.0, c=math.sqrt(8 / 3))
        return bulk(symbols[0], structure, a=1.0)
    a, b = symbols
    if structure == "L1_2":
        names, positions = [b, a, a, a], [(0, 0, 0), (0, .5, .5), (.5, 0, .5), (.5, .5, 0)]
    elif structure == "L1_0":
        names, positions = [a, a, b, b], [(0, 0, 0), (.5, .5, 0), (.5, 0, .5), (0, .5, .5)]
    elif structure == "B2":
        names, positions = [a, b], [(0, 0, 0), (.5, .5, .5)]
    else:  # pragma: no cover - Suite checks the names
        raise ValueError(f"unknown structure {structure!r}")
    return Atoms(names, scaled_positions=positions, cell=np.eye(3), pbc=True)


def at_volume(atoms: Atoms, volume: float) -> Atoms:
    """A copy of ``atoms`` scaled uniformly to ``volume`` per atom (Å^3/atom)."""
    out = atoms.copy()
    factor = (volume * len(atoms) / atoms.get_volume()) ** (1 / 3)
    out.set_cell(atoms.cell[:] * factor, scale_atoms=True)
    return out


def cubic_cell(element: str, phase: str, volume: float) -> Atoms:
    """The conventional cubic cell of ``phase`` (one of :data:`CUBIC`) at ``volume`` per atom."""
    sites = {"fcc": 4, "bcc": 2, "sc": 1, "diamond": 8}[phase]
    return bulk(element, phase, a=(volume * sites) ** (1 / 3), cubic=True)


def primitive_cell(element: str, phase: str, volume: float) -> Atoms:
    """The primitive cell of ``phase`` (one of :data:`CUBIC`) at ``volume`` per atom."""
    return at_volume(bulk(element, phase, a=1.0), volume)


def band_path(phase: str) -> str:
    """The high-symmetry path of the phonon bands of a cubic ``phase`` (ASE point names)."""
    return _BAND_PATHS[phase]


def volume_guess(subject: Subject) -> float:
    """A first guess of a crystal's volume per atom (Å^3/atom) from ASE's reference states.

    The fcc volume of each element (from its reference lattice, else from covalent radii),
    averaged over the composition, times a packing factor of the structure.
    """
    proto = prototype(subject.structure, subject.symbols)
    volumes = [_fcc_volume(s) for s in proto.get_chemical_symbols()]
    return float(np.mean(volumes)) * _PACKING[subject.structure]


def _fcc_volume(symbol: str) -> float:
    state = reference_states[atomic_numbers[symbol]] or {}
    kind, a = state.get("symmetry"), state.get("a")
    if kind == "fcc" and a:
        return a**3 / 4
    if kind == "bcc" and a:
        return a**3 / 2 / 1.03
    if kind == "hcp" and a:
        return math.sqrt(3) / 2 * a**2 * state.get("c/a", 1.633) * a / 2
    nearest = 2 * covalent_radii[atomic_numbers[symbol]]
    return nearest**3 / math.sqrt(2)
