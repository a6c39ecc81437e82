"""The node layer, built and run the way a notebook would: stage and config nodes, the macro,
the macro inside a larger workflow, executors, progress and export."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyiron_workflow as pwf
import pytest
from ase import Atoms
from ase.io import read

from assyst_nodes import nodes
from assyst_nodes.calculators import EMT, Morse
from assyst_nodes.lineage import LINEAGE, RELAX_CONVERGED, SEED, STEP, UUID, chain
from assyst_nodes.pipeline import run_pipeline
from assyst_nodes.reports import StageReport
from assyst_nodes.runtime.progress import progress_bar, progress_wanted
from assyst_nodes.stages.filter import AspectFilter, DistanceFilter
from assyst_nodes.stages.perturb import RandomChoice, Rattle, Stretch
from assyst_nodes.stages.relax import FullRelax, VolumeRelax
from assyst_nodes.stages.sample import Formulas

GROUPS = [1, 2, 6, 10, 25, 47, 123, 191, 221]
PERTURBATIONS = [
    Rattle(0.05, create_supercells=True) + Stretch(hydro=0.03, shear=0.03),
    RandomChoice(Stretch(hydro=0.2, shear=0.02), Stretch(hydro=0.02, shear=0.1), 0.5),
]
TINY_MACRO = {
    "max_atoms": 2,
    "spacegroups": GROUPS,
    "max_structures": 4,
    "volume_relax": VolumeRelax(max_steps=15),
    "full_relax": FullRelax(max_steps=15),
    "perturbations": PERTURBATIONS,
    "seed": 11,
}

STAGE_FUNCTIONS = [
    nodes.sample,
    nodes.relax,
    nodes.label,
    nodes.perturb,
    nodes.filter_structures,
    nodes.combine,
    nodes.gather_reports,
    nodes.report_table,
    nodes.export,
    nodes.formulas_for,
    nodes.formulas_range,
    nodes.formulas_from,
    nodes.formulas_concat,
    nodes.formulas_pair,
    nodes.formulas_product,
    nodes.formulas_trim,
    nodes.with_calculator,
    nodes.series,
    nodes.perturbation_list,
    nodes.perturbations_or_default,
    nodes.assyst_filters,
    nodes.fit,
    nodes.fit_if,
    nodes.validate,
    nodes.validate_if,
]

EXAMPLE_FIELDS = {
    "Rattle": {"sigma": 0.1},
    "ElementScaledRattle": {"sigma": 0.05},
    "Stretch": {"hydro": 0.1, "shear": 0.05},
    "ImportedCalculator": {"path": "ase.calculators.emt:EMT"},
    "Series": {"perturbations": (Rattle(0.1), Stretch(0.1, 0.1))},
    "RandomChoice": {"a": Rattle(0.1), "b": Stretch(0.1, 0.1), "chance": 0.25},
    "ForceFilter": {"max_force": 5.0},
    "DistanceFilter": {"radii": 1.0},
    "AndFilter": {"left": DistanceFilter(1.0), "right": AspectFilter(6.0)},
    "OrFilter": {"left": DistanceFilter(1.0), "right": AspectFilter(6.0)},
    "NotFilter": {"operand": DistanceFilter(1.0)},
    "Slurm": {"partition": "debug", "workers": 4, "memory": 2.0, "run_time": 600.0},
    "Suite": {"elements": ("Cu",)},
}


def fingerprint(structures: list[Atoms]) -> list[tuple]:
    """What must be identical bit for bit between two runs."""
    return [
        (
            s.info[UUID],
            s.info[STEP],
            tuple(s.info[LINEAGE]),
            s.numbers.tobytes(),
            s.positions.tobytes(),
            s.cell.array.tobytes(),
            None if s.calc is None else s.calc.results.get("energy"),
        )
        for s in structures
    ]


@pytest.fixture(scope="module")
def macro_run() -> typing.Any:
    return pwf.run(nodes.assyst, **TINY_MACRO)


@pytest.mark.parametrize("cls", nodes.CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_config_class_is_a_node_with_its_fields_as_inputs_and_the_instance_as_output(
    cls: type,
) -> None:
    node = pwf.node(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    assert set(node.inputs.keys()) == set(fields)
    assert list(node.outputs.keys()) == ["instance"]
    hints = typing.get_type_hints(cls.__init__)
    for name, port in node.inputs.items():
        assert port.type_hint == hints[name], name
    kwargs = EXAMPLE_FIELDS.get(cls.__name__, {})
    instance = pwf.run(cls, **kwargs).outputs.instance
    assert instance == cls(**kwargs)
    assert hash(instance) == hash(cls(**kwargs))


@pytest.mark.parametrize("function", STAGE_FUNCTIONS, ids=lambda f: f.__name__)
def test_every_stage_and_helper_node_is_fully_type_hinted(function: typing.Callable) -> None:
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function)
    assert "return" in hints
    for name in signature.parameters:
        assert name in hints, f"{function.__name__}({name}) has no type hint"
    node = pwf.node(function)
    assert all(port.type_hint is not None for port in node.inputs.values())
    assert all(port.type_hint is not None for port in node.outputs.values())


def test_macro_validates_types_complete_and_valid_and_ontology_conforms() -> None:
    report = pwf.node(nodes.assyst).validate()
    assert report.types.valid, report.types.text
    assert report.types.complete, report.types.text
    assert report.valid


def test_macro_exposes_the_knobs_and_every_intermediate_set_and_report() -> None:
    node = pwf.node(nodes.assyst)
    for knob in (
        "elements",
        "formulas",
        "spacegroups",
        "min_atoms",
        "max_atoms",
        "max_structures",
        "calculator",
        "volume_relax",
        "full_relax",
        "perturbations",
        "radii",
        "max_aspect",
        "seed",
        "workers",
        "executor",
        "label_calculator",
        "label_executor",
        "label_time_limit",
        "fit",
        "fit_split",
        "fit_executor",
        "validate",
    ):
        assert knob in node.inputs.keys(), knob
    assert list(node.outputs.keys()) == [
        "sampled",
        "volume_relaxed",
        "full_relaxed",
        "perturbed",
        "combined",
        "training_set",
        "sample_report",
        "volume_report",
        "full_report",
        "perturb_report",
        "filter_report",
        "reports",
        "labelled",
        "label_report",
        "fitted",
        "validation",
    ]


def test_macro_gives_the_core_pipeline_result_bit_for_bit(macro_run) -> None:
    out = macro_run.outputs
    assert "finished" in str(macro_run.status).lower()
    core = run_pipeline(
        elements=("Cu", "Ag"),
        max_atoms=2,
        spacegroups=GROUPS,
        max_structures=4,
        calculator=EMT(),
        volume_relax=VolumeRelax(max_steps=15),
        full_relax=FullRelax(max_steps=15),
        perturbations=PERTURBATIONS,
        filters=DistanceFilter({"Cu": 0.9, "Ag": 1.0}) & AspectFilter(6.0, measure="heights"),
        rng=11,
    )
    assert fingerprint(out.training_set) == fingerprint(core.structures)
    assert fingerprint(out.sampled) == fingerprint(core.stages["sampled"])
    assert fingerprint(out.perturbed) == fingerprint(core.stages["perturbed"])
    assert [r.stage for r in out.reports] == [r.stage for r in core.reports]
    assert [(r.n_in, r.n_out, r.dropped) for r in out.reports] == [
        (r.n_in, r.n_out, r.dropped) for r in core.reports
    ]


def test_macro_outputs_are_consistent_sets_with_reports(macro_run) -> None:
    out = macro_run.outputs
    assert 0 < len(out.sampled) <= 4
    assert all(isinstance(s, Atoms) for s in out.training_set)
    assert out.sample_report.n_out == len(out.sampled)
    assert out.volume_report.n_out == len(out.volume_relaxed)
    assert out.full_report.n_out == len(out.full_relaxed)
    assert out.perturb_report.n_out == len(out.perturbed)
    assert out.filter_report.n_in == len(out.combined)
    assert out.filter_report.n_out == len(out.training_set)
    assert out.reports == [
        out.sample_report,
        out.volume_report,
        out.full_report,
        out.perturb_report,
        out.filter_report,
    ]
    assert out.labelled == [] and out.label_report is None  # no label calculator: no labels
    assert {step for s in out.volume_relaxed for step in [s.info[STEP]]} == {"volume_relax"}
    pool = out.combined
    for structure in out.training_set:
        ancestors = chain(structure, pool)
        assert ancestors[0].info[STEP] == "pyxtal"
        assert ancestors[0].info[UUID] == structure.info[SEED]
    table = nodes.report_table(out.reports)
    assert list(table["stage"])[:3] == ["sample", "volume_relax", "full_relax"]
    assert list(table["out"]) == [r.n_out for r in out.reports]


def test_macro_labels_the_training_set_with_the_reference_calculator(macro_run) -> None:
    reference = Morse(epsilon=0.3, r0=2.6, rho0=5.0)  # stands in for DFT
    out = pwf.run(nodes.assyst, **TINY_MACRO, label_calculator=reference).outputs
    assert fingerprint(out.training_set) == fingerprint(macro_run.outputs.training_set)
    report = out.label_report
    assert out.reports[-1] is report and len(out.reports) == 6
    assert_labels_stand_for_the_training_set(out.training_set, out.labelled, report)
    by_uuid = {a.info[UUID]: a for a in out.training_set}
    for labelled in out.labelled:
        parent = by_uuid.get(labelled.info[LINEAGE][-1])
        if parent is None:  # an isolated atom
            continue
        fresh = parent.copy()
        fresh.calc = reference.build()
        assert labelled.get_potential_energy() == fresh.get_potential_energy()  # the reference's
        if parent.calc is not None:  # relaxed with EMT: the label is not EMT's energy
            assert labelled.get_potential_energy() != parent.get_potential_energy()


def assert_labels_stand_for_the_training_set(training_set, labelled, report) -> None:
    """Each training structure is labelled, or named by the label of an equivalent one; the
    isolated atoms of its elements are labelled too; the report counts all of them."""
    by_uuid = {a.info[UUID]: a for a in training_set}
    isolated = [a for a in labelled if a.info["config_type"] == "IsolatedAtom"]
    elements = {s for a in training_set for s in a.get_chemical_symbols()}
    assert sorted(a.get_chemical_symbols()[0] for a in isolated) == sorted(elements)
    stood_for = []
    for label in labelled:
        assert label.info[STEP] == "single_point"
        if label in isolated:
            continue
        parent = by_uuid[label.info[LINEAGE][-1]]
        assert parent.info[UUID] != label.info[UUID]
        assert np.array_equal(label.positions, parent.positions)
        stood_for += [parent.info[UUID], *label.info.get("duplicates", [])]
    assert sorted(stood_for) == sorted(by_uuid)  # every uuid still resolves to a label
    duplicates = len(training_set) - (len(labelled) - len(isolated))
    assert report.dropped.get("duplicate", 0) == duplicates
    assert (report.stage, report.n_in, report.n_out) == (
        "single_point", len(training_set) + len(isolated), len(labelled)
    )


def test_graph_built_node_by_node_like_in_a_notebook() -> None:
    wf = pwf.Workflow("hand_built")
    wf.formulas = pwf.node(nodes.formulas_range)
    wf.sample = pwf.node(nodes.sample)
    wf.emt = pwf.node(nodes.EMT)
    wf.volume = pwf.node(nodes.VolumeRelax)
    wf.relax = pwf.node(nodes.relax)
    wf.rattle = pwf.node(nodes.Rattle)
    wf.perturb = pwf.node(nodes.perturb)
    wf.distance = pwf.node(nodes.DistanceFilter)
    wf.filter = pwf.node(nodes.filter_structures)

    wf.connect(wf.formulas, wf.sample.inputs.formulas)
    wf.connect(wf.emt, wf.volume.inputs.calculator)
    wf.connect(wf.sample.outputs.structures, wf.relax.inputs.structures)
    wf.connect(wf.volume, wf.relax.inputs.settings)
    wf.connect(wf.relax.outputs.structures, wf.perturb.inputs.structures)
    wf.connect(wf.rattle, wf.perturb.inputs.perturbations)
    wf.connect(wf.perturb.outputs.structures, wf.filter.inputs.structures)
    wf.connect(wf.distance, wf.filter.inputs.filters)
    wf.create_input_for(wf.formulas.inputs.elements, label="elements")
    wf.create_input_for(wf.formulas.inputs.stop, label="stop")
    wf.create_input_for(wf.sample.inputs.spacegroups, label="spacegroups")
    wf.create_input_for(wf.sample.inputs.max_structures, label="max_structures")
    wf.create_input_for(wf.rattle.inputs.sigma, label="sigma")
    wf.create_input_for(wf.distance.inputs.radii, label="radii")
    wf.create_output_from(wf.sample.outputs.report, label="sample_report")
    wf.create_output_from(wf.relax.outputs.structures, label="relaxed")
    wf.create_output_from(wf.filter.outputs.structures, label="kept")
    wf.create_output_from(wf.filter.outputs.report, label="filter_report")

    report = wf.validate(do_ontology=False)
    assert report.types.valid and report.types.complete, report.types.text
    run = wf.run(
        elements=["Cu"], stop=3, spacegroups=[221, 225, 229], max_structures=3, sigma=0.05,
        radii=0.9,
    )
    out = run.outputs
    assert isinstance(out.sample_report, StageReport)
    assert out.sample_report.n_out == len(out.relaxed) >= 1
    assert all(s.info[STEP] == "volume_relax" for s in out.relaxed)
    assert all(s.info[RELAX_CONVERGED] in (True, False) for s in out.relaxed)
    assert out.filter_report.n_in == out.filter_report.n_out + out.filter_report.n_dropped
    assert all(s.info[STEP] == "rattle(0.05)" for s in out.kept), [s.info[STEP] for s in out.kept]
    parents = {s.info[UUID] for s in out.relaxed}
    assert all(s.info[LINEAGE][-1] in parents for s in out.kept)


def test_macro_is_one_node_inside_a_larger_workflow_with_a_step_after_it() -> None:
    wf = pwf.Workflow("bigger")
    wf.assyst = pwf.node(nodes.assyst)
    wf.labelling = pwf.node(nodes.label)
    wf.connect(wf.assyst.outputs.training_set, wf.labelling.inputs.structures)
    for name in ("max_atoms", "spacegroups", "max_structures", "volume_relax", "full_relax",
                 "perturbations", "seed"):
        wf.create_input_for(wf.assyst.inputs[name], label=name)
    wf.create_output_from(wf.assyst.outputs.training_set, label="training_set")
    wf.create_output_from(wf.labelling.outputs.structures, label="labelled")
    wf.create_output_from(wf.labelling.outputs.report, label="label_report")
    report = wf.validate(do_ontology=False)
    assert report.types.valid and report.types.complete, report.types.text

    out = wf.run(**TINY_MACRO).outputs
    assert len(out.training_set) > 0
    assert_labels_stand_for_the_training_set(out.training_set, out.labelled, out.label_report)
    for after in out.labelled:
        assert np.isfinite(after.get_potential_energy())
        assert after.get_forces().shape == (len(after), 3)


def _relax_workflow() -> pwf.Workflow:
    wf = pwf.Workflow("relax_only")
    wf.sample = pwf.node(nodes.sample)
    wf.relax = pwf.node(nodes.relax)
    wf.connect(wf.sample.outputs.structures, wf.relax.inputs.structures)
    wf.create_input_for(wf.sample.inputs.formulas, label="formulas")
    wf.create_input_for(wf.sample.inputs.spacegroups, label="spacegroups")
    wf.create_input_for(wf.sample.inputs.max_atoms, label="max_atoms")
    wf.create_input_for(wf.relax.inputs.settings, label="settings")
    wf.create_input_for(wf.relax.inputs.executor, label="executor")
    wf.create_input_for(wf.relax.inputs.chunksize, label="chunksize")
    wf.create_output_from(wf.relax.outputs.structures, label="relaxed")
    wf.create_output_from(wf.relax.outputs.report, label="report")
    return wf


RELAX_INPUTS = {
    "formulas": Formulas.range(("Cu", "Ag"), 0, 3),
    "spacegroups": [1, 2, 47, 123, 221],
    "max_atoms": 2,
    "settings": FullRelax(max_steps=10),
    "chunksize": 2,
}


def test_relax_node_runs_in_another_process_through_the_node_executor() -> None:
    here = _relax_workflow().run(**RELAX_INPUTS, executor=None).outputs
    wf = _relax_workflow()
    wf.relax.executor = pwf.ExecutorInstructions(ProcessPoolExecutor)
    there = wf.run(**RELAX_INPUTS, executor=None).outputs
    assert len(here.relaxed) >= 3
    assert fingerprint(there.relaxed) == fingerprint(here.relaxed)
    assert there.report.n_out == here.report.n_out


def test_relax_fanned_out_with_executorlib_equals_one_worker_bit_for_bit() -> None:
    serial = _relax_workflow().run(**RELAX_INPUTS, executor=None).outputs
    fanned = _relax_workflow().run(**RELAX_INPUTS, executor=nodes.single_node(2)).outputs
    assert fingerprint(fanned.relaxed) == fingerprint(serial.relaxed)
    assert fanned.report.dropped == serial.report.dropped


def test_sample_node_with_two_workers_equals_one_worker() -> None:
    kwargs = {"formulas": Formulas.range(("Cu", "Ag"), 0, 4), "max_atoms": 3,
              "max_structures": 12, "seed": 5}
    one, one_report = nodes.sample(**kwargs)
    two, two_report = nodes.sample(**kwargs, workers=2)
    pool, pool_report = nodes.sample(**kwargs, executor=nodes.local_processes(2))
    assert fingerprint(two) == fingerprint(one) == fingerprint(pool)
    assert (two_report.n_in, two_report.drops) == (one_report.n_in, one_report.drops)
    assert pool_report.n_in == one_report.n_in


def test_open_executor_rejects_something_that_is_no_executor() -> None:
    with pytest.raises(TypeError, match="ExecutorInstructions"):
        nodes.relax([], executor="slurm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        nodes.local_processes(0)


def test_progress_is_silent_unless_asked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    structures, _ = nodes.sample(Formulas.range("Cu", 1, 3), [221, 225], max_atoms=2)
    monkeypatch.delenv("ASSYST_PROGRESS", raising=False)
    nodes.relax(structures, VolumeRelax(max_steps=3))
    assert capsys.readouterr().err == ""
    nodes.relax(structures, VolumeRelax(max_steps=3), progress=True)
    assert "volume_relax" in capsys.readouterr().err
    monkeypatch.setenv("ASSYST_PROGRESS", "1")
    assert progress_wanted(None)
    monkeypatch.setenv("ASSYST_PROGRESS", "0")
    assert not progress_wanted(None)
    monkeypatch.delenv("ASSYST_PROGRESS")
    monkeypatch.setenv("CI", "true")
    assert not progress_wanted(None)
    assert progress_wanted(True)
    with progress_bar(0, "empty", True) as bar:
        bar.update(1)  # a no-op bar for nothing to do


def test_export_writes_extxyz_that_ase_reads_back_with_results_and_provenance(
    macro_run, tmp_path
) -> None:
    structures = macro_run.outputs.full_relaxed
    path = nodes.export(structures, str(tmp_path / "set.extxyz"))
    back = read(path, index=":")
    assert len(back) == len(structures)
    for original, copy in zip(structures, back, strict=True):
        assert copy.info[UUID] == original.info[UUID]
        assert copy.info[SEED] == original.info[SEED]
        assert copy.info[LINEAGE].split() == list(original.info[LINEAGE])
        assert np.allclose(copy.positions, original.positions)
        assert copy.get_potential_energy() == pytest.approx(original.get_potential_energy())
        assert np.allclose(copy.get_forces(), original.get_forces())
        assert np.allclose(copy.get_stress(), original.get_stress())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nodes.export(structures, str(tmp_path / "missing" / "set.extxyz"))


def test_config_helper_nodes() -> None:
    cu = nodes.formulas_range("Cu", 1, 3)
    ag = nodes.formulas_range("Ag", 1, 3)
    assert list(nodes.formulas_concat(cu, ag)) == [{"Cu": 1}, {"Cu": 2}, {"Ag": 1}, {"Ag": 2}]
    assert list(nodes.formulas_pair(cu, ag)) == [{"Cu": 1, "Ag": 1}, {"Cu": 2, "Ag": 2}]
    assert len(nodes.formulas_product(cu, ag)) == 4
    assert list(nodes.formulas_trim(nodes.formulas_product(cu, ag), 3, 3)) == [
        {"Cu": 1, "Ag": 2},
        {"Cu": 2, "Ag": 1},
    ]
    assert list(nodes.formulas_for(["Cu"], 2, 3)) == [{"Cu": 2}, {"Cu": 3}]
    assert list(nodes.formulas_for("Cu", 1, 2, formulas=ag)) == [{"Ag": 1}, {"Ag": 2}]
    assert list(nodes.formulas_from([{"Cu": 1, "Ag": 3}])) == [{"Cu": 1, "Ag": 3}]
    with pytest.raises(ValueError, match="disjoint"):
        nodes.formulas_pair(cu, cu)
    settings = nodes.with_calculator(FullRelax(max_steps=3), nodes.Morse())
    assert settings == FullRelax(max_steps=3, calculator=nodes.Morse())
    assert nodes.series(Rattle(0.1), Stretch(0.1, 0.1)) == Rattle(0.1) + Stretch(0.1, 0.1)
    assert nodes.perturbation_list(Rattle(0.1), None, Rattle(0.2)) == [Rattle(0.1), Rattle(0.2)]
    assert len(nodes.perturbations_or_default(None)) == 2
    tolerance, combined = nodes.assyst_filters({"Cu": 0.9}, 4.0)
    assert tolerance == DistanceFilter({"Cu": 0.9})
    assert combined == DistanceFilter({"Cu": 0.9}) & AspectFilter(4.0, measure="heights")
    assert nodes.gather_reports(StageReport("a"), None, StageReport("b")) == [
        StageReport("a"),
        StageReport("b"),
    ]


class MemoryRecorder:
    """A recorder that keeps finished runs in a dict: what a project does, without the disk."""

    def __init__(self) -> None:
        self.runs: dict[tuple, tuple[list[Atoms], StageReport]] = {}
        self.computed: list[str] = []

    def record(self, stage, settings, inputs, compute):
        key = (
            stage,
            repr(sorted(settings.items())),
            tuple(tuple(s.info[UUID] for s in part) for part in inputs),
        )
        if key not in self.runs:
            self.computed.append(stage)
            self.runs[key] = compute()
        return self.runs[key]


def test_macro_hands_its_recorder_to_every_stage_and_a_rerun_reuses_every_run() -> None:
    recorder = MemoryRecorder()
    first = pwf.run(nodes.assyst, **TINY_MACRO, recorder=recorder).outputs
    assert recorder.computed == [
        "sample", "relax", "relax", "combine", "perturb", "combine", "filter"
    ]
    second = pwf.run(nodes.assyst, **TINY_MACRO, recorder=recorder).outputs
    assert len(recorder.computed) == 7  # nothing computed again
    assert fingerprint(second.training_set) == fingerprint(first.training_set)
    changed = pwf.run(nodes.assyst, **{**TINY_MACRO, "max_aspect": 5.0}, recorder=recorder)
    # the sampling tolerance is the distance filter alone: sampling and relaxation are reused,
    # the stages that use the aspect filter run again (combine only if perturb changed)
    rerun = recorder.computed[7:]
    assert rerun[0] == "perturb" and rerun[-1] == "filter"
    assert not {"sample", "relax"} & set(rerun)
    assert changed.outputs.sample_report.n_out == first.sample_report.n_out


def test_a_recorder_without_record_method_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(TypeError, match="record"):
        nodes.filter_structures([], recorder="my_project")  # type: ignore[arg-type]


def test_export_of_sampled_crystals_keeps_every_key_despite_their_empty_lineage(
    macro_run, tmp_path
) -> None:
    sampled = macro_run.outputs.sampled
    assert all(len(s.info[LINEAGE]) == 0 for s in sampled)
    back = read(nodes.export(sampled, str(tmp_path / "sampled.extxyz")), index=":")
    for original, copy in zip(sampled, back, strict=True):
        assert LINEAGE not in copy.info  # an empty value cannot be written in extxyz
        assert copy.info[SEED] == original.info[SEED] == original.info[UUID]
        assert copy.info[STEP] == "pyxtal"
        assert original.info[LINEAGE] == []  # the structures themselves are not changed
