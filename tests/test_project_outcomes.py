"""No structure relaxed or labelled twice in a project: per-structure outcomes are reused
across jobs of the same stage and settings, a run killed half-way resumes at the structure, and
structures lost to their workers are the only ones computed again."""

from __future__ import annotations

import os
import textwrap
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from assyst_nodes.calculators import EMT, ImportedCalculator
from assyst_nodes.lineage import UUID, update_uuid
from assyst_nodes.nodes import stages
from assyst_nodes.project import ProjectRecorder, open_project, structure_frame
from assyst_nodes.stages.relax import VolumeRelax

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

RELAX = VolumeRelax(max_steps=8, calculator=EMT())

INTERRUPTING = textwrap.dedent(
    """
    import os
    from ase.calculators.emt import EMT

    class InterruptingEMT(EMT):
        '''EMT that stops the whole process (KeyboardInterrupt, as Ctrl-C or a kill would) on
        cells whose lattice constant is at least ASSYST_TEST_STOP_AT Å.'''

        def calculate(self, atoms=None, *args, **kwargs):
            stop = float(os.environ.get("ASSYST_TEST_STOP_AT", "inf"))
            if atoms is not None and atoms.info.get("a", 0.0) >= stop:
                raise KeyboardInterrupt("stopped")
            super().calculate(atoms, *args, **kwargs)
    """
)


def cells(n: int, element: str = "Cu") -> list[Atoms]:
    """``n`` fcc cells with uuids, lattice constants 3.5 + 0.05 k Å (in ``info["a"]``)."""
    out = []
    for k in range(n):
        atoms = bulk(element, "fcc", a=3.5 + 0.05 * k, cubic=True)
        atoms.info["a"] = 3.5 + 0.05 * k
        out.append(update_uuid(atoms, "fixture", (element, k)))
    return out


def same(a: list[Atoms], b: list[Atoms]) -> None:
    """Bit for bit: uuids, positions, cells, energies, forces."""
    assert [x.info[UUID] for x in a] == [y.info[UUID] for y in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.positions, y.positions)
        assert np.array_equal(x.cell.array, y.cell.array)
        assert x.get_potential_energy() == y.get_potential_energy()
        assert np.array_equal(x.get_forces(), y.get_forces())


def test_a_grown_input_relaxes_only_the_new_structures(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    first, report = stages.relax(cells(3), RELAX, recorder=recorder)
    assert "reused" not in report.flags
    grown, report = stages.relax(cells(5), RELAX, recorder=recorder)
    assert report.flags["reused"] == 3 and report.n_in == 5 and report.n_out == 5
    fresh, _ = stages.relax(cells(5), RELAX)  # in memory, everything computed
    same(grown, fresh)
    same(grown[:3], first)
    frame = structure_frame(tmp_path / "proj")  # each uuid once, from the job that made it
    assert frame["uuid"].is_unique and len(frame) == 5
    ids = list(open_project(tmp_path / "proj").job_table()["id"])
    by_uuid = frame.set_index("uuid")["job_id"]
    assert [by_uuid[a.info[UUID]] for a in grown] == [ids[0]] * 3 + [ids[1]] * 2
    # labelling: only the structures not labelled before
    stages.label(grown[:2], EMT(), recorder=recorder)
    more, report = stages.label(grown, EMT(), recorder=recorder)
    assert report.flags["reused"] == 2
    same(more, stages.label(grown, EMT())[0])


def test_a_known_failure_is_not_computed_again_but_a_new_setting_computes_all(
    tmp_path: Path,
) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    fe = cells(1, "Fe")  # EMT has no Fe: calculator_error
    _, report = stages.relax(fe + cells(1), RELAX, recorder=recorder)
    assert report.dropped == {"calculator_error": 1}
    _, report = stages.relax(fe + cells(2), RELAX, recorder=recorder)
    assert report.flags["reused"] == 2 and report.dropped == {"calculator_error": 1}
    other = VolumeRelax(max_steps=9, calculator=EMT())  # other settings: nothing to reuse
    _, report = stages.relax(fe + cells(2), other, recorder=recorder)
    assert "reused" not in report.flags


def test_a_relaxation_stopped_half_way_resumes_at_the_structure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "interrupting.py").write_text(INTERRUPTING)
    monkeypatch.syspath_prepend(str(tmp_path))
    stopping = ImportedCalculator("interrupting:InterruptingEMT")
    settings = VolumeRelax(max_steps=8, calculator=stopping)
    recorder = ProjectRecorder(tmp_path / "proj")
    monkeypatch.setenv("ASSYST_TEST_STOP_AT", "3.64")  # the 4th of 6 cells stops the run
    with pytest.raises(KeyboardInterrupt):
        stages.relax(cells(6), settings, recorder=recorder, chunksize=1)
    table = open_project(tmp_path / "proj").job_table()
    assert list(table["status"]) == ["aborted"]
    monkeypatch.delenv("ASSYST_TEST_STOP_AT")
    resumed, report = stages.relax(cells(6), settings, recorder=recorder, chunksize=1)
    assert report.flags["reused"] == 3  # the three done before the stop
    same(resumed, stages.relax(cells(6), settings)[0])
    table = open_project(tmp_path / "proj").job_table()
    assert list(table["status"]) == ["finished"] and len(table) == 1


