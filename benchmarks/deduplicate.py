"""De-duplication before labelling: labels saved on the canonical Cu-Ag run, cost per
structure, and the verdicts against pymatgen's own ``StructureMatcher.group_structures``.

For each run size (sampled crystals at most, EMT, default settings otherwise) the training set
is made once, then

- ``duplicate_groups`` (``assyst_nodes.stages.duplicates``) groups it: groups, duplicates (the
  labels saved), wall time and time per structure;
- ``StructureMatcher.group_structures`` groups the same structures with the same tolerances,
  as pymatgen does it (primitive cell at its fixed 0.25 Å, every structure reduced again for
  each comparison): its groups, time, and whether the partitions are equal;
- the same with the primitive cell found at the site tolerance (what ``duplicate_groups``
  does) inside pymatgen's ``group_structures``: the partitions must be equal;
- the EMT labels of the duplicates give the price a DFT label would have had: the energy
  spread (meV/atom) within each group says the duplicates carry no new information.

Run: ``python benchmarks/deduplicate.py --json benchmarks/results/<date>-<commit>-dedup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from project_scale import machine  # CPU, cores, OS, Python, commit


def partition(groups: list[list[int]]) -> list[list[int]]:
    """Groups as sorted lists, sorted: comparable whatever the order and representative."""
    return sorted(sorted(group) for group in groups)


def pymatgen_groups(structures: list, settings: Any, site_primitive: bool) -> list[list[int]]:
    """``StructureMatcher.group_structures`` of ``structures`` as index groups; with
    ``site_primitive`` each structure is first reduced to its primitive cell at the site
    tolerance, and the matcher searches no primitive cell itself."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    matcher = StructureMatcher(
        ltol=settings.length_tolerance,
        stol=settings.site_tolerance,
        angle_tol=settings.angle_tolerance,
        primitive_cell=not site_primitive,  # reduced already: no second search at 0.25 Å
        scale=False,
        attempt_supercell=False,
    )
    converted = []
    for atoms in structures:
        structure = AseAtomsAdaptor.get_structure(atoms)
        if site_primitive:
            volume = structure.volume / len(structure)
            structure = structure.get_primitive_structure(
                tolerance=settings.site_tolerance * volume ** (1 / 3)
            )
        converted.append(structure)
    index = {id(s): i for i, s in enumerate(converted)}
    return [[index[id(s)] for s in group] for group in matcher.group_structures(converted)]


def measure(max_structures: int, workers: int) -> dict[str, Any]:
    """The numbers of one run size (see the module docstring)."""
    from assyst_nodes.calculators import EMT
    from assyst_nodes.pipeline import run_pipeline
    from assyst_nodes.stages.duplicates import Duplicates, duplicate_groups
    from assyst_nodes.stages.label import label

    run = run_pipeline(max_structures=max_structures, workers=workers, progress=False)
    structures = run.structures
    settings = Duplicates()
    start = time.perf_counter()
    ours = duplicate_groups(structures, settings)
    seconds_ours = time.perf_counter() - start
    start = time.perf_counter()
    plain = pymatgen_groups(structures, settings, site_primitive=False)
    seconds_plain = time.perf_counter() - start
    start = time.perf_counter()
    same_reduction = pymatgen_groups(structures, settings, site_primitive=True)
    seconds_same = time.perf_counter() - start
    labelled = label(structures, EMT(), duplicates=None, isolated=None)
    per_atom = {
        a.info["lineage"][-1]: a.get_potential_energy() / len(a) for a in labelled
    }
    spreads = []
    for group in ours:
        if len(group) > 1:
            values = [per_atom[structures[i].info["uuid"]] for i in group]
            spreads.append(1000 * (max(values) - min(values)))
    steps: dict[str, int] = {}
    for group in ours:
        for i in group[1:]:
            step = str(structures[i].info.get("step", "")).partition("(")[0]
            steps[step] = steps.get(step, 0) + 1
    n = len(structures)
    return {
        "max_structures": max_structures,
        "training_set": n,
        "groups": len(ours),
        "labels_saved": n - len(ours),
        "labels_saved_fraction": (n - len(ours)) / n,
        "duplicates_by_step": steps,
        "groups_with_several_seeds": sum(
            len({structures[i].info["seed"] for i in g}) > 1 for g in ours if len(g) > 1
        ),
        "seconds_duplicate_groups": seconds_ours,
        "ms_per_structure": 1000 * seconds_ours / n,
        "seconds_pymatgen_group_structures": seconds_plain,
        "speedup_vs_pymatgen": seconds_plain / seconds_ours,
        "same_partition_as_pymatgen": partition(ours) == partition(plain),
        "pymatgen_groups": len(plain),
        "seconds_pymatgen_with_site_primitive": seconds_same,
        "same_partition_as_pymatgen_with_site_primitive": partition(ours)
        == partition(same_reduction),
        "max_energy_spread_in_a_group_meV_per_atom": max(spreads, default=0.0),
        "median_energy_spread_in_a_group_meV_per_atom": float(np.median(spreads))
        if spreads
        else 0.0,
    }


def main() -> None:
    """Measure each size and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 30, 120])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "deduplicate",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_at_start": list(os.getloadavg()),
        "runs": [],
    }
    for size in args.sizes:
        row = measure(size, args.workers)
        print(json.dumps(row))
        results["runs"].append(row)
    results["load_at_end"] = list(os.getloadavg())
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
