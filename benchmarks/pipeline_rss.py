"""The whole Cu-Ag pipeline in a fresh process, for the peak-memory benchmark.

``python pipeline_rss.py ours|ours_project|reference MAX_STRUCTURES SEED FOLDER`` runs
sample -> volume relax -> full relax -> perturb -> combine -> filter on the embedded Cu-Ag example
(EMT, radii and perturbations of :mod:`workloads`) and prints one JSON line with the structure
count of each stage and the wall time (s). ``run.py`` reads this process's peak RSS with
``os.wait4``.

- ``ours``: the chain of the core stage functions (no pyiron);
- ``ours_run_pipeline``: :func:`assyst_nodes.pipeline.run_pipeline` (the macro, in memory);
- ``ours_project``: the ``assyst`` macro run by pyiron_workflow into a project (a
  ProjectRecorder in ``FOLDER``), what ``assyst-nodes run`` does;
- ``reference``: the same chain of the reference's functions.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from workloads import ASPECT, CHOICE, RADII, RATTLE_SIGMA, SMALL_STRETCH, compositions

VARIANTS = ("ours", "ours_run_pipeline", "ours_project", "reference")


def _perturbations() -> list[Any]:
    from assyst_nodes.stages.perturb import RandomChoice, Rattle, Stretch

    (hydro_a, shear_a), (hydro_b, shear_b), chance = CHOICE
    return [
        Rattle(RATTLE_SIGMA, create_supercells=True) + Stretch(*SMALL_STRETCH),
        RandomChoice(Stretch(hydro_a, shear_a), Stretch(hydro_b, shear_b), chance),
    ]


def _ours(max_structures: int, seed: int) -> dict[str, int]:
    """The chain of the core stage functions (no pyiron), as the reference variant chains
    the reference's."""
    from assyst_nodes.calculators import EMT
    from assyst_nodes.stages.combine import combine
    from assyst_nodes.stages.filter import AspectFilter, DistanceFilter, apply_filters
    from assyst_nodes.stages.perturb import perturb
    from assyst_nodes.stages.relax import FullRelax, VolumeRelax, relax
    from assyst_nodes.stages.sample import Formulas, sample

    keep = DistanceFilter(RADII) & AspectFilter(ASPECT, measure="heights")
    sampled = list(
        sample(
            Formulas(compositions(4)), None, max_atoms=4, max_structures=max_structures,
            tolerance=DistanceFilter(RADII), shuffle=True, rng=seed,
        )
    )
    volume = relax(sampled, VolumeRelax(calculator=EMT()))
    full = relax(volume, FullRelax(calculator=EMT()))
    perturbed = perturb(combine(volume, full), _perturbations(), filters=keep, rng=seed)
    combined = combine(sampled, volume, full, perturbed)
    training = apply_filters(combined, keep)
    return {
        "sampled": len(sampled),
        "volume_relaxed": len(volume),
        "full_relaxed": len(full),
        "perturbed": len(perturbed),
        "combined": len(combined),
        "training_set": len(training),
    }


def _ours_run_pipeline(max_structures: int, seed: int) -> dict[str, int]:
    """:func:`assyst_nodes.pipeline.run_pipeline`: the macro run by pyiron_workflow, in
    memory (no project)."""
    from assyst_nodes.pipeline import run_pipeline
    from assyst_nodes.stages.filter import AspectFilter, DistanceFilter
    from assyst_nodes.stages.sample import Formulas

    result = run_pipeline(
        formulas=Formulas(compositions(4)),
        max_atoms=4,
        max_structures=max_structures,
        perturbations=_perturbations(),
        filters=DistanceFilter(RADII) & AspectFilter(ASPECT, measure="heights"),
        rng=seed,
    )
    names = {"filtered": "training_set"}
    return {names.get(name, name): len(structures) for name, structures in result.stages.items()}


def _ours_project(max_structures: int, seed: int, folder: str) -> dict[str, int]:
    import pyiron_workflow as pwf

    from assyst_nodes import nodes
    from assyst_nodes.project import ProjectRecorder

    run = pwf.run(
        nodes.assyst,
        elements=["Cu", "Ag"],
        max_atoms=4,
        max_structures=max_structures,
        radii=dict(RADII),
        max_aspect=ASPECT,
        seed=seed,
        recorder=ProjectRecorder(folder, "memory"),
    )
    names = ("sampled", "volume_relaxed", "full_relaxed", "perturbed", "combined", "training_set")
    return {name: len(getattr(run.outputs, name)) for name in names}


def _reference(max_structures: int, seed: int) -> dict[str, int]:
    import warnings

    from ase.calculators.emt import EMT
    from assyst.crystals import Formulas, sample
    from assyst.filters import AspectFilter, DistanceFilter
    from assyst.perturbations import perturb
    from assyst.relaxations import FullRelax, VolumeRelax, relax
    from cases_reference import _perturbations as reference_perturbations

    warnings.simplefilter("ignore")
    keep = DistanceFilter(dict(RADII)) & AspectFilter(ASPECT)
    sampled = list(
        sample(
            Formulas(tuple(compositions(4))),
            None,
            max_atoms=4,
            max_structures=max_structures,
            tolerance=dict(RADII),
            shuffle=True,
            rng=seed,
        )
    )
    volume = list(relax(sampled, VolumeRelax(calculator=EMT())))
    full = list(relax(volume, FullRelax(calculator=EMT())))
    perturbations = reference_perturbations(seed)
    perturbed = list(perturb(volume + full, perturbations, filters=[keep]))
    combined = sampled + volume + full + perturbed
    training = [atoms for atoms in combined if keep(atoms)]
    return {
        "sampled": len(sampled),
        "volume_relaxed": len(volume),
        "full_relaxed": len(full),
        "perturbed": len(perturbed),
        "combined": len(combined),
        "training_set": len(training),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in VARIANTS:
        print(
            f"usage: pipeline_rss.py {{{'|'.join(VARIANTS)}}} MAX_STRUCTURES SEED FOLDER",
            file=sys.stderr,
        )
        return 2
    variant, max_structures, seed, folder = argv[0], int(argv[1]), int(argv[2]), argv[3]
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library output goes to stderr; stdout carries the one JSON line
    start = time.perf_counter()
    counts: dict[str, Any]
    if variant == "ours":
        counts = _ours(max_structures, seed)
    elif variant == "ours_run_pipeline":
        counts = _ours_run_pipeline(max_structures, seed)
    elif variant == "ours_project":
        counts = _ours_project(max_structures, seed, folder)
    else:
        counts = _reference(max_structures, seed)
    answers.write(json.dumps({"counts": counts, "wall": time.perf_counter() - start}) + "\n")
    answers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
