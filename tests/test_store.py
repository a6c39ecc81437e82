"""Tests of the columnar HDF5 structure store (``assyst_nodes.project.store``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assyst_nodes.lineage import LINEAGE, RELAX_CONVERGED, SEED, SPACEGROUP, STEP, UUID
from assyst_nodes.project import store
from assyst_nodes.project.store import (
    append_structures,
    read_file,
    read_structures,
    structure_table,
    write_file,
    write_structures,
)

# ----------------------------------------------------------------------------------------------
# helpers


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type, recursively (arrays compared bitwise, NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def assert_same(expected: Atoms, got: Atoms) -> None:
    """``got`` is a bit-exact copy of ``expected`` (geometry, arrays, info, results)."""
    assert got.numbers.dtype == np.int64
    assert np.array_equal(got.numbers, expected.numbers)
    assert got.positions.dtype == np.float64
    assert got.positions.tobytes() == expected.positions.astype(np.float64).tobytes()
    assert got.cell.array.tobytes() == expected.cell.array.astype(np.float64).tobytes()
    assert np.array_equal(got.pbc, expected.pbc)
    assert set(got.arrays) == set(expected.arrays)
    for name, array in expected.arrays.items():
        assert np.array_equal(got.arrays[name], array, equal_nan=True), name
    assert same_value(expected.info, got.info), (expected.info, got.info)
    results = expected.calc.results if expected.calc is not None else {}
    if not results:
        assert got.calc is None
        return
    assert isinstance(got.calc, SinglePointCalculator)
    assert set(got.calc.results) == set(results)
    for name, value in results.items():
        stored = got.calc.results[name]
        if name == "stress" and np.shape(value) == (3, 3):
            continue
        assert np.array_equal(np.asarray(stored), np.asarray(value), equal_nan=True), name
    if "energy" in results:
        assert same_value(got.get_potential_energy(), float(results["energy"]))
    if "forces" in results:
        assert np.array_equal(got.get_forces(), results["forces"], equal_nan=True)
    if "stress" in results and np.shape(results["stress"]) == (6,):
        assert np.array_equal(got.get_stress(), results["stress"], equal_nan=True)


def crystal(index: int, natoms: int = 4, calc: bool = True) -> Atoms:
    """A small periodic structure with provenance info and (optionally) results."""
    rng = np.random.default_rng(index)
    atoms = Atoms(
        numbers=rng.choice([13, 29, 1, 6], natoms),
        positions=rng.random((natoms, 3)) * 3.0,
        cell=np.diag([3.0, 3.1, 3.2]) + rng.random((3, 3)) * 0.1,
        pbc=True,
    )
    uid = f"00000000-0000-5000-8000-{index:012d}"
    atoms.info = {
        UUID: uid,
        SEED: "00000000-0000-5000-8000-000000000000",
        LINEAGE: [f"parent-{index}", f"grandparent-{index}"],
        STEP: "relax",
        SPACEGROUP: 225 - index,
        RELAX_CONVERGED: bool(index % 2),
        "temperature": 300.5 + index,
    }
    if calc:
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=-1.5 * natoms + 0.1 * index,
            forces=rng.normal(size=(natoms, 3)),
            stress=rng.normal(size=6),
        )
    return atoms


def write_read(path: Path, structures: list[Atoms], **kwargs: Any) -> list[Atoms]:
    """Write ``structures`` to ``path`` and read them back."""
    write_file(path, structures)
    with h5py.File(path, "r") as handle:
        return read_structures(handle, **kwargs)


# ----------------------------------------------------------------------------------------------
# round trips


def test_round_trip_is_exact(tmp_path: Path) -> None:
    structures = [crystal(i, natoms=1 + i % 5) for i in range(12)]
    structures.append(Atoms())  # no atoms, no info
    molecule = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], pbc=False)
    molecule.info = {UUID: "molecule", "charge": -1, "note": "ünïcödé ✓", "flag": False}
    structures.append(molecule)
    back = write_read(tmp_path / "s.h5", structures)
    assert len(back) == len(structures)
    for expected, got in zip(structures, back, strict=True):
        assert_same(expected, got)
    assert back[-1].calc is None and back[-2].calc is None and len(back[-2]) == 0


def test_read_file_and_types(tmp_path: Path) -> None:
    structures = [crystal(i) for i in range(3)]
    write_file(tmp_path / "s.h5", structures)
    back = read_file(tmp_path / "s.h5")
    info = back[1].info
    assert type(info[UUID]) is str
    assert type(info[SPACEGROUP]) is int and info[SPACEGROUP] == 224
    assert type(info[RELAX_CONVERGED]) is bool and info[RELAX_CONVERGED] is True
    assert type(info["temperature"]) is float
    assert info[LINEAGE] == ["parent-1", "grandparent-1"] and type(info[LINEAGE]) is list
    with h5py.File(tmp_path / "s.h5", "r") as handle:
        assert handle.attrs["format_version"] == store.FORMAT_VERSION
        assert handle["positions"].shape == (12, 3) and handle["positions"].dtype == np.float64
        assert handle["offsets"][...].tolist() == [0, 4, 8, 12]
        assert handle["cell"].shape == (3, 3, 3) and handle["pbc"].dtype == bool
        assert handle["results/forces/values"].shape == (12, 3)
        assert handle["results/stress/values"].shape == (3, 6)
        assert handle["info/lineage/offsets"][...].tolist() == [0, 2, 4, 6]


def test_calculators(tmp_path: Path) -> None:
    plain = crystal(0, calc=False)
    energy_only = crystal(1, calc=False)
    energy_only.calc = SinglePointCalculator(energy_only, energy=-3.25)
    full = crystal(2)
    full.calc.results["free_energy"] = -3.5
    square = crystal(3, calc=False)
    stress = np.array([[1.0, 0.4, 0.5], [0.4, 2.0, 0.6], [0.5, 0.6, 3.0]])
    square.calc = SinglePointCalculator(square, energy=1.0, stress=stress)
    square.calc.results["stress"] = stress  # as some calculators leave it
    nan_energy = crystal(4, calc=False)
    nan_energy.calc = SinglePointCalculator(nan_energy, energy=float("nan"))
    back = write_read(tmp_path / "s.h5", [plain, energy_only, full, square, nan_energy])
    assert back[0].calc is None
    assert back[1].calc.results == {"energy": -3.25}
    assert type(back[1].calc.results["energy"]) is float
    assert_same(full, back[2])
    assert back[2].get_potential_energy(force_consistent=True) == -3.5
    assert np.array_equal(back[3].get_stress(), [1.0, 2.0, 3.0, 0.6, 0.5, 0.4])
    assert np.isnan(back[4].get_potential_energy())
    # the calculator keeps its own reference state: moving the atoms invalidates the results
    moved = back[2]
    moved.positions[0, 0] += 0.1
    with pytest.raises(Exception, match="not available"):
        moved.get_forces()


def test_per_atom_arrays(tmp_path: Path) -> None:
    first = crystal(0)
    first.set_initial_magnetic_moments([1.0, -1.0, 0.5, 0.0])
    first.set_tags([1, 2, 3, 4])
    second = crystal(1)
    second.set_momenta(np.arange(12.0).reshape(4, 3))
    third = crystal(2, calc=False)
    back = write_read(tmp_path / "s.h5", [first, second, third])
    for expected, got in zip([first, second, third], back, strict=True):
        assert_same(expected, got)
    assert "momenta" not in back[0].arrays and "tags" not in back[1].arrays
    assert back[0].get_tags().dtype == first.get_tags().dtype
    assert np.array_equal(back[0].get_initial_magnetic_moments(), [1.0, -1.0, 0.5, 0.0])


def test_missing_keys_stay_missing(tmp_path: Path) -> None:
    structures = [crystal(i, calc=False) for i in range(4)]
    del structures[1].info[SPACEGROUP]
    del structures[2].info[LINEAGE]
    structures[3].info = {}
    structures[0].info["only here"] = "x/y.z"
    back = write_read(tmp_path / "s.h5", structures)
    assert SPACEGROUP not in back[1].info and LINEAGE not in back[2].info
    assert back[3].info == {}
    assert back[0].info["only here"] == "x/y.z"
    for expected, got in zip(structures, back, strict=True):
        assert_same(expected, got)


def test_json_fallback_keeps_everything(tmp_path: Path) -> None:
    odd = {
        "nested": {"a": [1, 2.5, "x"], "b": {"c": None}},
        "array": np.arange(6.0).reshape(2, 3),
        "none": None,
        "mixed": 1,
        "big": 2**70,
        "nul": "a\x00b",
        "tuple": (1, 2),
        "list of ints": [1, 2, 3],
        "np int": np.int64(7),
        "np float": np.float64(0.25),
        "np bool": np.bool_(True),
    }
    other = {"mixed": "one", "nested": {"z": 1}}
    structures = [crystal(0, calc=False), crystal(1, calc=False)]
    structures[0].info = odd
    structures[1].info = other
    back = write_read(tmp_path / "s.h5", structures)
    info = back[0].info
    assert info["nested"] == odd["nested"] and info["none"] is None
    assert same_value(info["array"], odd["array"])
    assert info["mixed"] == 1 and type(info["mixed"]) is int and back[1].info["mixed"] == "one"
    assert info["big"] == 2**70 and info["nul"] == "a\x00b"
    assert info["tuple"] == [1, 2]  # json has no tuples
    assert info["list of ints"] == [1, 2, 3] and type(info["list of ints"]) is list
    assert type(info["np int"]) is int and info["np int"] == 7
    assert type(info["np float"]) is float and info["np float"] == 0.25
    assert info["np bool"] is True
    assert back[1].info == other


# ----------------------------------------------------------------------------------------------
# append, empty, selection


def test_append_in_batches(tmp_path: Path) -> None:
    batches = [[crystal(i) for i in range(0, 5)], [crystal(i) for i in range(5, 7)], []]
    later = [crystal(i, natoms=2) for i in range(7, 10)]
    later[0].info["new key"] = 1.5
    later[1].info[SPACEGROUP] = "P1"  # kind changes: the column becomes json
    later[2].calc = None
    later[2].set_tags([5, 6])
    del later[2].info[LINEAGE]
    batches.append(later)
    no_results = crystal(10, calc=False)
    no_results.info = {UUID: "last"}
    batches.append([no_results])
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as handle:
        for batch in batches:
            append_structures(handle, batch)
            assert handle.attrs["n_structures"] == sum(
                len(b) for b in batches[: batches.index(batch) + 1]
            )
    everything = [atoms for batch in batches for atoms in batch]
    back = read_file(path)
    assert len(back) == len(everything) == 11
    for expected, got in zip(everything, back, strict=True):
        assert_same(expected, got)
    with h5py.File(path, "r") as handle:
        assert handle["positions"].maxshape == (None, 3)
        assert handle[f"info/{SPACEGROUP}"].attrs["kind"] == "json"


def test_append_to_new_group_and_write_twice(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "s.h5", "w") as handle:
        group = handle.create_group("run/structures")
        append_structures(group, [crystal(0)])
        append_structures(group, [crystal(1)])
        assert [a.info[UUID] for a in read_structures(group)] == [
            crystal(0).info[UUID],
            crystal(1).info[UUID],
        ]
        with pytest.raises(ValueError, match="already holds a store"):
            write_structures(group, [crystal(2)])


def test_empty(tmp_path: Path) -> None:
    assert write_read(tmp_path / "s.h5", []) == []
    assert read_file(tmp_path / "s.h5") == []
    with h5py.File(tmp_path / "s.h5", "a") as handle:
        table = structure_table(handle)
        assert len(table) == 0
        assert {"uuid", "formula", "max_force", "relax_converged"} <= set(table.columns)
        append_structures(handle, [crystal(0)])
        append_structures(handle, [])
        assert len(read_structures(handle)) == 1


def test_selection(tmp_path: Path) -> None:
    structures = [crystal(i, natoms=1 + i % 3) for i in range(10)]
    path = tmp_path / "s.h5"
    write_file(path, structures)
    with h5py.File(path, "r") as handle:
        for indices, expected in [
            (slice(2, 5), structures[2:5]),
            (slice(None, None, -3), structures[::-3]),
            ([7, 1, -1], [structures[7], structures[1], structures[-1]]),
            ([], []),
            (np.array([3]), [structures[3]]),
        ]:
            got = read_structures(handle, indices)
            assert len(got) == len(expected)
            for e, g in zip(expected, got, strict=True):
                assert_same(e, g)
        twice = read_structures(handle, [4, 4])
        assert_same(structures[4], twice[0]) and assert_same(structures[4], twice[1])
        twice[0].positions[0, 0] = 99.0
        assert twice[1].positions[0, 0] != 99.0  # repeated indices give independent copies
        with pytest.raises(IndexError):
            read_structures(handle, [10])
        with pytest.raises(IndexError):
            read_structures(handle, [-11])


def test_structures_do_not_share_memory(tmp_path: Path) -> None:
    back = write_read(tmp_path / "s.h5", [crystal(i) for i in range(4)])
    for i, a in enumerate(back):
        for b in back[i + 1 :]:
            assert not np.shares_memory(a.positions, b.positions)
        assert not np.shares_memory(a.positions, a.calc.atoms.positions)
        assert not np.shares_memory(a.cell.array, a.calc.atoms.cell.array)
    back[0].positions[:] = 0.0
    assert_same(crystal(1), back[1])
    assert back[0].calc.atoms.positions.any()


def test_slow_constructors_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast Atoms/calculator construction gives the same objects as ase's constructors."""
    structures = [crystal(i) for i in range(3)]
    structures[0].set_tags([1, 2, 3, 4])
    fast = write_read(tmp_path / "s.h5", structures)
    from assyst_nodes.project.store.read import _factory

    factory = _factory()
    assert factory.fast_atoms and factory.fast_calc  # the ase version in use is known
    monkeypatch.setattr(factory, "fast_atoms", False)
    monkeypatch.setattr(factory, "fast_calc", False)
    with h5py.File(tmp_path / "s.h5", "r") as handle:
        slow = read_structures(handle)
    reference = Atoms("H", cell=np.eye(3), pbc=True)
    for f, s, expected in zip(fast, slow, structures, strict=True):
        assert_same(expected, f)
        assert_same(expected, s)
        assert set(f.__dict__) == set(s.__dict__) == set(reference.__dict__)
        assert set(f.calc.__dict__) == set(s.calc.__dict__)
        assert f.calc.get_spin_polarized.__self__ is f.calc
        assert f == s and f.calc.check_state(f) == [] and s.calc.check_state(s) == []
        assert f.copy() == f


