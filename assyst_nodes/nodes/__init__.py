"""pyiron_workflow nodes of the ASSYST stages, their configs, and the canonical macro.

    import pyiron_workflow as pwf
    from assyst_nodes import nodes

    wf = pwf.Workflow("assyst")
    wf.formulas = pwf.node(nodes.formulas_for)
    wf.sample = pwf.node(nodes.sample)
    wf.connect(wf.formulas, wf.sample.inputs.formulas)
    ...
    run = pwf.run(nodes.assyst, max_structures=10)   # or the whole canonical run at once

Stage nodes return ``(structures, report)``; config classes (``nodes.VolumeRelax``, ...) are
nodes as they are: ``pwf.node(nodes.VolumeRelax)``.
"""

from ..calculators import EMT, ImportedCalculator, LennardJones, Morse
from ..crystals import Formulas
from ..filters import (
    AndFilter,
    AspectFilter,
    DistanceFilter,
    EnergyFilter,
    ForceFilter,
    NotFilter,
    OrFilter,
    VolumeFilter,
)
from ..perturbations import ElementScaledRattle, RandomChoice, Rattle, Series, Stretch
from ..relaxations import CellRelax, FullRelax, Relax, SinglePoint, SymmetryRelax, VolumeRelax
from ..reports import StageReport
from .configs import (
    CONFIG_CLASSES,
    assyst_filters,
    formulas_concat,
    formulas_for,
    formulas_from,
    formulas_pair,
    formulas_product,
    formulas_range,
    formulas_trim,
    perturbation_list,
    perturbations_or_default,
    series,
    with_calculator,
)
from .executors import ExecutorLike, local_processes, open_executor, single_node
from .macro import assyst
from .recording import Recorder, recorded
from .stages import (
    combine,
    export,
    filter,
    filter_structures,
    gather_reports,
    label,
    perturb,
    relax,
    report_table,
    sample,
)

__all__ = [
    "CONFIG_CLASSES",
    "EMT",
    "AndFilter",
    "AspectFilter",
    "CellRelax",
    "DistanceFilter",
    "ElementScaledRattle",
    "EnergyFilter",
    "ExecutorLike",
    "ForceFilter",
    "Formulas",
    "FullRelax",
    "ImportedCalculator",
    "LennardJones",
    "Morse",
    "NotFilter",
    "OrFilter",
    "RandomChoice",
    "Rattle",
    "Recorder",
    "Relax",
    "Series",
    "SinglePoint",
    "StageReport",
    "Stretch",
    "SymmetryRelax",
    "VolumeFilter",
    "VolumeRelax",
    "assyst",
    "assyst_filters",
    "combine",
    "export",
    "filter",
    "filter_structures",
    "formulas_concat",
    "formulas_for",
    "formulas_from",
    "formulas_pair",
    "formulas_product",
    "formulas_range",
    "formulas_trim",
    "gather_reports",
    "label",
    "local_processes",
    "open_executor",
    "perturb",
    "perturbation_list",
    "perturbations_or_default",
    "recorded",
    "relax",
    "report_table",
    "sample",
    "series",
    "single_node",
    "with_calculator",
]