def test_a_labelling_run_stopped_half_way_resumes_at_the_structure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "interrupting.py").write_text(INTERRUPTING)
    monkeypatch.syspath_prepend(str(tmp_path))
    reference = ImportedCalculator("interrupting:InterruptingEMT")  # stands in for DFT
    recorder = ProjectRecorder(tmp_path / "proj")
    monkeypatch.setenv("ASSYST_TEST_STOP_AT", "3.69")  # the 5th of 6 cells stops the run
    with pytest.raises(KeyboardInterrupt):
        stages.label(cells(6), reference, recorder=recorder, chunksize=1)
    [status] = open_project(tmp_path / "proj").job_table()["status"]
    assert status == "aborted"
    monkeypatch.delenv("ASSYST_TEST_STOP_AT")
    resumed, report = stages.label(cells(6), reference, recorder=recorder, chunksize=1)
    # the four labelled before; the six and the isolated Cu atom out
    assert report.flags["reused"] == 4 and report.n_out == 7
    same(resumed, stages.label(cells(6), reference)[0])
    [status] = open_project(tmp_path / "proj").job_table()["status"]
    assert status == "finished"


class LosingExecutor(Executor):
    """Runs each chunk at once in this process, but every chunk holding the structure ``lose``
    (by uuid) is lost, as a SLURM job cancelled each time it is (re)submitted."""

    def __init__(self, lose: str) -> None:
        self.lose = lose

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if any(a.info.get(UUID) == self.lose for a in args[-1]):
            future.set_exception(RuntimeError("job 77 CANCELLED by scancel"))
        else:
            future.set_result(fn(*args, **kwargs))
        return future


def test_structures_lost_to_their_workers_are_the_only_ones_computed_again(
    tmp_path: Path,
) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    inputs = cells(6)
    with LosingExecutor(inputs[4].info[UUID]) as pool:
        kept, report = stages.relax(inputs, RELAX, executor=pool, chunksize=2, recorder=recorder)
    assert len(kept) == 4 and report.dropped == {"worker_lost": 2}
    assert all("CANCELLED" in d.detail for d in report.drops)
    assert report.execution["resubmitted"] == 1  # once, by default; then given up
    assert report.execution["executor"] == "LosingExecutor"
    project = open_project(tmp_path / "proj")
    assert list(project.job_table()["status"]) == ["warning"]
    stored = project.load(project.job_table()["job"].iloc[0])
    assert stored.output.report.execution["chunks"] == 2  # where it ran is stored
    rerun, report = stages.relax(inputs, RELAX, recorder=recorder)
    assert report.flags["reused"] == 4 and report.n_out == 6 and not report.drops
    same(rerun, stages.relax(inputs, RELAX)[0])
    table = project.job_table()
    assert list(table["status"]) == ["finished"] and len(table) == 1
    assert os.path.exists(tmp_path / "proj" / f"{table['job'].iloc[0]}.h5")


