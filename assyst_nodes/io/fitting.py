"""Training sets in the formats fitting codes read: extended XYZ with reference keys (MACE,
NequIP, ...), and the pandas pickle of pacemaker (ACE, GRACE).

The labels are the results of each structure's calculator, e.g. the single points of the label
stage with a DFT code: energy (eV), forces (eV/Å), stress (eV/Å³). Which energy is written is
selectable: by default ``free_energy``, the one whose derivatives the forces are (under
electronic smearing the two differ; codes without smearing give equal ones). Each frame keeps
its origin (``config_type``), family and provenance; its weight comes from
:class:`~assyst_nodes.stages.weights.Weights`. Isolated atoms (``config_type``
``IsolatedAtom``, labelled beside the set by :func:`~assyst_nodes.stages.label.label`) give
the reference energies: MACE reads them as frames, pacemaker's table subtracts them.

Left out, and counted: structures without a finite energy and forces (their label failed, or
they were never labelled), and structures beyond the limits of the weights (weight 0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

from ..lineage import UUID
from ..stages.isolated import CONFIG_TYPE, ISOLATED_ATOM
from ..stages.label import FAMILY
from ..stages.split import PARTS, Split, split
from ..stages.weights import Weights, energy_of, weigh
from .extxyz import extxyz_ready

__all__ = [
    "CONFIG_WEIGHT",
    "PACEMAKER_COLUMNS",
    "Prepared",
    "Written",
    "labelled",
    "part_path",
    "prepare_labelled",
    "reference_energies",
    "write_labelled_extxyz",
    "write_pacemaker",
    "write_prepared_extxyz",
    "write_split",
]

CONFIG_WEIGHT: Final[str] = "config_weight"
"""The extxyz key of a frame's weight (MACE's name)."""

PACEMAKER_COLUMNS: Final[tuple[str, ...]] = (
    "ase_atoms",
    "energy",
    "forces",
    "stress",
    "energy_corrected",
    "w_energy",
    "w_forces",
    "config_type",
    "family",
    "uuid",
)
"""The columns of pacemaker's table, in order."""

EnergyKind = Literal["free_energy", "energy"]


