"""Force calls per relaxation: our default optimiser against the reference's (issue 17).

    python benchmarks/relax_force_calls.py [--structures 200] [--calculators emt sevennet]
        [--sevennet-structures 200] [--reference-python /work/refvenv17/bin/python]
        [--json benchmarks/results/2026-12-06-relax-force-calls.json]

With DFT every force call of a relaxation costs minutes, so the number of calls a relaxation
needs, and how many converge at all, is the figure that matters. This script relaxes the
canonical set (``--structures`` Cu-Ag crystals of up to 4 atoms, sampled with seed 3 and the
radii Cu 0.9 Å, Ag 1.0 Å, as in ``real_calculators.py``) twice, each time a volume relaxation
followed by a full relaxation (``FrechetCellFilter``), at the same ``force_tolerance``
(``--fmax``, eV/Å) and step limit (``--max-steps``):

* **reference**: the settings of the reference implementation ``assyst`` 1.0.0 (ASE LBFGS
  with its own defaults: initial Hessian 70 eV/Å^2, steps of at most 0.2 Å), reproduced with
  this package as ``VolumeRelax(**REFERENCE_OPTIMIZER)`` and ``FullRelax(**REFERENCE_OPTIMIZER)``;
* **ours**: ``VolumeRelax()`` and ``FullRelax()`` with today's defaults.

Force calls are counted the same way on both sides: every ``calculate`` of the calculator that
computes (cached results are not calls). Each structure goes through :func:`relax` on its own
(one process), so the count of a relaxation is the counter's increase. With
``--reference-python`` (an interpreter with ``assyst`` 1.0.0) the reference package itself
relaxes the same structures with the same counting EMT, to confirm that the reproduction makes
the same calls and reaches the same energies.

Per stage and calculator it reports force calls (median, mean, 95th percentile), the converged
fraction, the final energies compared crystal by crystal (ours minus reference, eV/atom), and
the distributions of the relaxed structures (volume per atom, shortest distance, energy per
atom: quantiles and a two-sample Kolmogorov-Smirnov test). Progress to stderr, a Markdown table
to stdout, everything to ``--json``. Counts do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

REFERENCE_SIDE = r"""
import json, sys, warnings
import numpy as np
from ase.calculators.emt import EMT
from assyst.relaxations import FullRelax, VolumeRelax
sys.path.insert(0, sys.argv[2])
from workloads import load_structures

calls = [0]
class CountingEMT(EMT):
    def calculate(self, *args, **kwargs):
        calls[0] += 1
        return super().calculate(*args, **kwargs)

fmax, steps = float(sys.argv[3]), int(sys.argv[4])
out = {"volume_calls": [], "full_calls": [], "volume_energy": [], "full_energy": [],
       "volume_converged": [], "full_converged": []}