# ----------------------------------------------------------------------------------------------
# table


def test_structure_table(tmp_path: Path) -> None:
    structures = [crystal(i, natoms=1 + i % 4) for i in range(6)]
    structures[2].calc = None
    del structures[3].info[SPACEGROUP]
    del structures[4].info[RELAX_CONVERGED]
    structures[5].info["label"] = "five"
    structures.append(Atoms(cell=np.eye(3)))
    path = tmp_path / "s.h5"
    write_file(path, structures)
    with h5py.File(path, "r") as handle:
        table = structure_table(handle)
    assert list(table.columns[:10]) == [
        "uuid",
        "seed",
        "step",
        "formula",
        "natoms",
        "volume_per_atom",
        "energy_per_atom",
        "max_force",
        "spacegroup",
        "relax_converged",
    ]
    assert {"temperature", "label"} <= set(table.columns) and "lineage" not in table.columns
    assert len(table) == len(structures)
    for i, atoms in enumerate(structures[:-1]):
        row = table.iloc[i]
        assert row["uuid"] == atoms.info[UUID] and row["step"] == "relax"
        assert row["formula"] == atoms.get_chemical_formula()
        assert row["natoms"] == len(atoms)
        assert row["volume_per_atom"] == pytest.approx(atoms.get_volume() / len(atoms))
        if atoms.calc is None:
            assert np.isnan(row["energy_per_atom"]) and np.isnan(row["max_force"])
        else:
            energy = atoms.get_potential_energy()
            assert row["energy_per_atom"] == pytest.approx(energy / len(atoms))
            fmax = np.linalg.norm(atoms.get_forces(), axis=1).max()
            assert row["max_force"] == pytest.approx(fmax)
        assert row["temperature"] == atoms.info["temperature"]
    assert table["spacegroup"].isna().tolist() == [False, False, False, True, False, False, True]
    assert table["spacegroup"].iloc[0] == 225
    assert table["relax_converged"].isna().tolist()[4] and table["relax_converged"].iloc[1]
    assert table["label"].tolist()[5] == "five" and table["label"].iloc[0] is None
    last = table.iloc[-1]
    assert last["formula"] == "" and last["natoms"] == 0 and last["uuid"] is None
    assert np.isnan(last["volume_per_atom"]) and np.isnan(last["max_force"])


