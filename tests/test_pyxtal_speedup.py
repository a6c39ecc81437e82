"""The pyxtal speed-up changes no crystal, installs once, and leaves an unknown pyxtal alone."""

from __future__ import annotations

import pytest
import pyxtal.operations
import pyxtal.symmetry

from assyst_nodes import pyxtal_speedup
from assyst_nodes.crystals import Formulas, sample
from assyst_nodes.lineage import UUID


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