for atoms in load_structures(sys.argv[1]):
    current = atoms
    for stage, kind in (("volume", VolumeRelax), ("full", FullRelax)):
        current = current.copy()
        current.calc = CountingEMT()
        before = calls[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            current = kind(force_tolerance=fmax, max_steps=steps)(current)
        out[f"{stage}_calls"].append(calls[0] - before)
        out[f"{stage}_energy"].append(float(current.get_potential_energy()) / len(current))
        out[f"{stage}_converged"].append(bool(current.info["relax_converged"]))
print(json.dumps(out))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def counting(calculator: Any) -> tuple[Any, list[int]]:
    """``calculator`` with its ``calculate`` wrapped to count the calls (a list of one int)."""
    calls = [0]
    inner = calculator.calculate

    def calculate(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return inner(*args, **kwargs)

    calculator.calculate = calculate
    return calculator, calls


def build(name: str) -> Any:
    """A live ASE calculator: ``emt`` or ``sevennet`` (SevenNet-0, one torch thread)."""
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    import torch

    from assyst_nodes.calculators import get_calculator
    from assyst_nodes.calculators.mlip import SevenNet

    torch.set_num_threads(1)
    return get_calculator(SevenNet(), cache=False)


def shortest_distance(atoms: Any) -> float:
    """The shortest interatomic distance (Å), periodic images included."""
    from ase.neighborlist import neighbor_list

    distances = neighbor_list("d", atoms, 8.0)
    return float(distances.min()) if len(distances) else float("nan")


def run_side(structures: list[Any], calculator: Any, calls: list[int],
             settings: dict[str, Any], fmax: float, max_steps: int) -> dict[str, list[Any]]:
    """Volume then full relaxation of each structure with ``settings`` (optimiser fields)."""
    from assyst_nodes.stages.relax import FullRelax, VolumeRelax, relax

    stages = {
        "volume": VolumeRelax(force_tolerance=fmax, max_steps=max_steps, calculator=calculator,
                              **settings),
        "full": FullRelax(force_tolerance=fmax, max_steps=max_steps, calculator=calculator,
                          **settings),
    }
    out: dict[str, list[Any]] = {}
    current = list(structures)
    for stage, config in stages.items():
        relaxed = []
        for atoms in current:
            before = calls[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (result,) = relax([atoms], config, progress=False)
            out.setdefault(f"{stage}_calls", []).append(calls[0] - before)
            out.setdefault(f"{stage}_converged", []).append(bool(result.info["relax_converged"]))
            out.setdefault(f"{stage}_energy", []).append(
                float(result.get_potential_energy()) / len(result))
            out.setdefault(f"{stage}_volume", []).append(float(result.get_volume()) / len(result))
            out.setdefault(f"{stage}_distance", []).append(shortest_distance(result))
            relaxed.append(result)
        current = relaxed
        log(f"  {stage}: {sum(out[f'{stage}_calls'])} calls")
    return out


def summary(calls: list[int], converged: list[bool]) -> dict[str, float]:
    values = np.asarray(calls, dtype=float)
    return {
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "p95": float(np.percentile(values, 95)),
        "converged": float(np.mean(converged)),
        "n": len(values),
    }


def distributions(reference: dict[str, list[Any]], ours: dict[str, list[Any]]) -> dict[str, Any]:
    """Quantiles (5, 25, 50, 75, 95 %) and a two-sample KS test per stage and quantity."""
    from scipy.stats import ks_2samp

    out: dict[str, Any] = {}
    for stage in ("volume", "full"):
        for quantity in ("volume", "distance", "energy"):
            key = f"{stage}_{quantity}"
            a, b = np.asarray(reference[key]), np.asarray(ours[key])
            test = ks_2samp(a, b)
            out[key] = {
                "reference_quantiles": np.percentile(a, [5, 25, 50, 75, 95]).tolist(),
                "ours_quantiles": np.percentile(b, [5, 25, 50, 75, 95]).tolist(),
                "ks_statistic": float(test.statistic),
                "ks_pvalue": float(test.pvalue),
            }
    return out


def compare(reference: dict[str, list[Any]], ours: dict[str, list[Any]]) -> dict[str, Any]:
    """Energies of the same crystal, ours minus the reference (eV/atom), per stage."""
    out: dict[str, Any] = {}
    for stage in ("volume", "full"):
        delta = np.subtract(ours[f"{stage}_energy"], reference[f"{stage}_energy"])
        out[stage] = {
            "above_1meV": int(np.sum(delta > 1e-3)),
            "fraction_above_1meV": float(np.mean(delta > 1e-3)),
            "below_1meV": int(np.sum(delta < -1e-3)),
            "max_above": float(delta.max()),
            "max_below": float(delta.min()),
            "median_abs": float(np.median(np.abs(delta))),
        }
    return out


def run_reference_package(python: str, structures: list[Any], fmax: float,
                          max_steps: int) -> dict[str, Any] | None:
    """Relax ``structures`` with ``assyst`` 1.0.0 itself (EMT) in its own interpreter."""
    from workloads import save_structures

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "structures.npz"
        save_structures(path, structures)
        script = Path(folder) / "reference_side.py"
        script.write_text(REFERENCE_SIDE)
        done = subprocess.run(
            [python, str(script), str(path), str(ROOT), str(fmax), str(max_steps)],
            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    if done.returncode != 0:
        log(f"reference package failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, Any]) -> str:
    lines = [
        "| calculator | stage | settings | force calls median / mean / p95 | converged | "
        "mean ratio ours/ref |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results["calculators"].items():
        for stage in ("volume", "full", "total"):
            ref, ours = result["summary"]["reference"][stage], result["summary"]["ours"][stage]
            for side, values in (("reference (LBFGS, α 70)", ref), ("ours (BFGS, α 20)", ours)):
                ratio = f"{ours['mean'] / ref['mean']:.2f}" if side.startswith("ours") else ""
                lines.append(
                    f"| {name} ({values['n']}) | {stage} | {side} | {values['median']:.0f} / "
                    f"{values['mean']:.1f} / {values['p95']:.0f} | "
                    f"{values['converged'] * 100:.1f} % | {ratio} |"
                )
    lines += ["", "| calculator | stage | ours > ref + 1 meV/atom | ours < ref - 1 meV/atom | "
              "largest above (meV/atom) | median abs diff (meV/atom) |",
              "|---|---|---|---|---|---|"]
    for name, result in results["calculators"].items():
        for stage, values in result["energies"].items():
            lines.append(
                f"| {name} | {stage} | {values['above_1meV']} "
                f"({values['fraction_above_1meV'] * 100:.1f} %) | {values['below_1meV']} | "
                f"{values['max_above'] * 1000:.1f} | {values['median_abs'] * 1000:.3f} |"
            )
    lines += ["", "| calculator | quantity | reference 5/50/95 % | ours 5/50/95 % | KS D | KS p |",
              "|---|---|---|---|---|---|"]
    for name, result in results["calculators"].items():
        for key, values in result["distributions"].items():
            ref, ours = values["reference_quantiles"], values["ours_quantiles"]
            lines.append(
                f"| {name} | {key} | {ref[0]:.3f} / {ref[2]:.3f} / {ref[4]:.3f} | "
                f"{ours[0]:.3f} / {ours[2]:.3f} / {ours[4]:.3f} | {values['ks_statistic']:.3f} | "
                f"{values['ks_pvalue']:.2f} |"
            )
    check = results.get("reference_package")
    if check:
        lines += ["", f"assyst 1.0.0 itself on the same {check['n']} crystals (EMT): "
                  f"{check['identical_calls']} of {check['n']} chains with the same force calls "
                  f"per stage as the reproduction, largest energy difference "
                  f"{check['max_energy_difference']:.2e} eV/atom."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--structures", type=int, default=200)
    parser.add_argument("--sevennet-structures", type=int, default=None,
                        help="crystals for SevenNet (the first N of the set; default: all)")
    parser.add_argument("--calculators", nargs="+", default=["emt", "sevennet"],
                        choices=["emt", "sevennet"])
    parser.add_argument("--fmax", type=float, default=1e-3, help="eV/Å")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--reference-python", default=None,
                        help="interpreter with assyst 1.0.0 to run the reference itself (EMT)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from assyst_nodes.stages.relax import REFERENCE_OPTIMIZER, FullRelax

    defaults = FullRelax()
    ours_settings = {"algorithm": defaults.algorithm, "alpha": defaults.alpha,
                     "maxstep": defaults.maxstep}
    start = time.perf_counter()
    from workloads import canonical_crystals

    structures = canonical_crystals(args.structures)
    log(f"{len(structures)} crystals sampled")
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "fmax": args.fmax, "max_steps": args.max_steps,
        "settings": {"reference": REFERENCE_OPTIMIZER, "ours": ours_settings},
        "calculators": {},
    }
    for name in args.calculators:
        subset = structures
        if name == "sevennet" and args.sevennet_structures is not None:
            subset = structures[: args.sevennet_structures]
        calculator, calls = counting(build(name))
        sides = {}
        for side, settings in (("reference", REFERENCE_OPTIMIZER), ("ours", ours_settings)):
            log(f"{name} {side} ({len(subset)} crystals)")
            seconds = time.perf_counter()
            sides[side] = run_side(subset, calculator, calls, settings, args.fmax, args.max_steps)
            sides[side]["seconds"] = time.perf_counter() - seconds
        summaries: dict[str, Any] = {}
        for side, data in sides.items():
            total = np.add(data["volume_calls"], data["full_calls"]).tolist()
            both = np.logical_and(data["volume_converged"], data["full_converged"]).tolist()
            summaries[side] = {
                "volume": summary(data["volume_calls"], data["volume_converged"]),
                "full": summary(data["full_calls"], data["full_converged"]),
                "total": summary(total, both),
            }
        results["calculators"][name] = {
            "n": len(subset),
            "summary": summaries,
            "energies": compare(sides["reference"], sides["ours"]),
            "distributions": distributions(sides["reference"], sides["ours"]),
            "per_structure": sides,
        }
        if name == "emt" and args.reference_python:
            log("assyst 1.0.0 itself (EMT)")
            package = run_reference_package(args.reference_python, subset, args.fmax,
                                             args.max_steps)
            if package is not None:
                ours_ref = sides["reference"]
                same = [
                    package["volume_calls"][i] == ours_ref["volume_calls"][i]
                    and package["full_calls"][i] == ours_ref["full_calls"][i]
                    for i in range(len(subset))
                ]
                difference = max(
                    abs(a - b) for stage in ("volume", "full")
                    for a, b in zip(package[f"{stage}_energy"], ours_ref[f"{stage}_energy"],
                                    strict=True)
                )
                results["reference_package"] = {
                    "n": len(subset), "identical_calls": int(sum(same)),
                    "max_energy_difference": float(difference),
                    "summary": {
                        "volume": summary(package["volume_calls"], package["volume_converged"]),
                        "full": summary(package["full_calls"], package["full_converged"]),
                    },
                }
    results["seconds"] = time.perf_counter() - start
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
