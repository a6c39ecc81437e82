"""The label stage's hand-off to fitting codes: energies as the calculator gives them, isolated
atoms, equivalent structures labelled once (provenance kept), origins, families, splits
without leakage and weights, each checked against an independent computation."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT as AseEMT
from hypothesis import given, settings
from hypothesis import strategies as st

from assyst_nodes.calculators import EMT
from assyst_nodes.lineage import LINEAGE, SEED, STEP, UUID, update_uuid
from assyst_nodes.reports import StageReport
from assyst_nodes.stages.duplicates import Duplicates, duplicate_groups, families
from assyst_nodes.stages.isolated import IsolatedAtoms, isolated_atoms
from assyst_nodes.stages.label import label, origin_of
from assyst_nodes.stages.relax import FullRelax, VolumeRelax, relax
from assyst_nodes.stages.split import PARTS, Split, split
from assyst_nodes.stages.weights import Weights, energies_above_hull, energy_of, weigh


class Smeared(Calculator):
    """EMT whose ``free_energy`` is EMT's energy (the forces are its derivatives) and whose
    ``energy`` is shifted by 0.1 eV per Å of the first atom's x: a stand-in for a DFT code
    under electronic smearing, where ``energy`` is an extrapolation the forces do not fit."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        work = self.atoms.copy()
        work.calc = AseEMT()
        free = work.get_potential_energy()
        self.results = {
            "free_energy": free,
            "energy": free + 0.1 * self.atoms.positions[0, 0],
            "forces": work.get_forces(),
            "stress": work.get_stress(),
        }


def crystal(name: str, key: int, **kwargs) -> Atoms:
    """A crystal with a uuid (its own seed)."""
    return update_uuid(bulk(name, **kwargs), "fixture", key)


def test_label_keeps_energy_and_free_energy_as_the_calculator_gives_them() -> None:
    cell = crystal("Cu", 0, a=3.6, cubic=True)
    cell.rattle(0.05, seed=1)
    (labelled, *isolated) = label([cell], Smeared())
    results = labelled.calc.results
    assert results["energy"] != results["free_energy"]
    direct = cell.copy()
    direct.calc = Smeared()
    assert results["free_energy"] == direct.get_potential_energy(force_consistent=True)
    assert results["energy"] == direct.get_potential_energy()
    assert energy_of(labelled) == results["free_energy"]  # the default: consistent with forces
    assert energy_of(labelled, "energy") == results["energy"]
    # the free energy is the one whose derivative the forces are (central differences)
    step, atom = 1e-4, 1
    shifted = []
    for sign in (1, -1):
        moved = cell.copy()
        moved.positions[atom, 0] += sign * step
        moved.calc = Smeared()
        shifted.append(moved.get_potential_energy(force_consistent=True))
    assert -(shifted[0] - shifted[1]) / (2 * step) == pytest.approx(
        results["forces"][atom, 0], abs=1e-5
    )
    # a relaxation records it too: its last point's free energy
    relaxed = relax([cell], FullRelax(calculator=Smeared(), max_steps=3))[0]
    assert relaxed.calc.results["free_energy"] != relaxed.calc.results["energy"]
    assert [a.info["config_type"] for a in isolated] == ["IsolatedAtom"]


def test_isolated_atoms_are_one_atom_in_a_box_with_a_stable_uuid_and_spin() -> None:
    atoms = isolated_atoms(["Cu", "Ag", "Cu"], IsolatedAtoms(box=10.0))
    assert [a.get_chemical_formula() for a in atoms] == ["Ag", "Cu"]
    for a in atoms:
        assert np.allclose(a.cell, np.eye(3) * 10) and a.pbc.all()
        assert np.allclose(a.positions, [[5, 5, 5]])
        assert a.info["config_type"] == "IsolatedAtom" and a.info[SEED] == a.info[UUID]
        assert a.info[STEP] == "isolated_atom(box=10)"
        assert a.get_initial_magnetic_moments().tolist() == [1.0]  # Hund: 4d10 5s1 / 3d10 4s1
    again = isolated_atoms(["Ag"], IsolatedAtoms(box=10.0))
    assert again[0].info[UUID] == atoms[0].info[UUID]
    other = isolated_atoms(["Ag"], IsolatedAtoms(box=12.0, spin_polarized=False))
    assert other[0].info[UUID] != atoms[0].info[UUID]
    assert other[0].get_initial_magnetic_moments().tolist() == [0.0]
    assert str(IsolatedAtoms(spin_polarized=False)) == "isolated_atom(box=12, spin_polarized=False)"
    assert pickle.loads(pickle.dumps(IsolatedAtoms())) == IsolatedAtoms()
    with pytest.raises(ValueError, match="finite length > 0 Å, got -1"):
        IsolatedAtoms(box=-1)
    with pytest.raises(TypeError, match="must be True or False"):
        IsolatedAtoms(spin_polarized="yes")
    with pytest.raises(ValueError, match="'Xx' is not a chemical symbol"):
        isolated_atoms(["Xx"])
    with pytest.raises(TypeError, match="a list of symbols"):
        isolated_atoms("CuAg")