# ----------------------------------------------------------------------------------------------
# corrupted stores


def _resized(handle: h5py.File, path: str, rows: int) -> None:
    """Give dataset ``path`` ``rows`` rows (cut, or padded with zeros), whatever its layout
    (the columns of a store written at once are compact, which HDF5 cannot resize)."""
    data = handle[path][...]
    padded = np.zeros((rows, *data.shape[1:]), dtype=data.dtype)
    padded[: min(rows, len(data))] = data[:rows]
    del handle[path]
    handle[path] = padded


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    """A small valid store file."""
    path = tmp_path / "s.h5"
    write_file(path, [crystal(i) for i in range(3)])
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda h: h.__delitem__("positions"), "positions missing"),
        (lambda h: h.__delitem__("offsets"), "offsets missing"),
        (lambda h: _resized(h, "cell", 2), "cell has shape"),
        (lambda h: _resized(h, "positions", 13), "positions has shape"),
        (lambda h: h.attrs.__setitem__("n_structures", 4), "offsets has shape"),
        (lambda h: _resized(h, "results/forces/values", 5), "forces/values has shape"),
        (lambda h: h["results/energy"].__delitem__("mask"), "energy/mask is missing"),
        (lambda h: _resized(h, "info/uuid/codes", 1), "uuid/codes has shape"),
        (lambda h: h["info/uuid"].__delitem__("categories"), "uuid/categories is missing"),
        (lambda h: h["info/uuid/codes"].__setitem__(2, 7), "point outside its 3 categories"),
        (lambda h: h["info/seed/codes"].__setitem__(0, -1), "point outside"),
        (lambda h: h["info/lineage"].__delitem__("offsets"), "lineage/offsets is missing"),
        (lambda h: h.attrs.__delitem__("n_structures"), "half-written"),
        (lambda h: h.attrs.__delitem__("format"), "not a structure store"),
        (lambda h: h.attrs.__setitem__("format_version", 99), "newer"),
        (lambda h: h["offsets"].__setitem__(1, 9), "non-decreasing"),
    ],
)
def test_corrupted_groups_raise_value_error(good_file: Path, damage: Any, message: str) -> None:
    with h5py.File(good_file, "a") as handle:
        damage(handle)
    with h5py.File(good_file, "r") as handle:
        with pytest.raises(ValueError, match=message) as error:
            read_structures(handle)
        assert str(good_file) in str(error.value) and ":/" in str(error.value)
        with pytest.raises(ValueError, match=message):
            structure_table(handle)


