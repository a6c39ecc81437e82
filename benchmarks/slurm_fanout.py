"""What sending relaxations to SLURM costs, against local processes with the same cores.

    eval "$(bash .ci/services.sh env)"          # the one-node test cluster (or any cluster)
    python benchmarks/slurm_fanout.py [--structures 200] [--repeats 3] [--json OUT]

Measures, on ``ASSYST_TEST_SLURM_PARTITION`` (default ``debug``):

* **per-task overhead**: ``--tasks`` chunks of one trivial item each through
  :class:`assyst_nodes.runtime.executors.Slurm` (one SLURM job per chunk); the wall time per task at
  the cluster's concurrency, i.e. scheduling, job start, Python start and imports, and result
  transfer;
* **relaxations**: ``--structures`` Cu-Ag crystals of up to 4 atoms (sampled with seed 3), a
  full relaxation with EMT (``FullRelax()``), with ``LocalProcesses(workers)`` and with
  ``Slurm(partition, workers)`` (its default chunking: two chunks per worker) and, for the
  chunking, ``Slurm`` with 1, 2 and 4 chunks per worker; medians of ``--repeats`` runs,
  interleaved (local, SLURM, local, SLURM, ...). The results are checked to be the same bit
  for bit. The ratio SLURM / local is the target of issue 14 (at most 1.3).

Times are wall-clock seconds. Progress to stderr, a Markdown table to stdout, every single
timing to ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from workloads import canonical_crystals

from assyst_nodes.runtime.executors import LocalProcesses, Slurm
from assyst_nodes.runtime.fanout import map_chunks
from assyst_nodes.stages.relax import FullRelax, relax


def nothing(items: list[int]) -> list[int]:
    """A trivial chunk: the per-task overhead is all there is."""
    return items


def timed_relax(structures: list[Any], config: Any, chunksize: int | None) -> tuple[float, Any]:
    start = time.perf_counter()
    with config.open() as executor:
        out = relax(structures, FullRelax(), workers=config.workers, executor=executor,
                    chunksize=chunksize, resubmit=config.resubmit)
    return time.perf_counter() - start, out


def identical(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.positions, y.positions) and np.array_equal(x.cell.array, y.cell.array)
        and x.get_potential_energy() == y.get_potential_energy()
        for x, y in zip(a, b, strict=True)
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--structures", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    partition = os.environ.get("ASSYST_TEST_SLURM_PARTITION", "debug")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    record: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, check=False).stdout.strip(),
        "partition": partition,
        "workers": args.workers,
    }

    slurm = Slurm(partition, workers=args.workers)
    log(f"per-task overhead: {args.tasks} trivial tasks")
    start = time.perf_counter()
    with slurm.open() as executor:
        map_chunks(nothing, (), list(range(args.tasks)), executor=executor, chunksize=1)
    overhead = time.perf_counter() - start
    record["trivial_tasks"] = {"tasks": args.tasks, "seconds": overhead,
                               "seconds_per_task": overhead / args.tasks}

    structures = canonical_crystals(args.structures, progress=None)
    log(f"{len(structures)} crystals; relaxing locally and on SLURM, {args.repeats} repeats")
    per_worker = {1: None, 2: None, 4: None}  # chunks per worker -> chunk size
    for k in per_worker:
        per_worker[k] = -(-len(structures) // (k * args.workers))
    runs: dict[str, list[float]] = {"local": [], "slurm": []}
    runs |= {f"slurm_{k}": [] for k in per_worker}
    reference = None
    same = True
    for repeat in range(args.repeats):
        seconds, out = timed_relax(structures, LocalProcesses(args.workers), None)
        runs["local"].append(seconds)
        reference = out if reference is None else reference
        seconds, out = timed_relax(structures, slurm, None)
        runs["slurm"].append(seconds)
        same &= identical(out, reference)
        log(f"  repeat {repeat + 1}: local {runs['local'][-1]:.1f} s, slurm {seconds:.1f} s")
    for k, size in per_worker.items():
        seconds, out = timed_relax(structures, slurm, size)
        runs[f"slurm_{k}"].append(seconds)
        same &= identical(out, reference)
        log(f"  {k} chunk(s) per worker: {seconds:.1f} s")
    medians = {name: statistics.median(values) for name, values in runs.items()}
    record["relax"] = {"structures": len(structures), "runs": runs, "medians": medians,
                       "ratio_slurm_local": medians["slurm"] / medians["local"],
                       "identical": same}
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1))
    print("| measurement | value |\n|---|---|")
    print(f"| {args.tasks} trivial tasks on SLURM ({args.workers} at a time) | {overhead:.1f} s, "
          f"{overhead / args.tasks:.2f} s per task |")
    print(f"| {len(structures)} FullRelax (EMT), {args.workers} local processes | "
          f"{medians['local']:.1f} s |")
    print(f"| the same on SLURM, {args.workers} workers (2 chunks per worker) | "
          f"{medians['slurm']:.1f} s |")
    print(f"| ratio SLURM / local (target <= 1.3) | {medians['slurm'] / medians['local']:.2f} |")
    for k in per_worker:
        print(f"| SLURM, {k} chunk(s) per worker (one run) | {medians[f'slurm_{k}']:.1f} s |")
    print(f"| results identical bit for bit | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