def test_isolated_atom_energies_are_the_calculators_single_atom_in_the_box() -> None:
    out = label([crystal("Cu", 0, a=3.6), crystal("Ag", 1, a=4.1)], EMT())
    isolated = {a.get_chemical_formula(): a for a in out if a.info["config_type"] == "IsolatedAtom"}
    for element, atoms in isolated.items():
        alone = Atoms(element, positions=[[6, 6, 6]], cell=[12] * 3, pbc=True)
        alone.calc = AseEMT()
        assert atoms.get_potential_energy() == alone.get_potential_energy()
    assert sorted(isolated) == ["Ag", "Cu"]
    assert len(label([crystal("Cu", 0, a=3.6)], EMT(), isolated=None)) == 1


def equivalent_copies() -> list[Atoms]:
    """fcc Cu four ways (primitive, conventional, rotated and shifted, atoms permuted), each of
    another seed crystal, and two structures that are not the same: a rattle and a strain."""
    primitive = crystal("Cu", 0, a=3.6)
    conventional = crystal("Cu", 1, a=3.6, cubic=True)
    turned = crystal("Cu", 2, a=3.6, cubic=True)
    turned.rotate(30, "z", rotate_cell=True)
    turned.translate([0.3, 0.1, 0.2])
    turned.wrap()
    permuted = crystal("Cu", 3, a=3.6, cubic=True)[[3, 1, 0, 2]]
    rattled = crystal("Cu", 4, a=3.6, cubic=True)
    rattled.rattle(0.03, seed=2)
    strained = crystal("Cu", 5, a=3.6 * 1.02, cubic=True)
    return [conventional, turned, primitive, permuted, rattled, strained]


def test_equivalent_structures_are_grouped_and_the_smallest_stands_for_them() -> None:
    structures = equivalent_copies()
    groups = duplicate_groups(structures)
    assert groups == [[2, 0, 1, 3], [4], [5]]  # the one-atom cell stands for the fcc group
    labelled = label(structures, EMT(), isolated=None, report=(report := StageReport()))
    assert len(labelled) == 3
    kept = labelled[0]
    assert kept.info[LINEAGE][-1] == structures[2].info[UUID]
    assert kept.info["duplicates"] == [structures[i].info[UUID] for i in (0, 1, 3)]
    assert "duplicates" not in labelled[1].info
    assert report.dropped == {"duplicate": 3} and report.n_lost == 0
    assert (report.n_in, report.n_out) == (6, 3)
    # the families merge: fcc relaxed from four seeds is one family
    family = {a.info[LINEAGE][-1]: a.info["family"] for a in labelled}
    assert family[structures[2].info[UUID]] == min(structures[i].info[SEED] for i in (0, 1, 2, 3))
    assert len(set(family.values())) == 3
    assert len(label(structures, EMT(), duplicates=None, isolated=None)) == 6
    looser = Duplicates(length_tolerance=0.05, site_tolerance=0.05)
    assert len(duplicate_groups(structures, looser)) < 3  # the strain and rattle join at 5 %


def test_duplicate_verdicts_are_those_of_pymatgens_group_structures() -> None:
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = equivalent_copies()
    for k, (name, a) in enumerate([("Ag", 4.09), ("Ag", 4.09), ("Cu", 2.87)]):
        structures.append(crystal(name, 10 + k, a=a, crystalstructure="bcc" if k == 2 else "fcc"))
    structures += relax(structures[:3], VolumeRelax(max_steps=20))
    settings = Duplicates()

    def grouped(reduce: bool) -> list[list[int]]:
        matcher = StructureMatcher(  # reduced here already: no second primitive search
            ltol=settings.length_tolerance, stol=settings.site_tolerance,
            angle_tol=settings.angle_tolerance, primitive_cell=not reduce, scale=False,
            attempt_supercell=False,
        )
        converted = []
        for atoms in structures:
            structure = AseAtomsAdaptor.get_structure(atoms)
            if reduce:  # the primitive cell at the site tolerance, as duplicate_groups finds it
                per_atom = (structure.volume / len(structure)) ** (1 / 3)
                structure = structure.get_primitive_structure(settings.site_tolerance * per_atom)
            converted.append(structure)
        index = {id(s): i for i, s in enumerate(converted)}
        return sorted(sorted(index[id(s)] for s in g) for g in matcher.group_structures(converted))

    ours = sorted(sorted(g) for g in duplicate_groups(structures, settings))
    assert ours == grouped(reduce=True)
    # pymatgen's own primitive search (0.25 Å) calls the 0.03 Å rattle fcc; it is not
    plain = grouped(reduce=False)
    assert [4] in ours and not any(4 in g and len(g) == 1 for g in plain)
    assert [g for g in ours if 4 not in g and 0 not in g] == [
        g for g in plain if 4 not in g and 0 not in g
    ]