def test_repeated_strings_are_stored_once_as_fixed_length_bytes(tmp_path: Path) -> None:
    batch = [crystal(i) for i in range(6)]
    for atoms in batch:
        atoms.info[STEP] = "a long step name that repeats " * 3
    write_file(tmp_path / "s.h5", batch)
    with h5py.File(tmp_path / "s.h5", "r") as handle:
        step = handle["info/step"]
        assert step.attrs["strings"] == "dictionary" and "values" not in step
        assert step["categories"].shape == (1,) and step["categories"].dtype.kind == "S"
        assert step["codes"][...].tolist() == [0] * 6
        uuids = handle["info/uuid"]
        assert uuids["categories"].shape == (6,) and uuids["codes"][...].tolist() == list(range(6))
    assert [a.info[STEP] for a in read_file(tmp_path / "s.h5")] == [batch[0].info[STEP]] * 6


def test_appending_longer_and_new_strings_widens_the_categories(tmp_path: Path) -> None:
    first = [crystal(i) for i in range(3)]
    second = [crystal(i) for i in range(3, 6)]
    second[0].info[UUID] = "ü" * 50  # longer than any before, and not ASCII
    second[1].info[UUID] = first[0].info[UUID]  # a known category
    with h5py.File(tmp_path / "s.h5", "w") as handle:
        write_structures(handle, first)
        append_structures(handle, second)
        assert handle["info/uuid/categories"].dtype.itemsize == len(("ü" * 50).encode())
        assert handle["info/uuid/codes"][...].tolist() == [0, 1, 2, 3, 0, 4]
    back = read_file(tmp_path / "s.h5")
    for expected, got in zip(first + second, back, strict=True):
        assert_same(expected, got)


