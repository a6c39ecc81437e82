"""Training sets for fitting codes: extended XYZ with reference keys, pacemaker's table; both
read back as written, unlabelled structures left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from assyst_nodes.io.fitting import write_labelled_extxyz, write_pacemaker
from assyst_nodes.lineage import UUID, update_uuid


def labelled_cells() -> list[Atoms]:
    """Two labelled cells (energy eV, forces eV/Å, stress eV/Å³ Voigt) and one without."""
    out = []
    for k, (element, a) in enumerate([("Cu", 3.6), ("Ag", 4.1)]):
        atoms = update_uuid(bulk(element, "fcc", a=a, cubic=True), "fixture", k)
        atoms.rattle(0.01, seed=k)
        forces = np.arange(12, dtype=float).reshape(4, 3) * 0.01 * (k + 1)
        stress = np.array([0.01, 0.02, 0.03, 0.001, 0.002, 0.003]) * (k + 1)
        atoms.calc = SinglePointCalculator(atoms, energy=-3.5 * (k + 1), forces=forces,
                                           stress=stress)
        out.append(atoms)
    out.append(update_uuid(bulk("Cu", "bcc", a=2.9, cubic=True), "fixture", 9))  # no label
    return out


def test_extxyz_round_trips_with_the_labels_under_the_reference_prefix(tmp_path: Path) -> None:
    cells = labelled_cells()
    path, left_out = write_labelled_extxyz(cells, tmp_path / "train.extxyz")
    assert left_out == 1
    back = read(path, index=":")
    assert len(back) == 2
    for written, original in zip(back, cells[:2], strict=True):
        assert written.calc is None  # no potential's keys to confuse with the reference
        assert written.info["REF_energy"] == original.get_potential_energy()
        assert np.array_equal(written.arrays["REF_forces"], original.get_forces())
        assert np.allclose(written.info["REF_stress"].reshape(3, 3),
                           original.get_stress(voigt=False))
        assert written.info[UUID] == original.info[UUID]
        assert np.allclose(written.positions, original.positions)
    other, _ = write_labelled_extxyz(cells, tmp_path / "dft.xyz", prefix="DFT_")
    assert "DFT_energy" in read(other, index=0).info
    with pytest.raises(ValueError, match="prefix must be a key prefix"):
        write_labelled_extxyz(cells, tmp_path / "x.xyz", prefix="REF energy")


def test_pacemaker_table_round_trips_with_corrected_energies(tmp_path: Path) -> None:
    cells = labelled_cells()
    path, left_out = write_pacemaker(cells, tmp_path / "train.pkl.gzip", {"Cu": -0.5, "Ag": -0.25})
    assert left_out == 1
    frame = pd.read_pickle(path, compression="gzip")
    assert list(frame.columns) == ["ase_atoms", "energy", "forces", "energy_corrected", "uuid"]
    assert len(frame) == 2
    assert frame["energy"].tolist() == [-3.5, -7.0]
    assert frame["energy_corrected"].tolist() == [-3.5 + 4 * 0.5, -7.0 + 4 * 0.25]
    assert np.array_equal(frame["forces"][1], cells[1].get_forces())
    assert frame["ase_atoms"][0].calc is None
    assert np.array_equal(frame["ase_atoms"][0].positions, cells[0].positions)
    assert frame["uuid"].tolist() == [cells[0].info[UUID], cells[1].info[UUID]]
    with pytest.raises(ValueError, match=r"lacks \['Ag'\]"):
        write_pacemaker(cells, tmp_path / "x.pkl.gzip", {"Cu": -0.5})