def test_families_merge_transitively_and_do_not_depend_on_order() -> None:
    structures = [crystal("Cu", k, a=3.6) for k in range(5)]
    seeds = [a.info[SEED] for a in structures]
    names = families(structures, [[0, 1], [1, 2], [3], [4]])
    assert names[0] == names[1] == names[2] == min(seeds[:3])
    assert names[3] == seeds[3] and names[4] == seeds[4]
    assert families(structures[::-1], [[4, 3], [3, 2], [1], [0]]) == names[::-1]


def test_origin_names_the_stage_that_made_the_structure() -> None:
    sampled = crystal("Cu", 0, a=3.6, cubic=True)
    assert origin_of(sampled) == "sampled"
    volume = relax([sampled], VolumeRelax(max_steps=2))[0]
    assert origin_of(volume) == "volume_relaxed"
    full = relax([volume], FullRelax(max_steps=2, pressure_gpa=1.0))[0]
    assert full.info[STEP].startswith("full_relax(") and origin_of(full) == "relaxed"
    from assyst_nodes.stages.perturb import Rattle, perturb

    (rattled,) = perturb([full], [Rattle(0.05, create_supercells=False)], rng=1)
    assert origin_of(rattled) == "perturbed"
    rattled.info["config_type"] = "mine"
    assert origin_of(rattled) == "mine"  # the user's own origin is kept