def _as_format_1(handle: h5py.File) -> None:
    """Rewrite a store's string columns as format version 1 wrote them (``values`` of
    variable-length UTF-8 strings, no ``codes``/``categories``)."""
    for column in handle["info"].values():
        if column.attrs.get("strings") != "dictionary":
            continue
        categories = [b.decode() for b in column["categories"][...].tolist()]
        strings = [categories[code] for code in column["codes"][...].tolist()]
        del column["codes"], column["categories"]
        del column.attrs["strings"]
        column.create_dataset(
            "values", data=np.array(strings, dtype=object), dtype=h5py.string_dtype("utf-8")
        )
    handle.attrs["format_version"] = 1


def test_a_format_1_store_is_read_and_upgraded_when_appended_to(tmp_path: Path) -> None:
    first = [crystal(i) for i in range(3)]
    with h5py.File(tmp_path / "s.h5", "w") as handle:
        write_structures(handle, first)
        _as_format_1(handle)
    back = read_file(tmp_path / "s.h5")
    for expected, got in zip(first, back, strict=True):
        assert_same(expected, got)
    with h5py.File(tmp_path / "s.h5", "r") as handle:
        assert structure_table(handle)["uuid"].tolist() == [a.info[UUID] for a in first]
    second = [crystal(i) for i in range(3, 5)]
    with h5py.File(tmp_path / "s.h5", "a") as handle:
        append_structures(handle, second)
        assert handle.attrs["format_version"] == store.FORMAT_VERSION
        assert "values" not in handle["info/uuid"] and "codes" in handle["info/lineage"]
    for expected, got in zip(first + second, read_file(tmp_path / "s.h5"), strict=True):
        assert_same(expected, got)


