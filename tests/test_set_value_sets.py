"""The pools of issue 25's learning curves (``benchmarks/set_value_sets.py``) on tiny sizes:
bit-for-bit reproducible, nested subsets that keep the isolated atoms, the hand-made set's
phases and the random cells' space group, and the cache."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from ase import Atoms

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load() -> ModuleType:
    """``benchmarks/set_value_sets.py`` imported as a module (the folder is not a package)."""
    path = BENCHMARKS / "set_value_sets.py"
    spec = importlib.util.spec_from_file_location("set_value_sets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("set_value_sets", module)
    spec.loader.exec_module(module)
    return module


sets = load()


def fingerprint(atoms: Atoms) -> tuple[Any, ...]:
    """Geometry, labels and info of ``atoms`` as bytes and values: equal only bit for bit."""
    calc = atoms.calc
    return (
        atoms.numbers.tobytes(),
        atoms.positions.tobytes(),
        atoms.cell.array.tobytes(),
        atoms.pbc.tobytes(),
        np.float64(calc.results["energy"]).tobytes(),
        calc.results["forces"].tobytes(),
        np.asarray(calc.results["stress"]).tobytes(),
        repr(sorted(atoms.info.items())),
    )


@pytest.fixture(scope="module")
def assyst_twice() -> tuple[list[Atoms], list[Atoms]]:
    return sets.assyst_pool(3, 20), sets.assyst_pool(3, 20)


@pytest.fixture(scope="module")
def random_twice() -> tuple[list[Atoms], list[Atoms]]:
    return sets.random_cell_pool(1, 20), sets.random_cell_pool(1, 20)


@pytest.fixture(scope="module")
def hand_made() -> list[Atoms]:
    return sets.hand_made_pool(2, 60)


@pytest.mark.slow
def test_assyst_and_random_pools_are_reproducible_bit_for_bit(
    assyst_twice: tuple[list[Atoms], list[Atoms]], random_twice: tuple[list[Atoms], list[Atoms]]
) -> None:
    for first, second in (assyst_twice, random_twice):
        assert [fingerprint(a) for a in first] == [fingerprint(a) for a in second]


def test_hand_made_pool_is_reproducible_and_depends_on_the_seed(hand_made: list[Atoms]) -> None:
    again = sets.hand_made_pool(2, 60)
    assert [fingerprint(a) for a in again] == [fingerprint(a) for a in hand_made]
    other = sets.hand_made_pool(3, 20)
    assert fingerprint(other[0]) != fingerprint(hand_made[0])


@pytest.mark.slow
def test_pools_hold_at_least_the_labels_asked_and_the_isolated_atoms(
    assyst_twice: tuple[list[Atoms], list[Atoms]],
    random_twice: tuple[list[Atoms], list[Atoms]],
    hand_made: list[Atoms],
) -> None:
    for pool, labels in ((assyst_twice[0], 20), (random_twice[0], 20), (hand_made, 60)):
        assert sets.count_labels(pool) >= labels
        isolated = [a for a in pool if sets.is_isolated(a)]
        assert sorted(a.get_chemical_formula() for a in isolated) == ["Ag", "Cu"]
        for atoms in pool:
            assert {"energy", "forces", "stress"} <= set(atoms.calc.results)
            assert atoms.info["config_type"] and atoms.info["family"]
    assert {a.info["config_type"] for a in assyst_twice[0]} == {
        "sampled", "volume_relaxed", "relaxed", "perturbed", "IsolatedAtom"
    }


@pytest.mark.slow
def test_random_cells_are_sampled_in_space_group_1_with_the_assyst_compositions(
    random_twice: tuple[list[Atoms], list[Atoms]],
) -> None:
    pool = [a for a in random_twice[0] if not sets.is_isolated(a)]
    assert {a.info["requested spacegroup"] for a in pool} == {1}
    sampled = [a for a in pool if a.info["config_type"] == "sampled"]
    formulas = {a.get_chemical_formula() for a in sampled}
    assert len(formulas) == 14  # every Cu-Ag composition of 1-4 atoms, once per run
    assert max(len(a) for a in sampled) == 4


def test_reference_optimizer_relaxes_both_stages_as_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assyst_nodes import pipeline
    from assyst_nodes.stages.relax import REFERENCE_OPTIMIZER, FullRelax, VolumeRelax

    calls: list[dict[str, Any]] = []

    class Seen(Exception):
        pass

    def fake(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise Seen  # stop once the arguments are seen

    monkeypatch.setattr(pipeline, "run_pipeline", fake)
    for reference in (False, True):
        with pytest.raises(Seen):
            sets.assyst_pool(0, 1000, reference_optimizer=reference)
    default, reference_call = calls
    assert "full_relax" not in default and "volume_relax" not in default
    assert reference_call["full_relax"] == FullRelax(**REFERENCE_OPTIMIZER)
    assert reference_call["volume_relax"] == VolumeRelax(**REFERENCE_OPTIMIZER)
    assert reference_call["max_structures"] == default["max_structures"] > 1000 / 7
    assert reference_call["rng"] == 0


def test_hand_made_pool_holds_every_phase_in_its_proportions_all_rattled(
    hand_made: list[Atoms],
) -> None:
    labelled = [a for a in hand_made if not sets.is_isolated(a)]
    assert len(labelled) >= 60  # near-duplicates (label stage's tolerances) are topped up
    assert {s for a in labelled for s in a.get_chemical_symbols()} == {"Cu", "Ag"}
    phases: dict[str, int] = {}
    for atoms in labelled:
        phases[atoms.info["phase"]] = phases.get(atoms.info["phase"], 0) + 1
        assert atoms.info["config_type"] == "hand_made"
        assert 0.01 <= atoms.info["rattle_sigma"] <= 0.1
        assert len(atoms) <= 32
    expected = {
        "fcc Cu": 18, "fcc Ag": 18, "L1_2 Cu3Ag": 6, "L1_2 CuAg3": 6, "L1_0 CuAg": 6,
        "B2 CuAg": 6,
    }
    assert phases.keys() == expected.keys()
    assert all(abs(phases[p] - n) <= 2 for p, n in expected.items()), phases
    assert {a.info["hand_made"] for a in labelled} >= {"rattled", "hydrostatic"}
    compositions = {a.info["phase"]: a.get_chemical_formula(empirical=True) for a in labelled}
    assert compositions["L1_2 Cu3Ag"] == "AgCu3" and compositions["B2 CuAg"] == "AgCu"
    # one-atom cells are always strained (a rattle alone would only translate the atom)
    assert all(a.info["hand_made"] != "rattled" for a in labelled if len(a) == 1)
    # each structure is its own family: a family split is a split by structure
    assert len({a.info["family"] for a in labelled}) == len(labelled)


def test_subsets_are_nested_keep_the_isolated_atoms_and_have_the_size(
    hand_made: list[Atoms],
) -> None:
    small, middle, large = (sets.subset(hand_made, n, seed=7) for n in (10, 30, 60))
    ids = [{a.info["uuid"] for a in s if not sets.is_isolated(a)} for s in (small, middle, large)]
    assert [len(i) for i in ids] == [10, 30, 60]
    assert ids[0] < ids[1] < ids[2]
    for part in (small, middle, large):
        assert sorted(a.get_chemical_formula() for a in part if sets.is_isolated(a)) == [
            "Ag", "Cu"
        ]
    assert [a.info["uuid"] for a in sets.subset(hand_made, 30, seed=7)] == [
        a.info["uuid"] for a in middle
    ]
    assert {a.info["uuid"] for a in sets.subset(hand_made, 30, seed=8)} != {
        a.info["uuid"] for a in middle
    }
    with pytest.raises(ValueError, match="size"):
        sets.subset(hand_made, sets.count_labels(hand_made) + 1, seed=7)


def test_pool_caches_by_kind_seed_labels_and_settings(tmp_path: Path) -> None:
    first = sets.pool_record("hand_made", 0, 40, tmp_path)
    assert not first["cached"]
    [path] = tmp_path.glob("*.pkl")
    assert path == sets.cache_path("hand_made", 0, 40, tmp_path)
    assert path.name.startswith("hand_made-seed0-labels40-")
    assert sets.settings_digest("hand_made") in path.name
    second = sets.pool_record("hand_made", 0, 40, tmp_path)
    assert second["cached"]
    assert [fingerprint(a) for a in second["structures"]] == [
        fingerprint(a) for a in first["structures"]
    ]
    assert "assyst_nodes" in second["settings"]
    with pytest.raises(ValueError, match="kind"):
        sets.pool("handmade", 0, 40, tmp_path)


def test_hand_made_structures_are_40_rattled_30_hydrostatic_30_sheared_per_cell() -> None:
    from assyst_nodes.calculators import EMT

    structures = sets.hand_made_structures(0, 400, sets._relaxed_phases(EMT()))
    assert len(structures) == 400
    by_cell: dict[tuple[str, str], list[str]] = {}
    for atoms in structures:
        by_cell.setdefault((atoms.info["phase"], atoms.info["cell"]), []).append(
            atoms.info["hand_made"]
        )
    assert len(by_cell) == len(sets.HAND_MADE_CELLS)
    for (phase, cell), kinds in by_cell.items():
        n = len(kinds)
        rattled = 0 if cell == "primitive" and phase.startswith("fcc") else 4 * n // 10
        assert kinds.count("rattled") == rattled
        assert kinds.count("sheared") == 3 * n // 10
        assert kinds.count("hydrostatic") == n - rattled - 3 * n // 10