@dataclass(frozen=True)
class Written:
    """What a writer wrote.

    Parameters
    ----------
    path : pathlib.Path or None
        The file, ``None`` where nothing was written (an empty part of a split).
    structures : int
        Frames (extxyz, isolated atoms included) or rows (pacemaker) written.
    unlabelled : int, default 0
        Structures left out for lack of a finite energy and forces.
    extreme : int, default 0
        Structures left out by the limits of the weights (energy above the hull, force).
    reference_energies : dict of str to float, optional
        The energy of one isolated atom of each element (eV) that the file carries or used.
        Default: none (empty).
    """

    path: Path | None
    structures: int
    unlabelled: int = 0
    extreme: int = 0
    reference_energies: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: what was written where, and what was left out.

        Returns
        -------
        str
            E.g. ``"164 structures written to x.extxyz (2 without labels left out)"``.
        """
        where = f"written to {self.path}" if self.path else "(nothing written: an empty part)"
        notes = []
        if self.unlabelled:
            notes.append(f"{self.unlabelled} without labels left out")
        if self.extreme:
            notes.append(f"{self.extreme} beyond the weights' limits left out")
        tail = f" ({'; '.join(notes)})" if notes else ""
        return f"{self.structures} structures {where}{tail}"


def labelled(structures: Iterable[Atoms]) -> tuple[list[Atoms], int]:
    """The structures with a finite energy and forces, and how many were left out.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Structures whose calculator results (``atoms.calc.results``) may hold ``energy`` (eV)
        and ``forces`` (eV/Å).

    Returns
    -------
    kept : list of ase.Atoms
        The structures with a finite energy and all forces finite, in order.
    left_out : int
        How many had no calculator, no energy or forces, or a non-finite value.
    """
    kept, left_out = [], 0
    for atoms in structures:
        results = getattr(atoms.calc, "results", {}) or {}
        energy, forces = results.get("energy"), results.get("forces")
        if (
            energy is None
            or forces is None
            or not np.isfinite(energy)
            or not np.all(np.isfinite(forces))
        ):
            left_out += 1
            continue
        kept.append(atoms)
    return kept, left_out


def reference_energies(
    structures: Iterable[Atoms], energy: EnergyKind = "free_energy"
) -> dict[str, float]:
    """The energy of one isolated atom of each element, from the isolated atoms among
    ``structures`` (``config_type`` ``IsolatedAtom``).

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Labelled structures, e.g. the output of :func:`~assyst_nodes.stages.label.label`.
    energy : {"free_energy", "energy"}, default "free_energy"
        Which energy (see :func:`~assyst_nodes.stages.weights.energy_of`).

    Returns
    -------
    dict of str to float
        Element to energy (eV), sorted by element; empty without isolated atoms.

    Raises
    ------
    ValueError
        Two isolated atoms of one element with energies more than 1 meV apart (e.g. labelled
        with two calculators or boxes): which one is meant cannot be told.
    """
    found: dict[str, float] = {}
    for atoms in structures:
        if atoms.info.get(CONFIG_TYPE) != ISOLATED_ATOM or len(atoms) != 1:
            continue
        value = energy_of(atoms, energy)
        if not math.isfinite(value):
            continue
        element = atoms.get_chemical_symbols()[0]
        if element in found and abs(found[element] - value) > 1e-3:
            raise ValueError(
                f"two isolated {element} atoms with energies {found[element]!r} and {value!r} "
                "eV: export the structures of one label calculator (e.g. --stage and --step, "
                "or one project folder), or give the reference energies"
            )
        found.setdefault(element, value)
    return dict(sorted(found.items()))


@dataclass
class Prepared:
    """The labelled structures to write or fit, with their weights, and what was left out.

    Parameters
    ----------
    structures : list of ase.Atoms
        The labelled structures of weight > 0, isolated atoms included.
    weights : numpy.ndarray
        Shape (len(structures),): the weight of each (see
        :class:`~assyst_nodes.stages.weights.Weights`).
    unlabelled : int
        Structures left out without a label.
    extreme : int
        Structures left out by the weights' limits (weight 0).
    references : dict of str to float
        Energy of one isolated atom of each element (eV).
    """

    structures: list[Atoms]
    weights: np.ndarray
    unlabelled: int
    extreme: int
    references: dict[str, float]


def prepare_labelled(
    structures: Iterable[Atoms],
    energy: EnergyKind,
    weights: Weights | None,
    references: Mapping[str, float] | None = None,
) -> Prepared:
    """The labelled ``structures``, weighed, those of weight 0 left out.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        Structures with calculator results (those without are counted, not kept).
    energy : {"free_energy", "energy"}
        The energy the weights' limits use.
    weights : Weights or None
        The weights and limits; ``None``: every structure weighs 1.
    references : mapping of str to float, optional
        Reference energies (eV) to use; default: those of the isolated atoms among
        ``structures``.

    Returns
    -------
    Prepared
        The kept structures, their weights and what was left out.
    """
    kept, unlabelled = labelled(structures)
    values = np.ones(len(kept)) if weights is None else weigh(kept, weights, energy)
    chosen = [atoms for atoms, w in zip(kept, values, strict=True) if w > 0]
    return Prepared(
        chosen,
        values[values > 0],
        unlabelled,
        int(np.sum(values <= 0)),
        reference_energies(kept, energy) if references is None else dict(references),
    )


def _check_prefix(prefix: str) -> None:
    """A ``ValueError`` unless ``prefix`` is a valid key prefix."""
    if not isinstance(prefix, str) or not prefix.isidentifier():
        raise ValueError(f"prefix must be a key prefix such as 'REF_', got {prefix!r}")


def _voigt(stress: np.ndarray) -> np.ndarray:
    """Stress (eV/Å^3) as 6 Voigt numbers in ASE's order (xx, yy, zz, yz, xz, xy)."""
    stress = np.asarray(stress, dtype=float)
    return full_3x3_to_voigt_6_stress(stress) if stress.shape == (3, 3) else stress.reshape(6)


