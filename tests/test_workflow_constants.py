"""Plain values as node constants inside a ``pwf.Workflow``: lists, dicts, numbers and the frozen
config instances a notebook passes, for the macro, every stage node and the config helpers.

Each graph is built as a user would (``wf.x = pwf.node(nodes.x, key=value)``), run, and compared
with the same values handed to ``pwf.run`` directly or to the plain function.
"""

from __future__ import annotations

import base64
import os
import pickle
import threading
import typing

import flowrep as fr
import pyiron_workflow as pwf
import pytest
from ase import Atoms
from ase.io import read

from assyst_nodes import nodes
from assyst_nodes.lineage import STEP, UUID

pytestmark = pytest.mark.filterwarnings("ignore:.*has no input ports:UserWarning")

GROUPS = [1, 47, 123, 221, 225, 229]
PERTURBATIONS = [
    nodes.Rattle(0.05, create_supercells=True) + nodes.Stretch(0.03, 0.03),
    nodes.Stretch(0.1, 0.05),
]
MACRO = {
    "elements": ["Cu", "Ag"],
    "max_atoms": 2,
    "spacegroups": GROUPS,
    "max_structures": 3,
    "calculator": nodes.EMT(),
    "volume_relax": nodes.VolumeRelax(max_steps=5),
    "full_relax": nodes.FullRelax(max_steps=5),
    "perturbations": PERTURBATIONS,
    "radii": {"Cu": 0.9, "Ag": 1.0},  # Å
    "max_aspect": 6,  # an int for a float input, as people type it
    "seed": 3,
}


def uuids(structures: list[Atoms]) -> list[str]:
    return [s.info[UUID] for s in structures]


def source_of(wf: pwf.Workflow, node: str, port: str) -> pwf.datatypes.Node:
    """The node feeding ``node.inputs.port`` in ``wf``."""
    (edge,) = [e for e in wf.edges if e.target.node == node and e.target.port == port]
    return wf.nodes[edge.source.node]


def assert_every_edge_type_checked(wf: pwf.Workflow) -> None:
    """Every edge of ``wf`` is type-checked (none unfulfilled) and valid. (pyiron_workflow 0.20
    reports a graph holding any constant as not complete: a constant node is not parseable.)"""
    report = wf.validate(do_ontology=False).types
    assert report.valid, report.text
    assert not report.unfulfilled_edges, report.text


def value_of(wf: pwf.Workflow, node: str, port: str) -> typing.Any:
    """The value the source of ``node.inputs.port`` delivers, computed by running that source."""
    source = source_of(wf, node, port)
    (output,) = source.outputs.keys()
    return getattr(pwf.run(source).outputs, output)


# The four cases of the bug report: each was refused before -------------------------------------


@pytest.mark.parametrize(
    ("port", "value"),
    [
        ("elements", ["Cu", "Ag"]),
        ("radii", {"Cu": 0.9, "Ag": 1.0}),
        ("spacegroups", [225, 229]),
        ("volume_relax", nodes.VolumeRelax()),
    ],
)
def test_a_plain_value_is_a_constant_of_the_macro_in_a_workflow(port: str, value: object) -> None:
    wf = pwf.Workflow("w")
    wf.a = pwf.node(nodes.assyst, **{port: value})
    delivered = value_of(wf, "a", port)
    assert delivered == value
    assert type(delivered) is type(value)
    assert_every_edge_type_checked(wf)


def test_json_values_stay_plain_constants_and_other_values_a_readable_python_value_node() -> None:
    wf = pwf.Workflow("w")
    wf.a = pwf.node(nodes.assyst, elements=["Cu", "Ag"], volume_relax=nodes.VolumeRelax(9))
    elements = source_of(wf, "a", "elements")
    assert isinstance(elements, pwf.constant.Constant)
    assert elements.recipe.constant == ["Cu", "Ag"]
    settings = source_of(wf, "a", "volume_relax")
    text = settings.recipe.nodes["text"].constant
    assert text == f"assyst_nodes.stages.relax.VolumeRelax: {nodes.VolumeRelax(9)!r}"
    pickled = settings.recipe.nodes["pickled"].constant
    assert pickle.loads(base64.b64decode(pickled)) == nodes.VolumeRelax(9)
    # the recipe is JSON all the way down and runs again from its JSON
    as_json = wf.recipe.model_dump_json()
    again = pwf.node(fr.schemas.WorkflowRecipe.model_validate_json(as_json), "again")
    assert value_of(again, "a", "volume_relax") == nodes.VolumeRelax(9)


# The whole canonical run, every knob a plain value ----------------------------------------------