families_and_sizes = st.lists(st.integers(1, 12), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(
    sizes=families_and_sizes,
    fractions=st.sampled_from([(0.8, 0.1, 0.1), (0.5, 0.5, 0.0), (1.0, 0.0, 0.0), (0.6, 0.2, 0.2)]),
    seed=st.integers(0, 2**31),
    order=st.randoms(use_true_random=False),
)
def test_split_keeps_every_family_in_one_part_reproducibly(sizes, fractions, seed, order) -> None:
    structures = []
    for family, size in enumerate(sizes):
        for k in range(size):
            atoms = Atoms("Cu", cell=[3, 3, 3], pbc=True)
            atoms.info.update({UUID: f"s{family}-{k}", "family": f"f{family}"})
            structures.append(atoms)
    isolated = Atoms("Cu", cell=[12] * 3, pbc=True)
    isolated.info.update({UUID: "iso", "config_type": "IsolatedAtom", "family": "iso"})
    structures.append(isolated)
    settings_ = Split(*fractions, seed=seed)
    parts = split(structures, settings_)
    assert sorted(a.info[UUID] for p in parts.values() for a in p) == sorted(
        a.info[UUID] for a in structures
    )
    where = {}
    for name, members in parts.items():
        for atoms in members:
            assert where.setdefault(atoms.info["family"], name) == name  # no family in two
    assert where["iso"] == "train"
    for name, fraction in zip(PARTS, fractions, strict=True):
        if fraction == 0:
            assert parts[name] == []
    shuffled = list(structures)
    order.shuffle(shuffled)
    again = split(shuffled, settings_)
    assert {n: sorted(a.info[UUID] for a in p) for n, p in again.items()} == {
        n: sorted(a.info[UUID] for a in p) for n, p in parts.items()
    }


def test_split_seed_changes_which_families_go_where_and_bad_fractions_are_named() -> None:
    structures = []
    for family in range(40):
        atoms = Atoms("Cu", cell=[3, 3, 3], pbc=True)
        atoms.info.update({UUID: f"s{family}", "family": f"f{family}"})
        structures.append(atoms)
    first = split(structures, Split(seed=0))
    assert [len(first[p]) for p in PARTS] == [32, 4, 4]
    other = split(structures, Split(seed=1))
    assert [a.info[UUID] for a in first["test"]] != [a.info[UUID] for a in other["test"]]
    with pytest.raises(ValueError, match=re.escape("sum to 1, got train=0.8 + validation=0.3")):
        Split(0.8, 0.3, 0.1)
    with pytest.raises(ValueError, match=re.escape("fraction in [0, 1], got -0.1")):
        Split(1.0, 0.1, -0.1)
    with pytest.raises(TypeError, match=r"Split\.seed must be an int"):
        Split(seed=1.5)


def _hull_above_independently(points: list[tuple[float, float]]) -> list[float]:
    """Energy above the lower hull of (x, e) points of a binary, by brute force over pairs."""
    above = []
    for x, e in points:
        lowest = np.inf
        for x1, e1 in points:
            for x2, e2 in points:
                if x1 <= x <= x2 and x2 > x1:
                    lowest = min(lowest, e1 + (e2 - e1) * (x - x1) / (x2 - x1))
                elif x1 == x2 == x:
                    lowest = min(lowest, e1)
        above.append(e - lowest)
    return above


def test_energy_above_the_hull_agrees_with_a_brute_force_hull() -> None:
    rng = np.random.default_rng(3)
    structures = []
    for k in range(30):
        n_ag = int(rng.integers(0, 5))
        symbols = ["Ag"] * n_ag + ["Cu"] * (4 - n_ag)
        atoms = Atoms(symbols, positions=rng.random((4, 3)) * 4, cell=[4, 4, 4], pbc=True)
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms.calc = SinglePointCalculator(
            atoms, energy=float(rng.normal(0, 1)) * 4, forces=np.zeros((4, 3))
        )
        atoms.info[UUID] = f"s{k}"
        structures.append(atoms)
    got = energies_above_hull(structures)
    points = [(a.get_chemical_symbols().count("Ag") / 4, a.get_potential_energy() / 4)
              for a in structures]
    assert got == pytest.approx(_hull_above_independently(points), abs=1e-9)
    no_ag = [a for a in structures if "Ag" not in a.get_chemical_symbols()]
    mixed = [a for a in structures if 0 < a.get_chemical_symbols().count("Ag") < 4]
    with pytest.raises(ValueError, match=r"\['Ag'\] has none: label with isolated atoms"):
        energies_above_hull(no_ag + mixed)


def test_weights_per_origin_and_for_extremes() -> None:
    from ase.calculators.singlepoint import SinglePointCalculator

    def labelled(origin: str, energy: float, force: float) -> Atoms:
        atoms = Atoms("Cu", cell=[3, 3, 3], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=[[force, 0, 0]])
        atoms.info["config_type"] = origin
        return atoms

    structures = [
        labelled("relaxed", 0.0, 0.0),
        labelled("sampled", 0.5, 1.0),
        labelled("sampled", 2.0, 1.0),  # 2 eV/atom above the hull
        labelled("perturbed", 0.1, 30.0),
        labelled("perturbed", 20.0, 1.0),  # beyond 10 eV/atom
        labelled("perturbed", 0.1, 60.0),  # beyond 50 eV/Å
        labelled("IsolatedAtom", 40.0, 0.0),
    ]
    assert weigh(structures).tolist() == [1, 1, 1, 1, 0, 0, 1]
    chosen = Weights(origins={"sampled": 0.5}, high_energy=1.0, high_force=20.0, high_weight=0.1,
                     max_energy=None, max_force=None)
    assert weigh(structures, chosen) == pytest.approx([1, 0.5, 0.05, 0.1, 0.1, 0.1, 1])
    assert Weights(origins={"b": 1, "a": 2}).origins == (("a", 2.0), ("b", 1.0))
    assert hash(chosen) == hash(pickle.loads(pickle.dumps(chosen)))
    with pytest.raises(ValueError, match=re.escape("max_force must be a finite number > 0")):
        Weights(max_force=0)
    with pytest.raises(ValueError, match=re.escape("origins['sampled'] must be a finite")):
        Weights(origins={"sampled": -1})
    with pytest.raises(TypeError, match=r"Weights\.origins must map origins to weights"):
        Weights(origins="sampled")


def test_no_isolated_atoms_without_one_calculator_for_them() -> None:
    cell = crystal("Cu", 0, a=3.6, cubic=True)
    cell.calc = AseEMT()
    out = label([cell], None)  # each structure's own calculator: none for an atom alone
    assert [a.info["config_type"] for a in out] == ["sampled"]
    with pytest.raises(TypeError, match="isolated must be IsolatedAtoms"):
        label([cell], EMT(), isolated=12.0)
    with pytest.raises(TypeError, match="duplicates must be Duplicates"):
        label([cell], EMT(), duplicates=0.01)


def test_energy_limits_without_a_hull_warn_and_the_force_limits_still_apply() -> None:
    from ase.calculators.singlepoint import SinglePointCalculator

    structures = []
    for symbols, force in [("CuAg", 1.0), ("CuAg", 80.0)]:
        atoms = Atoms(symbols, positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[3] * 3, pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=100.0, forces=[[force, 0, 0]] * 2)
        structures.append(atoms)
    with pytest.warns(RuntimeWarning, match=r"\['Ag', 'Cu'\] has none.*not applied"):
        assert weigh(structures).tolist() == [1.0, 0.0]  # 80 eV/Å is beyond max_force
