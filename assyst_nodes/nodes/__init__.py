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

Inside a workflow every input of these nodes takes the plain values a notebook passes, checked
against the input's hint: ``wf.a = pwf.node(nodes.assyst, elements=["Cu", "Ag"],
volume_relax=nodes.VolumeRelax(max_steps=50), radii={"Cu": 1.28, "Ag": 1.44})`` (radii in Å;
see :mod:`assyst_nodes.nodes.constants`, installed on import).
"""

from ..calculators import EMT, ImportedCalculator, LennardJones, Morse
from ..reports import StageReport
from ..runtime.executors import LocalProcesses, Slurm
from ..stages.duplicates import Duplicates
from ..stages.filter import (
    AndFilter,
    AspectFilter,
    DistanceFilter,
    EnergyFilter,
    ForceFilter,
    NotFilter,
    OrFilter,
    VolumeFilter,
)
from ..stages.fit import MACE, FitResult, LinearACE, PacemakerACE
from ..stages.isolated import IsolatedAtoms
from ..stages.label import SinglePoint
from ..stages.perturb import ElementScaledRattle, RandomChoice, Rattle, Series, Stretch
from ..stages.relax import CellRelax, FullRelax, Relax, SymmetryRelax, VolumeRelax
from ..stages.sample import Formulas
from ..stages.split import Split
from ..stages.validate import Suite, Validation
from ..stages.weights import Weights
from .configs import (
    CONFIG_CLASSES,
    assyst_filters,
    executor_or,
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
from .constants import install as _install_constants
from .executors import ExecutorLike, local_processes, open_executor, single_node
from .fitting import fit, fit_if, validate, validate_if
from .macro import assyst
from .recording import Recorder, recorded
from .stages import (
    combine,
    export,
    filter,
    filter_structures,
    gather_reports,
    label,
    label_if,
    perturb,
    relax,
    report_table,
    sample,
)

_install_constants()

__all__ = [
    "CONFIG_CLASSES",
    "EMT",
    "MACE",
    "AndFilter",
    "AspectFilter",
    "CellRelax",
    "DistanceFilter",
    "Duplicates",
    "ElementScaledRattle",
    "EnergyFilter",
    "ExecutorLike",
    "FitResult",
    "ForceFilter",
    "Formulas",
    "FullRelax",
    "ImportedCalculator",
    "IsolatedAtoms",
    "LennardJones",
    "LinearACE",
    "LocalProcesses",
    "Morse",
    "NotFilter",
    "OrFilter",
    "PacemakerACE",
    "RandomChoice",
    "Rattle",
    "Recorder",
    "Relax",
    "Series",
    "SinglePoint",
    "Slurm",
    "Split",
    "StageReport",
    "Stretch",
    "Suite",
    "SymmetryRelax",
    "Validation",
    "VolumeFilter",
    "VolumeRelax",
    "Weights",
    "assyst",
    "assyst_filters",
    "combine",
    "executor_or",
    "export",
    "filter",
    "filter_structures",
    "fit",
    "fit_if",
    "formulas_concat",
    "formulas_for",
    "formulas_from",
    "formulas_pair",
    "formulas_product",
    "formulas_range",
    "formulas_trim",
    "gather_reports",
    "label",
    "label_if",
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
    "validate",
    "validate_if",
    "with_calculator",
]