def test_macro_in_a_workflow_with_plain_constants_equals_running_it_directly() -> None:
    direct = pwf.run(nodes.assyst, **MACRO).outputs
    wf = pwf.Workflow("assyst_constants")
    wf.assyst = pwf.node(nodes.assyst, **MACRO)
    wf.create_output_from(wf.assyst.outputs.training_set, label="training_set")
    wf.create_output_from(wf.assyst.outputs.reports, label="reports")
    assert_every_edge_type_checked(wf)
    out = wf.run().outputs
    assert len(direct.training_set) > 3
    assert uuids(out.training_set) == uuids(direct.training_set)
    assert [r.n_out for r in out.reports] == [r.n_out for r in direct.reports]
    # the same graph through the module-level runner
    assert uuids(pwf.run(wf).outputs.training_set) == uuids(direct.training_set)


def test_the_macro_gets_exactly_the_values_given() -> None:
    wf = pwf.Workflow("w")
    wf.assyst = pwf.node(nodes.assyst, **MACRO)
    for port, value in MACRO.items():
        assert value_of(wf, "assyst", port) == value, port


def test_tuples_formulas_executor_instructions_and_none_are_constants_too() -> None:
    wf = pwf.Workflow("w")
    formulas = nodes.Formulas([{"Cu": 1}, {"Cu": 1, "Ag": 1}])
    wf.assyst = pwf.node(
        nodes.assyst,
        elements=("Cu", "Ag"),
        formulas=formulas,
        spacegroups=(221, 225),
        radii=(("Ag", 1.0), ("Cu", 0.9)),
        perturbations=(nodes.Rattle(0.1),),
        executor=nodes.local_processes(2),
        max_structures=None,
        sample_time_limit=5,
    )
    assert value_of(wf, "assyst", "elements") == ("Cu", "Ag")
    assert value_of(wf, "assyst", "formulas") == formulas
    assert value_of(wf, "assyst", "radii") == (("Ag", 1.0), ("Cu", 0.9))
    executor = value_of(wf, "assyst", "executor")
    assert executor.kwargs == {"max_workers": 2}
    assert value_of(wf, "assyst", "max_structures") is None
    assert_every_edge_type_checked(wf)


def test_the_ontology_check_conforms_with_python_value_constants() -> None:
    # (a list or dict constant fails semantikon's check in any workflow, ours or not)
    wf = pwf.Workflow("w")
    wf.a = pwf.node(nodes.assyst, max_atoms=3, volume_relax=nodes.VolumeRelax(5))
    assert wf.validate().valid


# Stage nodes -------------------------------------------------------------------------------------


def test_stage_nodes_given_plain_constants_run_in_a_workflow(tmp_path: typing.Any) -> None:
    formulas = nodes.Formulas.range(("Cu", "Ag"), 0, 3)
    path = str(tmp_path / "set.extxyz")
    wf = pwf.Workflow("stages")
    wf.sample = pwf.node(
        nodes.sample, formulas=formulas, spacegroups=[221, 225, 229], max_atoms=2,
        max_structures=3, tolerance={"Cu": 0.9, "Ag": 1.0}, seed=5,
    )
    wf.relax = pwf.node(nodes.relax, settings=nodes.VolumeRelax(max_steps=5))
    wf.labelling = pwf.node(nodes.label, calculator=nodes.Morse())
    wf.perturb = pwf.node(
        nodes.perturb, perturbations=[nodes.Rattle(0.05), nodes.Stretch(0.05, 0.05)],
        filters=nodes.DistanceFilter({"Cu": 0.5, "Ag": 0.5}), retries=3, seed=2,
    )
    wf.filter = pwf.node(
        nodes.filter_structures, filters=nodes.DistanceFilter(0.5) & nodes.AspectFilter(6),
    )
    wf.combine = pwf.node(nodes.combine)
    wf.export = pwf.node(nodes.export, path=path)
    wf.connect(wf.sample.outputs.structures, wf.relax.inputs.structures)
    wf.connect(wf.relax.outputs.structures, wf.labelling.inputs.structures)
    wf.connect(wf.labelling.outputs.structures, wf.perturb.inputs.structures)
    wf.connect(wf.perturb.outputs.structures, wf.filter.inputs.structures)
    wf.connect(wf.relax.outputs.structures, wf.combine.inputs.first)
    wf.connect(wf.filter.outputs.structures, wf.combine.inputs.second)
    wf.connect(wf.combine, wf.export.inputs.structures)
    wf.create_output_from(wf.combine.outputs.structures, label="combined")
    wf.create_output_from(wf.export.outputs.path, label="path")
    assert_every_edge_type_checked(wf)
    out = wf.run().outputs

    sampled, _ = nodes.sample(
        formulas, spacegroups=[221, 225, 229], max_atoms=2, max_structures=3,
        tolerance={"Cu": 0.9, "Ag": 1.0}, seed=5,
    )
    relaxed, _ = nodes.relax(sampled, nodes.VolumeRelax(max_steps=5))
    labelled, _ = nodes.label(relaxed, nodes.Morse())
    perturbed, _ = nodes.perturb(
        labelled, [nodes.Rattle(0.05), nodes.Stretch(0.05, 0.05)],
        filters=nodes.DistanceFilter({"Cu": 0.5, "Ag": 0.5}), retries=3, seed=2,
    )
    kept, _ = nodes.filter_structures(
        perturbed, nodes.DistanceFilter(0.5) & nodes.AspectFilter(6)
    )
    expected = nodes.combine(relaxed, kept)
    assert len(relaxed) == 3
    assert len(expected) > len(relaxed)
    assert uuids(out.combined) == uuids(expected)
    assert {s.info[STEP] for s in out.combined} >= {"volume_relax"}
    assert out.path == os.path.abspath(path)
    assert [a.info[UUID] for a in read(path, ":")] == uuids(expected)


