"""The pyxtal speed-up changes no crystal, hands pyxtal its prebuilt matrix where a call reads
one, installs once, and leaves an unknown pyxtal alone."""

from __future__ import annotations

import numpy as np
import pytest
import pyxtal.operations
import pyxtal.symmetry
from pyxtal.tolerance import Tol_matrix

from assyst_nodes.lineage import UUID
from assyst_nodes.stages import pyxtal_speedup
from assyst_nodes.stages.sample import Formulas, sample


def crystals(seed: int) -> list[tuple[str, bytes, bytes, list[str]]]:
    """uuids, positions, cells and species of a Cu-Ag grid of six groups."""
    formulas = Formulas.range(("Cu", "Ag"), 0, 4)
    groups = [1, 2, 14, 47, 191, 225]
    out = sample(formulas, groups, max_atoms=2, tolerance={"Cu": 0.9, "Ag": 1.0}, rng=seed)
    return [
        (a.info[UUID], a.positions.tobytes(), a.cell.array.tobytes(), a.get_chemical_symbols())
        for a in out
    ]


@pytest.mark.parametrize("seed", [3, 4])
def test_sampling_with_the_speed_up_gives_the_same_crystals_bit_for_bit(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyxtal_speedup.uninstall()
    monkeypatch.setattr(pyxtal_speedup, "install", lambda: False)  # sample cannot install it
    plain = crystals(seed)
    assert pyxtal.symmetry.check_images is pyxtal.operations.check_images
    monkeypatch.undo()
    faster = crystals(seed)  # sample installs it
    assert pyxtal_speedup.installed()
    assert pyxtal.symmetry.check_images is not pyxtal.operations.check_images
    assert plain and faster == plain


def test_install_is_idempotent_and_uninstall_restores_pyxtal() -> None:
    original = pyxtal.operations.check_images
    assert pyxtal_speedup.install() and pyxtal_speedup.install()
    patched = pyxtal.symmetry.check_images
    assert patched is not original and patched.__wrapped__ is original
    assert pyxtal_speedup.install() and pyxtal.symmetry.check_images is patched  # not twice
    pyxtal_speedup.uninstall()
    assert pyxtal.symmetry.check_images is original and not pyxtal_speedup.installed()
    pyxtal_speedup.uninstall()  # a no-op now
    assert pyxtal_speedup.install()


def test_a_pyxtal_whose_check_images_looks_different_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pyxtal_speedup.uninstall()

    def check_images(coords, species, lattice, PBC=None, tm=None):  # type: ignore[no-untyped-def]
        return True

    monkeypatch.setattr(pyxtal.symmetry, "check_images", check_images)
    assert not pyxtal_speedup.install()
    assert pyxtal.symmetry.check_images is check_images  # untouched
    monkeypatch.setattr(pyxtal.operations, "check_images", check_images)
    assert not pyxtal_speedup.install()  # same object, other parameters
    monkeypatch.undo()
    assert pyxtal_speedup.install()


# (coords, species, cubic lattice constant Å): the atomic radii decide, no ``tol`` override
IMAGE_CASES = [
    ([[0.0, 0.0, 0.0]], ["Cu"], 1.3),  # Cu-Cu images 1.3 Å apart: below 1.32 Å, too close
    ([[0.0, 0.0, 0.0]], ["Cu"], 1.4),
    ([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], ["Cu", "Ag"], 1.5),  # 1.30 Å Cu-Ag: below 1.385 Å
    ([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], ["Cu", "Ag"], 1.7),  # 1.47 Å apart: far enough
    ([[0.0, 0.0, 0.0]], ["Ag"], 1.4),  # Ag-Ag 1.45 Å: too close at 1.4 Å
]


def test_the_prebuilt_matrix_is_what_a_call_without_tol_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The path the sampling grid never takes (pyxtal's callers pass ``tol``): without ``tm``
    and ``tol`` the wrapper hands pyxtal its prebuilt atomic matrix, which gives pyxtal's own
    answers while no ``Tol_matrix`` is built per call."""
    pyxtal_speedup.uninstall()
    original = pyxtal.operations.check_images
    expected = [original(c, s, np.eye(3) * a) for c, s, a in IMAGE_CASES]
    assert True in expected and False in expected  # the cases tell the radii apart
    assert pyxtal_speedup.install()
    wrapper = pyxtal.symmetry.check_images
    assert wrapper is not original

    built: list[object] = []

    class CountedTolMatrix(Tol_matrix):
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(args or kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pyxtal.operations, "Tol_matrix", CountedTolMatrix)
    assert [wrapper(c, s, np.eye(3) * a) for c, s, a in IMAGE_CASES] == expected
    assert built == []  # the wrapper ran and passed its matrix: pyxtal built none
    assert [original(c, s, np.eye(3) * a) for c, s, a in IMAGE_CASES] == expected
    assert len(built) == len(IMAGE_CASES)  # pyxtal's own builds one per call (the counter works)

    # a matrix or a tol passed by the caller wins over the prebuilt one
    wide = Tol_matrix(prototype="atomic", factor=10.0)
    coords, species, a = IMAGE_CASES[1]
    assert wrapper(coords, species, np.eye(3) * a) is True
    assert wrapper(coords, species, np.eye(3) * a, tm=wide) is False
    assert wrapper(coords, species, np.eye(3) * a, tol=2.0) is False