def _extxyz_frames(prepared: Prepared, prefix: str, energy: EnergyKind) -> list[Atoms]:
    """The frames of ``prepared`` with their labels under ``prefix``."""
    frames = []
    for atoms, weight in zip(prepared.structures, prepared.weights, strict=True):
        frame = extxyz_ready(atoms)
        results = atoms.calc.results
        frame.calc = None
        frame.info[f"{prefix}energy"] = energy_of(atoms, energy)
        frame.arrays[f"{prefix}forces"] = np.array(results["forces"], dtype=float)
        if results.get("stress") is not None and np.all(np.isfinite(results["stress"])):
            frame.info[f"{prefix}stress"] = _voigt(results["stress"])
        frame.info[CONFIG_TYPE] = str(atoms.info.get(CONFIG_TYPE) or "Default")
        frame.info[CONFIG_WEIGHT] = float(weight)
        frames.append(frame)
    return frames


def write_labelled_extxyz(
    structures: Iterable[Atoms],
    path: str | os.PathLike[str],
    prefix: str = "REF_",
    energy: EnergyKind = "free_energy",
    weights: Weights | None = Weights(),
) -> Written:
    """Write the labelled ``structures`` to extended XYZ with their labels under ``prefix``.

    Each frame holds ``REF_energy`` (eV, the ``energy`` chosen), ``REF_forces`` (eV/Å per
    atom) and, where the calculator gave one, ``REF_stress`` (eV/Å³, 6 Voigt numbers in ASE's
    order xx yy zz yz xz xy, which ASE, the libAtoms ``extxyz`` reader and MACE read), MACE's
    convention with the default prefix, not ASE's calculator keys, so a fitting code never
    mixes them up with another potential's. Also ``config_type`` (its origin; the isolated
    atoms' ``IsolatedAtom`` gives MACE its ``E0s``), ``config_weight`` (see
    :class:`~assyst_nodes.stages.weights.Weights`) and the provenance keys (see
    :func:`assyst_nodes.io.extxyz.extxyz_ready`).

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures with their calculator results.
    path : str or os.PathLike
        The extended XYZ file; overwritten if it exists.
    prefix : str, default ``"REF_"``
        Prefix of the label keys; must be a valid Python identifier.
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy to write: ``free_energy`` is consistent with the forces (under electronic
        smearing, ``energy`` is the zero-width extrapolation, which is not).
    weights : Weights or None, default Weights()
        The weights and the limits beyond which structures are left out. ``None``: every
        structure weighs 1 and none is left out.

    Returns
    -------
    Written
        The path, frames written, structures left out, and the isolated atoms' energies.

    Raises
    ------
    ValueError
        ``prefix`` is not a valid identifier, or ``energy`` is unknown.

    Warns
    -----
    RuntimeWarning
        The weights' energy limits cannot be applied: an element has no structure of its
        own, not even an isolated atom (see :func:`~assyst_nodes.stages.weights.weigh`).
    """
    _check_prefix(prefix)
    prepared = prepare_labelled(structures, energy, weights)
    return write_prepared_extxyz(prepared, Path(path), prefix, energy)


def write_prepared_extxyz(
    prepared: Prepared, target: Path, prefix: str = "REF_", energy: EnergyKind = "free_energy"
) -> Written:
    """Write ``prepared`` as labelled extxyz to ``target`` (see :func:`write_labelled_extxyz`).

    Parameters
    ----------
    prepared : Prepared
        The structures and their weights (written as ``config_weight``).
    target : pathlib.Path
        The file; overwritten.
    prefix : str, default ``"REF_"``
        Prefix of the label keys.
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy written.

    Returns
    -------
    Written
        The path, frames written, and what ``prepared`` says was left out.
    """
    from ase.io import write

    write(target, _extxyz_frames(prepared, prefix, energy), format="extxyz")
    return Written(
        target, len(prepared.structures), prepared.unlabelled, prepared.extreme,
        prepared.references,
    )