def test_structures_themselves_can_be_a_constant() -> None:
    structures = [Atoms("Cu", cell=[2.5, 2.5, 2.5], pbc=True, info={UUID: "a"})]
    wf = pwf.Workflow("w")
    wf.labelling = pwf.node(nodes.label, structures=structures, calculator=nodes.EMT())
    wf.create_output_from(wf.labelling.outputs.structures, label="labelled")
    (labelled, atom) = wf.run().outputs.labelled  # the structure, then the Cu atom alone
    assert atom.info["config_type"] == "IsolatedAtom"
    assert labelled.get_potential_energy() == pytest.approx(
        nodes.label(structures, nodes.EMT())[0][0].get_potential_energy()
    )


# Config helper nodes -----------------------------------------------------------------------------

HELPERS: list[tuple[typing.Callable[..., typing.Any], dict[str, typing.Any]]] = [
    (nodes.formulas_range, {"elements": ["Cu", "Ag"], "stop": 3}),
    (nodes.formulas_for, {"elements": ("Cu",), "max_atoms": 3}),
    (nodes.formulas_for, {"formulas": nodes.Formulas.range("Cu", 0, 9), "min_atoms": 2}),
    (nodes.formulas_from, {"compositions": [{"Cu": 1, "Ag": 3}, {"Cu": 2}]}),
    (nodes.formulas_concat, {"first": nodes.Formulas([{"Cu": 1}]),
                             "second": nodes.Formulas([{"Ag": 1}])}),
    (nodes.formulas_pair, {"first": nodes.Formulas([{"Cu": 1}]),
                           "second": nodes.Formulas([{"Ag": 2}])}),
    (nodes.formulas_product, {"first": nodes.Formulas.range("Cu", 1, 3),
                              "second": nodes.Formulas.range("Ag", 1, 3)}),
    (nodes.formulas_trim, {"formulas": nodes.Formulas.range("Cu", 0, 6), "max_atoms": 3}),
    (nodes.with_calculator, {"settings": nodes.FullRelax(max_steps=7),
                             "calculator": nodes.LennardJones(sigma=2.0)}),
    (nodes.series, {"first": nodes.Rattle(0.1), "second": nodes.Stretch(0.05, 0.05)}),
    (nodes.perturbation_list, {"first": nodes.Rattle(0.1),
                               "second": nodes.Rattle(0.1) + nodes.Stretch(0.05, 0.05)}),
    (nodes.perturbations_or_default, {"perturbations": PERTURBATIONS}),
    (nodes.perturbations_or_default, {}),
    (nodes.assyst_filters, {"radii": {"Cu": 1.0, "Ag": 1.2}, "max_aspect": 5}),
    (nodes.assyst_filters, {"radii": 1}),
]


@pytest.mark.parametrize(
    ("function", "kwargs"), HELPERS,
    ids=[f"{f.__name__}-{'-'.join(k)}" for f, k in HELPERS],
)
def test_config_helper_nodes_take_plain_constants_in_a_workflow(
    function: typing.Callable[..., typing.Any], kwargs: dict[str, typing.Any]
) -> None:
    wf = pwf.Workflow("helper")
    wf.helper = pwf.node(function, **kwargs)
    for output in wf.helper.outputs.keys():
        wf.create_output_from(wf.helper.outputs[output], label=output)
    assert_every_edge_type_checked(wf)
    out = wf.run().outputs
    expected = function(**kwargs)
    got = tuple(getattr(out, name) for name in wf.helper.outputs.keys())
    assert got == (expected if len(got) > 1 else (expected,))