def test_append_refuses_a_broken_store(good_file: Path) -> None:
    with h5py.File(good_file, "a") as handle:
        _resized(handle, "pbc", 5)
        with pytest.raises(ValueError, match="pbc"):
            append_structures(handle, [crystal(5)])


def test_store_module_needs_no_pyiron() -> None:
    """The store is plain h5py/numpy/pandas/ase; only the rest of the project layer uses
    pyiron_base (importing the package imports that too, so check the module's own imports)."""
    import ast

    import assyst_nodes.project.store as store

    imported = []
    for path in Path(store.__file__).parent.glob("*.py"):  # the package's modules
        tree = ast.parse(path.read_text())
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)]
    assert "h5py" in imported and not [name for name in imported if "pyiron" in name]


# ----------------------------------------------------------------------------------------------
# property-based round trip

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_keys = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _text,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("abc", min_size=1, max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
_values = (
    _text
    | st.integers(-(2**63), 2**63 - 1)
    | _floats
    | st.booleans()
    | st.lists(_text, max_size=4)
    | _json_like
)


@st.composite
def structures(draw: st.DrawFn) -> Atoms:
    """A random small structure with random info and maybe results."""
    natoms = draw(st.integers(0, 4))
    coordinates = st.floats(-10, 10, allow_nan=False, allow_subnormal=True)
    positions = draw(
        st.lists(st.tuples(coordinates, coordinates, coordinates), min_size=natoms, max_size=natoms)
    )
    atoms = Atoms(
        numbers=draw(st.lists(st.integers(1, 118), min_size=natoms, max_size=natoms)),
        positions=np.array(positions, dtype=np.float64).reshape(natoms, 3),
        cell=np.array(draw(st.lists(coordinates, min_size=9, max_size=9))).reshape(3, 3),
        pbc=draw(st.lists(st.booleans(), min_size=3, max_size=3)),
    )
    atoms.info = draw(st.dictionaries(_keys, _values, max_size=4))
    results = {}
    if draw(st.booleans()):
        results["energy"] = draw(_floats)
    if draw(st.booleans()):
        results["forces"] = np.array(
            draw(st.lists(_floats, min_size=3 * natoms, max_size=3 * natoms))
        ).reshape(natoms, 3)
    if draw(st.booleans()):
        results["stress"] = np.array(draw(st.lists(_floats, min_size=6, max_size=6)))
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(structures(), max_size=4), min_size=1, max_size=3))
def test_round_trip_property(tmp_path: Path, batches: list[list[Atoms]]) -> None:
    path = tmp_path / "property.h5"
    with h5py.File(path, "w") as handle:
        for batch in batches:
            append_structures(handle, batch)
        back = read_structures(handle)
        table = structure_table(handle)
    everything = [atoms for batch in batches for atoms in batch]
    assert len(back) == len(everything) == len(table)
    for expected, got in zip(everything, back, strict=True):
        assert_same(expected, got)