def _sampled(recorder: Any = None, **changes: Any) -> tuple[list[Atoms], Any]:
    """Cu-Ag crystals of up to 3 atoms (seed 3), 10 of them unless ``changes`` say otherwise."""
    from assyst_nodes.stages.sample import Formulas

    kwargs: dict[str, Any] = {
        "formulas": Formulas.range(("Cu", "Ag"), 0, 4), "spacegroups": list(range(1, 231)),
        "max_atoms": 3, "max_structures": 10, "tolerance": 0.9, "seed": 3,
    }
    kwargs.update(changes)
    return stages.sample(**kwargs, recorder=recorder, progress=False)


def _same_crystals(a: list[Atoms], b: list[Atoms]) -> None:
    assert [x.info[UUID] for x in a] == [y.info[UUID] for y in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.positions, y.positions)
        assert np.array_equal(x.cell.array, y.cell.array)
        assert x.info["rng_seed"] == y.info["rng_seed"]


def test_a_grown_sample_draws_only_the_new_grid_points(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    first, report = _sampled(recorder)
    assert "reused" not in report.flags
    visited = report.n_in  # grid points visited to make 10 crystals (incompatible ones too)
    grown, report = _sampled(recorder, max_structures=14)
    assert report.flags["reused"] == visited and report.n_out == 14
    fresh, fresh_report = _sampled(max_structures=14)  # in memory, every point drawn
    _same_crystals(grown, fresh)
    _same_crystals(grown[:10], first)
    assert [d.label for d in report.drops] == [d.label for d in fresh_report.drops]
    # more compositions (4 atoms) and parallel workers: the points drawn before are still
    # read, not drawn, and the result is that of a fresh run
    from assyst_nodes.stages.sample import Formulas

    four = Formulas.range(("Cu", "Ag"), 0, 5)
    wider, report = _sampled(recorder, formulas=four, max_atoms=4, max_structures=20, workers=2)
    fresh, _ = _sampled(formulas=four, max_atoms=4, max_structures=20)
    _same_crystals(wider, fresh)
    assert report.flags["reused"] > 0
    # another tolerance may make other crystals: nothing is reused
    other, report = _sampled(recorder, tolerance=1.0)
    assert "reused" not in report.flags
    _same_crystals(other, _sampled(tolerance=1.0)[0])


def test_grid_points_lost_to_the_time_limit_are_drawn_again(tmp_path: Path) -> None:
    recorder = ProjectRecorder(tmp_path / "proj")
    first, report = _sampled(recorder, time_limit=1e-4)  # no pyxtal draw ends in 0.1 ms
    assert any(d.reason == "time_limit" for d in report.drops) and len(first) < 10
    again, report = _sampled(recorder)
    # incompatible points are known (reused); those that ran out of time are drawn this time
    assert report.flags["reused"] > 0 and report.n_out == 10
    assert report.flags["reused"] <= report.n_in - (10 - len(first))
    assert not any(d.reason == "time_limit" for d in report.drops)
    fresh, _ = _sampled()
    _same_crystals(again, fresh)


def test_relaxing_with_the_attached_calculator_is_refused_into_a_project(tmp_path: Path) -> None:
    """A project reuses relaxations by input uuid and settings: a live calculator attached to
    the structures cannot be part of that key, so ``calculator=None`` is refused there when
    structures carry one, and recorded as ``EMT()`` (what it uses) when none does."""
    from ase.calculators.emt import EMT as AseEMT

    recorder = ProjectRecorder(tmp_path / "proj")
    carrying = cells(2)
    for atoms in carrying:
        atoms.calc = AseEMT()
    with pytest.raises(TypeError, match=r"calculator=None.*EMT.*pass calculator="):
        stages.relax(carrying, VolumeRelax(max_steps=8), recorder=recorder)
    bare, _ = stages.relax(cells(2), VolumeRelax(max_steps=8), recorder=recorder)
    again, report = stages.relax(cells(2), RELAX, recorder=recorder)  # explicit EMT(): reused
    assert report.flags["reused"] == 2 or len(open_project(tmp_path / "proj").job_table()) == 1
    same(bare, again)