def _object_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A frame of ``rows`` whose columns and column index are plain ``object``: pandas 3's
    string dtype pickles as a class pandas 2 cannot load."""
    frame = pd.DataFrame(rows, columns=pd.Index(list(PACEMAKER_COLUMNS), dtype=object))
    for name in ("config_type", "family", "uuid"):
        frame[name] = pd.Series(frame[name].tolist(), dtype=object, index=frame.index)
    return frame


def write_pacemaker(
    structures: Iterable[Atoms],
    path: str | os.PathLike[str],
    reference_energies: Mapping[str, float] | None = None,
    energy: EnergyKind = "free_energy",
    weights: Weights | None = Weights(),
) -> Written:
    """Write the labelled ``structures`` as pacemaker's training table.

    A gzip-compressed pandas pickle, readable by pandas 2 and 3, with the columns of
    :data:`PACEMAKER_COLUMNS`: ``ase_atoms`` (the structure, no calculator), ``energy`` (eV,
    the ``energy`` chosen), ``forces`` (eV/Å, (n, 3)), ``stress`` (eV/Å³, 6 Voigt numbers in
    ASE's order; NaN where the calculator gave none), ``energy_corrected`` (eV: the energy
    minus the reference energies of its atoms), ``w_energy`` (the structure's weight, all of
    them summing to 1) and ``w_forces`` (per atom, the structure's weight over its atoms, as
    pacemaker's uniform weighting makes them), ``config_type``, ``family`` and ``uuid``.
    Isolated atoms give the reference energies and are not rows.

    Parameters
    ----------
    structures : iterable of ase.Atoms
        The structures with their calculator results.
    path : str or os.PathLike
        The pickle file (gzip-compressed whatever its name); overwritten if it exists.
    reference_energies : mapping of str to float, optional
        Energy of one isolated atom of each element (eV), instead of those of the isolated
        atoms among ``structures``. Default: none, the isolated atoms'.
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy written (see :func:`write_labelled_extxyz`).
    weights : Weights or None, default Weights()
        The weights and the limits beyond which structures are left out. ``None``: every
        structure weighs the same and none is left out.

    Returns
    -------
    Written
        The path, rows written, structures left out, and the reference energies used.

    Raises
    ------
    ValueError
        An element of the kept structures without a reference energy (the message names it
        and how to give one), or an unknown ``energy``.
    """
    prepared = prepare_labelled(structures, energy, weights, reference_energies)
    return _write_pacemaker(prepared, Path(path), prepared.references, energy)


def _write_pacemaker(
    prepared: Prepared, target: Path, references: dict[str, float], energy: EnergyKind
) -> Written:
    """Write ``prepared`` as pacemaker's table to ``target``."""
    rows_of = [
        (atoms, weight)
        for atoms, weight in zip(prepared.structures, prepared.weights, strict=True)
        if atoms.info.get(CONFIG_TYPE) != ISOLATED_ATOM
    ]
    needed = sorted({s for atoms, _ in rows_of for s in atoms.get_chemical_symbols()})
    missing = [e for e in needed if e not in references]
    if missing:
        raise ValueError(
            f"no reference energy (eV per isolated atom) for {missing}: label with isolated "
            f"atoms (label(..., isolated=IsolatedAtoms()), the default) or give one for each of "
            f"{needed} (reference_energies=..., --reference-energy EL=E)"
        )
    total = float(sum(weight for _, weight in rows_of)) or 1.0
    rows = []
    for atoms, weight in rows_of:
        value = energy_of(atoms, energy)
        results = atoms.calc.results
        stress = results.get("stress")
        bare = atoms.copy()
        bare.calc = None
        share = weight / total
        rows.append(
            {
                "ase_atoms": bare,
                "energy": value,
                "forces": np.array(results["forces"], dtype=float),
                "stress": _voigt(stress) if stress is not None else np.full(6, np.nan),
                "energy_corrected": value
                - sum(float(references[s]) for s in atoms.get_chemical_symbols()),
                "w_energy": share,
                "w_forces": np.full(len(atoms), share / len(atoms)),
                "config_type": str(atoms.info.get(CONFIG_TYPE) or "Default"),
                "family": str(atoms.info.get(FAMILY) or atoms.info.get("seed") or ""),
                "uuid": str(atoms.info.get(UUID) or ""),
            }
        )
    _object_frame(rows).to_pickle(target, compression="gzip")
    return Written(
        target, len(rows), prepared.unlabelled, prepared.extreme, dict(sorted(references.items()))
    )


def part_path(path: str | os.PathLike[str], part: str) -> Path:
    """The file of one part of a split: ``_<part>`` before the suffixes of ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file named for the whole set, e.g. ``cuag.extxyz`` or ``cuag.pkl.gzip``.
    part : str
        ``train``, ``validation`` or ``test``.

    Returns
    -------
    pathlib.Path
        E.g. ``cuag_train.extxyz``, ``cuag_test.pkl.gzip``.
    """
    target = Path(path)
    suffixes = "".join(target.suffixes)
    stem = target.name[: len(target.name) - len(suffixes)] if suffixes else target.name
    return target.with_name(f"{stem}_{part}{suffixes}")


def write_split(
    structures: Sequence[Atoms],
    path: str | os.PathLike[str],
    settings: Split = Split(),
    pacemaker: bool = False,
    prefix: str = "REF_",
    reference_energies: Mapping[str, float] | None = None,
    energy: EnergyKind = "free_energy",
    weights: Weights | None = Weights(),
) -> dict[str, Written]:
    """Write train, validation and test files of ``structures``, split by family.

    The split is :func:`~assyst_nodes.stages.split.split` (no family in two parts; the
    isolated atoms in training); weights, limits and reference energies are taken over the
    whole set first, so the parts agree. Each part goes to :func:`part_path`; a part left
    empty (fraction 0, or no family left for it) is not written.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        The labelled structures.
    path : str or os.PathLike
        The file named for the whole set (see :func:`part_path`).
    settings : Split, default Split()
        Fractions and seed.
    pacemaker : bool, default False
        Write pacemaker's tables (see :func:`write_pacemaker`) instead of extxyz (see
        :func:`write_labelled_extxyz`).
    prefix : str, default ``"REF_"``
        The label keys' prefix of extxyz.
    reference_energies : mapping of str to float, optional
        For pacemaker: instead of the isolated atoms'. Default: none.
    energy : {"free_energy", "energy"}, default "free_energy"
        The energy written.
    weights : Weights or None, default Weights()
        The weights (``w_energy`` sums to 1 in each pacemaker part).

    Returns
    -------
    dict of str to Written
        What was written for ``train``, ``validation`` and ``test``.

    Raises
    ------
    ValueError
        As the writers raise.
    """
    _check_prefix(prefix)
    prepared = prepare_labelled(structures, energy, weights, reference_energies)
    references = prepared.references
    weight_of = {id(a): w for a, w in zip(prepared.structures, prepared.weights, strict=True)}
    parts = split(prepared.structures, settings)
    written: dict[str, Written] = {}
    for number, name in enumerate(PARTS):
        members = parts[name]
        part = Prepared(
            members,
            np.array([weight_of[id(a)] for a in members]),
            prepared.unlabelled if number == 0 else 0,
            prepared.extreme if number == 0 else 0,
            references,
        )
        if not any(a.info.get(CONFIG_TYPE) != ISOLATED_ATOM for a in members):
            written[name] = Written(None, 0, part.unlabelled, part.extreme, references)
            continue
        target = part_path(path, name)
        written[name] = (
            _write_pacemaker(part, target, references, energy)
            if pacemaker
            else write_prepared_extxyz(part, target, prefix, energy)
        )
    return written
