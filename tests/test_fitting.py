"""Training sets for fitting codes: extended XYZ with reference keys, pacemaker's table, splits
by family; read back as written (by ASE and by pandas 2), unlabelled and extreme structures left
out and counted, a wrong file name for a format an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read
from services import _missing

from assyst_nodes.io.fitting import (
    PACEMAKER_COLUMNS,
    part_path,
    reference_energies,
    write_labelled_extxyz,
    write_pacemaker,
    write_split,
)
from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.project.export import export_format, export_table
from assyst_nodes.stages.split import Split
from assyst_nodes.stages.weights import Weights


def labelled_cells() -> list[Atoms]:
    """Two labelled cells (energy and a different free energy, eV; forces eV/Å; stress eV/Å³
    Voigt), one without labels and two isolated atoms."""
    out = []
    for k, (element, a) in enumerate([("Cu", 3.6), ("Ag", 4.1)]):
        atoms = update_uuid(bulk(element, "fcc", a=a, cubic=True), "fixture", k)
        atoms.rattle(0.01, seed=k)
        forces = np.arange(12, dtype=float).reshape(4, 3) * 0.01 * (k + 1)
        stress = np.array([0.01, 0.02, 0.03, 0.001, 0.002, 0.003]) * (k + 1)
        atoms.calc = SinglePointCalculator(atoms, energy=-3.5 * (k + 1), forces=forces,
                                           stress=stress, free_energy=-3.6 * (k + 1))
        atoms.info.update({"config_type": "relaxed", "family": f"family{k}"})
        out.append(atoms)
    out.append(update_uuid(bulk("Cu", "bcc", a=2.9, cubic=True), "fixture", 9))  # no label
    for k, (element, energy) in enumerate([("Cu", -0.5), ("Ag", -0.25)]):
        atom = update_uuid(Atoms(element, cell=[12] * 3, pbc=True), "isolated", k)
        atom.calc = SinglePointCalculator(atom, energy=energy, free_energy=energy,
                                          forces=np.zeros((1, 3)))
        atom.info["config_type"] = "IsolatedAtom"
        out.append(atom)
    return out


def test_extxyz_round_trips_with_the_labels_under_the_reference_prefix(tmp_path: Path) -> None:
    cells = labelled_cells()
    written = write_labelled_extxyz(cells, tmp_path / "train.extxyz", weights=None)
    assert (written.structures, written.unlabelled, written.extreme) == (4, 1, 0)
    assert written.reference_energies == {"Ag": -0.25, "Cu": -0.5}
    back = read(written.path, index=":")
    assert len(back) == 4
    for frame, original in zip(back, cells[:2], strict=False):
        assert frame.calc is None  # no potential's keys to confuse with the reference
        assert frame.info["REF_energy"] == original.calc.results["free_energy"]
        assert np.array_equal(frame.arrays["REF_forces"], original.get_forces())
        # 6 Voigt numbers in ASE's order, which every reader takes (not "_JSON [[...]]")
        assert frame.info["REF_stress"].shape == (6,)
        assert np.array_equal(frame.info["REF_stress"], original.get_stress())
        assert frame.info[UUID] == original.info[UUID]
        assert frame.info["config_type"] == "relaxed" and frame.info["config_weight"] == 1.0
        assert np.allclose(frame.positions, original.positions)
    assert '_JSON' not in (tmp_path / "train.extxyz").read_text()
    assert [a.info["config_type"] for a in back[2:]] == ["IsolatedAtom", "IsolatedAtom"]
    chosen = write_labelled_extxyz(cells, tmp_path / "e.extxyz", energy="energy", weights=None)
    assert read(chosen.path, index=0).info["REF_energy"] == -3.5
    other = write_labelled_extxyz(cells, tmp_path / "dft.xyz", prefix="DFT_")
    assert "DFT_energy" in read(other.path, index=0).info
    with pytest.raises(ValueError, match="prefix must be a key prefix"):
        write_labelled_extxyz(cells, tmp_path / "x.xyz", prefix="REF energy")
    with pytest.raises(ValueError, match="energy must be one of"):
        write_labelled_extxyz(cells, tmp_path / "x.xyz", energy="total")


def test_pacemaker_table_subtracts_the_isolated_atoms_and_carries_weights(tmp_path: Path) -> None:
    cells = labelled_cells()
    written = write_pacemaker(cells, tmp_path / "train.pkl.gzip", weights=None)
    assert (written.structures, written.unlabelled) == (2, 1)
    frame = pd.read_pickle(written.path, compression="gzip")
    assert list(frame.columns) == list(PACEMAKER_COLUMNS)
    assert frame["energy"].tolist() == [-3.6, -7.2]  # the free energies
    assert frame["energy_corrected"].tolist() == [-3.6 + 4 * 0.5, -7.2 + 4 * 0.25]
    assert np.array_equal(frame["forces"][1], cells[1].get_forces())
    assert np.array_equal(frame["stress"][0], cells[0].get_stress())
    assert frame["w_energy"].tolist() == [0.5, 0.5]
    assert [w.tolist() for w in frame["w_forces"]] == [[0.125] * 4, [0.125] * 4]
    assert frame["ase_atoms"][0].calc is None
    assert np.array_equal(frame["ase_atoms"][0].positions, cells[0].positions)
    assert frame["uuid"].tolist() == [cells[0].info[UUID], cells[1].info[UUID]]
    assert frame["family"].tolist() == ["family0", "family1"]
    given = write_pacemaker(cells[:2], tmp_path / "g.pkl.gzip", {"Cu": -1.0, "Ag": -1.0})
    table = pd.read_pickle(given.path, compression="gzip")
    assert table["energy_corrected"].tolist() == [-3.6 + 4, -7.2 + 4]
    with pytest.raises(ValueError, match=r"no reference energy .* for \['Ag'\]"):
        write_pacemaker(cells, tmp_path / "x.pkl.gzip", {"Cu": -0.5})
    with pytest.raises(ValueError, match=r"for \['Ag', 'Cu'\]: label with isolated atoms"):
        write_pacemaker(cells[:2], tmp_path / "x.pkl.gzip")


def test_weights_and_limits_reach_both_formats(tmp_path: Path) -> None:
    cells = labelled_cells()
    cells[1].calc.results["forces"] = cells[1].calc.results["forces"] * 1000  # > 50 eV/Å
    limited = write_labelled_extxyz(cells, tmp_path / "w.extxyz",
                                    weights=Weights(origins={"relaxed": 0.5}))
    assert (limited.structures, limited.extreme) == (3, 1)
    frames = read(limited.path, index=":")
    assert [a.info["config_weight"] for a in frames] == [0.5, 1.0, 1.0]
    table = write_pacemaker(cells, tmp_path / "w.pkl.gzip", weights=Weights(max_force=None))
    assert table.structures == 2 and table.extreme == 0


def test_split_files_hold_whole_families_and_the_isolated_atoms_train(tmp_path: Path) -> None:
    cells = labelled_cells()
    written = write_split(cells, tmp_path / "set.extxyz", Split(0.5, 0.0, 0.5, seed=3),
                          weights=None)
    assert written["validation"].path is None and written["validation"].structures == 0
    train = read(written["train"].path, index=":")
    test = read(written["test"].path, index=":")
    assert written["train"].path == tmp_path / "set_train.extxyz"
    assert written["test"].path == part_path(tmp_path / "set.extxyz", "test")
    assert {a.info["config_type"] for a in test} == {"relaxed"}
    assert sum(a.info["config_type"] == "IsolatedAtom" for a in train) == 2
    families = [{a.info.get("family") for a in part} - {None} for part in (train, test)]
    assert not families[0] & families[1] and families[0] | families[1] == {"family0", "family1"}
    tables = write_split(cells, tmp_path / "set.pkl.gzip", Split(0.5, 0.0, 0.5, seed=3),
                         pacemaker=True, weights=None)
    assert part_path("a/set.pkl.gzip", "train") == Path("a/set_train.pkl.gzip")
    for part in ("train", "test"):
        frame = pd.read_pickle(tables[part].path, compression="gzip")
        assert frame["w_energy"].sum() == pytest.approx(1.0)
        assert (frame["config_type"] != "IsolatedAtom").all()


def test_reference_energies_refuse_two_calculators_mixed() -> None:
    cells = labelled_cells()
    other = cells[3].copy()
    other.calc = SinglePointCalculator(other, energy=-0.9, forces=np.zeros((1, 3)))
    other.info["config_type"] = "IsolatedAtom"
    with pytest.raises(ValueError, match=r"two isolated Cu atoms with energies -0\.5 and -0\.9"):
        reference_energies([*cells, other])


@pytest.mark.parametrize(
    ("name", "labels", "pacemaker", "expected"),
    [
        ("x.extxyz", False, False, "extxyz"),
        ("x.XYZ", True, False, "labelled_extxyz"),
        ("x.pkl.gzip", False, True, "pacemaker"),
        ("x.pckl.gzip", False, True, "pacemaker"),
        ("x.pkl", False, False, "table"),
        ("x.pkl.gz", False, False, "table"),
        ("x.parquet", False, False, "table"),
        ("x.pkl.gzip", False, False, "named like pacemaker's table: add --pacemaker"),
        ("x.xyz", False, True, "pacemaker's table is a gzip pickle: x.xyz should end with"),
        ("x.pkl", True, False, "labels for fitting codes are written as extended XYZ"),
        ("x.csv", False, False, "cannot tell the format of x.csv"),
        ("x.xyz", True, True, "choose one format"),
    ],
)
def test_file_name_and_format_must_agree(name, labels, pacemaker, expected) -> None:
    if expected in {"extxyz", "labelled_extxyz", "pacemaker", "table"}:
        assert export_format(name, labels=labels, pacemaker=pacemaker) == expected
    else:
        with pytest.raises(ValueError, match=expected.replace(".", r"\.")):
            export_format(name, labels=labels, pacemaker=pacemaker)


def test_tables_are_gzip_where_named_so_and_refuse_other_names(tmp_path: Path) -> None:
    cells = labelled_cells()[:2]
    export_table(cells, tmp_path / "t.pkl.gz")
    assert (tmp_path / "t.pkl.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip magic
    assert len(pd.read_pickle(tmp_path / "t.pkl.gz")) == 2
    export_table(cells, tmp_path / "t.pkl")
    assert (tmp_path / "t.pkl").read_bytes()[:2] != b"\x1f\x8b"
    with pytest.raises(ValueError, match="named like pacemaker's table"):
        export_table(cells, tmp_path / "t.pkl.gzip")
    with pytest.raises(ValueError, match=r"t\.xyz is named for extxyz, not for the structure"):
        export_table(cells, tmp_path / "t.xyz")
    assert not (tmp_path / "t.pkl.gzip").exists() and not (tmp_path / "t.xyz").exists()


def pandas2_path() -> str:
    """Where pandas 2 is installed beside this environment's pandas (``.ci/run`` installs it:
    ``pip install --target $ASSYST_PANDAS2_PATH "pandas>=2.2,<3"``)."""
    path = os.environ.get("ASSYST_PANDAS2_PATH", "")
    if not path or not Path(path, "pandas").is_dir():
        _missing(
            "pandas 2 is not installed beside this environment: pip install --target DIR "
            "'pandas>=2.2,<3' and set ASSYST_PANDAS2_PATH=DIR"
        )
    return path


def test_pandas_2_reads_the_tables_pandas_3_wrote(tmp_path: Path) -> None:
    """pacemaker's TensorFlow back-end needs pandas < 3: the tables must load there."""
    path = pandas2_path()
    cells = labelled_cells()
    write_pacemaker(cells, tmp_path / "ace.pkl.gzip")
    export_table(cells[:2], tmp_path / "table.pkl")
    script = (
        "import json, sys, pandas as pd\n"
        "ace = pd.read_pickle(sys.argv[1], compression='gzip')\n"
        "table = pd.read_pickle(sys.argv[2])\n"
        "print(json.dumps({'version': pd.__version__, 'columns': list(ace.columns),\n"
        "    'corrected': ace['energy_corrected'].tolist(), 'uuid': ace['uuid'].tolist(),\n"
        "    'natoms': [len(a) for a in ace['ase_atoms']], 'stress': ace['stress'][0].tolist(),\n"
        "    'table_rows': len(table), 'table_columns': list(table.columns)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ace.pkl.gzip"), str(tmp_path / "table.pkl")],
        capture_output=True, text=True, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["version"].startswith("2.")
    assert seen["columns"] == list(PACEMAKER_COLUMNS)
    assert seen["corrected"] == [-3.6 + 4 * 0.5, -7.2 + 4 * 0.25]
    assert seen["uuid"] == [cells[0].info[UUID], cells[1].info[UUID]]
    assert seen["natoms"] == [4, 4] and seen["stress"] == cells[0].get_stress().tolist()
    assert seen["table_rows"] == 2 and "uuid" in seen["table_columns"]