def test_config_class_nodes_take_config_instances_and_plain_values() -> None:
    wf = pwf.Workflow("configs")
    wf.relax = pwf.node(nodes.VolumeRelax, max_steps=3, algorithm="FIRE", calculator=nodes.Morse())
    wf.both = pwf.node(nodes.AndFilter, left=nodes.DistanceFilter(1.0), right=nodes.AspectFilter())
    wf.create_output_from(wf.relax.outputs.instance, label="relax")
    wf.create_output_from(wf.both.outputs.instance, label="both")
    assert_every_edge_type_checked(wf)
    out = wf.run().outputs
    assert out.relax == nodes.VolumeRelax(3, algorithm="FIRE", calculator=nodes.Morse())
    assert out.both == nodes.DistanceFilter(1.0) & nodes.AspectFilter()


def test_a_value_given_after_the_node_joined_the_workflow_is_a_constant_too() -> None:
    wf = pwf.Workflow("w")
    wf.relax = pwf.node(nodes.with_calculator)
    wf.relax(settings=nodes.SinglePoint())
    wf.relax.inputs.calculator = nodes.Morse(epsilon=2.0)
    wf.create_output_from(wf.relax.outputs.settings, label="settings")
    assert wf.run().outputs.settings == nodes.SinglePoint(calculator=nodes.Morse(epsilon=2.0))


# What stays refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "value", "shown"),
    [
        ("volume_relax", nodes.EMT(), "EMT"),
        ("elements", [1, 2], "list[int]"),
        ("radii", {"Cu": "big"}, "dict[str, str]"),
        ("spacegroups", [225, "Fm-3m"], "list[int | str]"),
        ("max_aspect", "6", "str"),
        ("perturbations", [nodes.Rattle(0.1), nodes.EMT()], "list["),
        ("elements", ("Cu", 29), "tuple[str, int]"),
    ],
)
def test_a_value_that_does_not_fit_the_hint_is_refused_naming_its_type(
    port: str, value: object, shown: str
) -> None:
    wf = pwf.Workflow("w")
    with pytest.raises(TypeError, match="is not as-or-more-specific") as error:
        wf.a = pwf.node(nodes.assyst, **{port: value})
    assert shown in str(error.value)
    assert "a" not in wf.nodes and not wf.edges  # the graph is rolled back


def test_a_list_is_checked_item_by_item_even_where_pyiron_workflow_lets_a_list_pass() -> None:
    wf = pwf.Workflow("w")
    with pytest.raises(TypeError, match=r"list\[dict\[str, str\]\]"):
        wf.formulas = pwf.node(nodes.formulas_from, compositions=[{"Cu": "one"}])
    wf.formulas = pwf.node(nodes.formulas_from, compositions=[{"Cu": 1}])
    assert_every_edge_type_checked(wf)


def test_a_python_value_is_a_fresh_copy_on_every_run() -> None:
    structures = [Atoms("Cu", cell=[2.5, 2.5, 2.5], pbc=True, info={UUID: "a"})]
    wf = pwf.Workflow("w")
    wf.combine = pwf.node(nodes.combine, first=structures)
    wf.create_output_from(wf.combine.outputs.structures, label="structures")
    first = wf.run().outputs.structures
    first[0].positions += 1.0
    again = wf.run().outputs.structures
    assert again[0].positions.tolist() == [[0.0, 0.0, 0.0]]
    assert again[0] is not first[0] and again[0].info[UUID] == "a"


def test_a_value_that_does_not_pickle_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="pickle"):
        pwf.node(nodes.label, calculator=threading.Lock())


def test_nodes_of_other_packages_keep_pyiron_workflows_rules() -> None:
    with pytest.raises(TypeError, match="JSONable constant"):
        pwf.node(other_package_function, value=nodes.EMT())
    wf = pwf.Workflow("w")
    with pytest.raises(TypeError, match="is not as-or-more-specific"):
        wf.x = pwf.node(other_package_function, value={"Cu": 0.9})


def other_package_function(value: float | dict[str, float]) -> float:
    """A node of this test module, not of assyst_nodes."""
    return value if isinstance(value, float) else min(value.values())


def test_a_workflow_of_plain_constants_is_drawn_with_graphviz() -> None:
    """``wf.draw()`` renders (Graphviz's ``dot``) the macro with its plain-value constants."""
    from services import require_graphviz

    require_graphviz()
    wf = pwf.Workflow("assyst")
    wf.run_ = pwf.node(
        nodes.assyst,
        elements=["Cu", "Ag"],
        max_atoms=2,
        radii={"Cu": 0.9, "Ag": 1.0},
        volume_relax=nodes.VolumeRelax(max_steps=5),
    )
    svg = wf.draw(depth=2).pipe(format="svg").decode()
    assert svg.startswith("<?xml") and "</svg>" in svg
    for node in ("sample_0", "relax_if_0", "relax_if_1", "perturb_0", "filter_structures_0"):
        assert f">{node}<" in svg, node
    for constant in ("elements", "radii", "volume_relax"):  # each plain value is drawn too
        assert f"run__{constant}_constant_0" in svg, constant
