"""What a training set is worth: learning curves of a fitted potential's errors on a held-out
suite against the number of labelled structures, for ASSYST and the sets users make by hand.

    python benchmarks/set_value.py choose  --json results/<date>-<commit>-set-value-choose.json
    python benchmarks/set_value.py curves  --seeds 0 1 2 3 4 --sizes 150 300 600 1000 \\
        --json results/<date>-<commit>-set-value-emt.json
    python benchmarks/set_value.py curves --reference sevennet --sizes 150 600 --seeds 0 1 2 \\
        --json ...                      # in an environment with the extras mlip and ace
    python benchmarks/set_value.py dedup --seeds 0 1 2 3 4 --json ...

The sets are the pools of ``set_value_sets.py`` (kinds ``assyst``, ``assyst_reference_optimizer``,
``hand_made``, ``random_cells``; one pool of >= 1,000 EMT labels per kind and seed, nested
subsets of it per size). Every set is fitted with the same :class:`LinearACE` settings,
:data:`FIT`, chosen once by ``choose`` on pools of a separate seed (:data:`CHOICE_SEED`) and then
fixed (how: see :func:`choose`). Each fit is validated against the reference calculator on the
same suite (:data:`SUITE`, its reference labels computed once and cached), and the errors are
reported per domain: ``near`` (the fcc phases of Cu and Ag, what the hand-made set is built
around) and ``transfer`` (every other phase, the compounds, the vacancy, the MD snapshots of
the solid and the liquid alloy), with the property errors (V0, B0, C_ij, phonons, vacancy).

With ``--reference sevennet`` the same structures (their geometries come from the EMT runs)
are labelled again with SevenNet-0, a richer stand-in for DFT, and the suite's reference is
SevenNet-0 too.

``dedup`` measures de-duplication's effect: the ASSYST pool of each seed labelled with and
without it (every structure of the training set labelled), fitted with :data:`FIT` and
validated: labels saved, errors side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import pickle
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import set_value_sets as sets  # noqa: E402
from project_scale import machine  # noqa: E402

from assyst_nodes.calculators import EMT, CalculatorConfig  # noqa: E402
from assyst_nodes.stages.fit import LinearACE, fit  # noqa: E402
from assyst_nodes.stages.validate import Suite, SuiteReference, reference_suite, validate  # noqa: E402

CACHE: Final[Path] = Path(os.environ.get("ASSYST_SET_VALUE_CACHE", "/tmp/set_value_pools"))
POOL_LABELS: Final[int] = 1000
CHOICE_SEED: Final[int] = 100
CHOICE_SIZE: Final[int] = 300
SUITE: Final[Suite] = Suite(("Cu", "Ag"))
FIT: Final[LinearACE] = LinearACE(cutoff=5.0, functions=50, ridge=1e-8)
"""The fitting settings of every curve: ``choose`` picked them (cutoff 5 Å and 50 functions
per element scored best by far; ridge 0, 1e-10 and 1e-8 scored within 0.015 of each other,
and of equal scores the most regularised is taken, for the smallest sets; see RESULTS.md)."""
CANDIDATES: Final[tuple[LinearACE, ...]] = tuple(
    dict.fromkeys(
        [
            LinearACE(functions=f, ridge=r, cutoff=c)
            for f, r, c in itertools.product((50, 150, 300), (1e-8, 1e-6, 1e-4, 1e-2), (5.0, 6.0))
        ]
        + [  # the first grid's best lay at its edge (fewest functions, least ridge): beyond it
            LinearACE(functions=f, ridge=r, cutoff=c)
            for f, r, c in itertools.product((25, 50, 100), (0.0, 1e-10, 1e-8), (4.5, 5.0))
        ]
    )
)
"""The settings ``choose`` compares (each fit of a kind is cached: a longer list only fits
the new ones)."""
WEIGHTINGS: Final[tuple[str, ...]] = ("uniform", "energy")
HEADLINE: Final[tuple[str, ...]] = (
    "energy_rmse_near", "force_rmse_near", "energy_rmse_transfer", "force_rmse_transfer",
    "energy_rmse_all", "force_rmse_all", "mae_V0", "mae_B0", "mae_C11", "mae_C12", "mae_C44",
    "mae_phonon_rmse", "mae_vacancy_energy", "failed", "properties_failed",
)  # fmt: skip


def reference_calculator(name: str) -> CalculatorConfig:
    """``emt`` or ``sevennet`` (SevenNet-0, the extra ``mlip``)."""
    if name == "emt":
        return EMT()
    if name == "sevennet":
        from assyst_nodes.calculators.mlip import SevenNet

        return SevenNet(device="cpu")
    raise ValueError(f"reference must be 'emt' or 'sevennet', got {name!r}")


def suite_reference(name: str) -> SuiteReference:
    """The suite labelled with the reference ``name``, computed once and cached."""
    digest = hashlib.sha256(repr(SUITE).encode()).hexdigest()[:12]
    path = CACHE / f"suite-{name}-{digest}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            stored = pickle.load(handle)
        if stored["suite"] == SUITE:
            return stored["reference"]
    start = time.perf_counter()
    reference = reference_suite(SUITE, reference_calculator(name))
    print(f"reference suite with {name}: {time.perf_counter() - start:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump({"suite": SUITE, "reference": reference}, handle)
    return reference


def relabelled(pool: list, name: str, key: str) -> list:
    """``pool`` labelled with the reference ``name`` (EMT pools as they are), cached by ``key``."""
    if name == "emt":
        return pool
    path = CACHE / f"relabel-{name}-{key}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    from assyst_nodes.stages.isolated import IsolatedAtoms
    from assyst_nodes.stages.label import label

    structures = [a for a in pool if not sets.is_isolated(a)]
    out = label(structures, reference_calculator(name), duplicates=None, isolated=IsolatedAtoms())
    with path.open("wb") as handle:
        pickle.dump(out, handle)
    return out


def one_fit(
    structures: list, settings: LinearACE, reference: SuiteReference, folder: Path
) -> dict[str, Any]:
    """Fit ``structures`` with ``settings``, validate on ``reference``: the headline numbers
    and the times (s)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(structures, settings, folder)
        validation = validate(result.potential, reference)
    summary = validation.summary()
    return {
        **{k: summary.get(k, math.nan) for k in HEADLINE},
        "train_energy_rmse": result.errors["train"]["energy_rmse"],
        "train_force_rmse": result.errors["train"]["force_rmse"],
        "fit_seconds": result.seconds,
        "validate_seconds": validation.seconds,
        "left_out": result.left_out,
    }


def choose(args: argparse.Namespace) -> dict[str, Any]:
    """Pick the fitting settings once, on pools of seed :data:`CHOICE_SEED` (never used by a
    curve): every candidate of :data:`CANDIDATES` fits the :data:`CHOICE_SIZE`-structure subset of
    each kind's pool (uniform weights) and is validated on the EMT suite (each fit is kept in
    ``CACHE/choose-rows.json``, so a longer candidate list fits only the new ones); the score of a
    candidate is the mean over the kinds of log(energy RMSE, all) + log(force RMSE, all), so
    no kind's set decides alone and energy and force errors count alike. The lowest score
    wins."""
    reference = suite_reference("emt")
    rows = []
    done_file = CACHE / "choose-rows.json"
    done = json.loads(done_file.read_text()) if done_file.exists() else {}
    for kind in sets.KINDS:
        pool = sets.pool(kind, CHOICE_SEED, CHOICE_SIZE, CACHE)
        chosen = sets.subset(pool, CHOICE_SIZE, CHOICE_SEED)
        for settings in CANDIDATES:
            key = f"{kind} {settings!r}"
            if key not in done:
                digest = hashlib.sha256(key.encode()).hexdigest()[:12]
                row = one_fit(chosen, settings, reference, CACHE / "fits" / f"choose-{digest}")
                done[key] = {
                    "kind": kind,
                    "settings": str(settings),
                    "functions": settings.functions,
                    "ridge": settings.ridge,
                    "cutoff": settings.cutoff,
                    **row,
                }
                done_file.write_text(json.dumps(done))
                print(json.dumps(done[key]), flush=True)
            rows.append(done[key])
    scores = {}
    for settings in CANDIDATES:
        mine = [r for r in rows if r["settings"] == str(settings)]
        values = [
            math.log(r["energy_rmse_all"]) + math.log(r["force_rmse_all"])
            if r["energy_rmse_all"] > 0 and r["force_rmse_all"] > 0
            else math.inf
            for r in mine
        ]
        scores[str(settings)] = float(np.mean(values))
    best = min(scores, key=scores.get)
    return {"rows": rows, "scores": scores, "chosen": best}


def curves(args: argparse.Namespace) -> dict[str, Any]:
    """The learning curves: every kind, seed, size and weighting (see the module docstring)."""
    reference = suite_reference(args.reference)
    rows = []
    for seed, kind in itertools.product(args.seeds, args.kinds):
        start = time.perf_counter()
        pool = relabelled(
            sets.pool(kind, seed, POOL_LABELS, CACHE), args.reference, f"{kind}-{seed}"
        )
        pool_seconds = time.perf_counter() - start
        available = sets.count_labels(pool)
        for size, weighting in itertools.product(args.sizes, args.weightings):
            if size > available:
                print(f"{kind} seed {seed}: {available} labels < {size}; skipped", flush=True)
                continue
            chosen = sets.subset(pool, size, seed)
            settings = replace(FIT, weighting=weighting, functions=args.functions)
            folder = (
                CACHE / "fits" / f"{args.reference}-{kind}-{seed}-{size}-{weighting}"
                f"-{args.functions}"
            )
            row = one_fit(chosen, settings, reference, folder)
            rows.append(
                {
                    "reference": args.reference,
                    "kind": kind,
                    "seed": seed,
                    "size": size,
                    "weighting": weighting,
                    "fit": str(settings),
                    "pool_seconds": pool_seconds,
                    **row,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "aggregate": aggregate(rows)}


def dedup(args: argparse.Namespace) -> dict[str, Any]:
    """De-duplication at equal structures: each seed's ASSYST run labelled with it (its pool,
    made with ``duplicates=Duplicates()``, the default) and without it (the same run with
    ``duplicates=None``: every structure of the training set labelled); both fitted with
    :data:`FIT` and validated."""
    from assyst_nodes.calculators import EMT as Emt
    from assyst_nodes.pipeline import run_pipeline

    reference = suite_reference("emt")
    crystals = math.ceil(POOL_LABELS / sets.LABELS_PER_CRYSTAL * sets.MARGIN) + 1
    rows = []
    for seed in args.seeds:
        record = sets.pool_record("assyst", seed, POOL_LABELS, CACHE)
        sampled = len(
            {str(a.info.get("seed")) for a in record["structures"] if not sets.is_isolated(a)}
        )
        if sampled != crystals:  # the pool needed a second run: not the run below
            raise RuntimeError(f"the assyst pool of seed {seed} has {sampled} crystals")
        path = CACHE / f"dedup-none-{seed}.pkl"
        if path.exists():
            with path.open("rb") as handle:
                everything = pickle.load(handle)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = run_pipeline(
                    max_structures=crystals,
                    rng=seed,
                    label_calculator=Emt(),
                    duplicates=None,
                    progress=False,
                )
            everything = run.stages["labelled"]
            with path.open("wb") as handle:
                pickle.dump(everything, handle)
        for deduplicate, labelled in ((True, record["structures"]), (False, everything)):
            folder = CACHE / "fits" / f"dedup-{seed}-{deduplicate}"
            row = one_fit(labelled, FIT, reference, folder)
            rows.append(
                {
                    "seed": seed,
                    "deduplicate": deduplicate,
                    "labels": sets.count_labels(labelled),
                    "crystals": sampled,
                    **row,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows}


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per (reference, kind, size, weighting)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["reference"], row["kind"], row["size"], row["weighting"])
        groups.setdefault(key, []).append(row)
    out = []
    for (reference, kind, size, weighting), members in sorted(groups.items()):
        entry: dict[str, Any] = {
            "reference": reference,
            "kind": kind,
            "size": size,
            "weighting": weighting,
            "seeds": len(members),
        }
        for name in (*HEADLINE, "fit_seconds", "validate_seconds"):
            values = np.array([m[name] for m in members], dtype=float)
            entry[name] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
            entry[f"{name}_std"] = (
                float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else math.nan
            )
        out.append(entry)
    return out


def _cell(entry: dict[str, Any], name: str, digits: int = 1) -> str:
    """``mean ± std`` of ``name`` in an aggregated entry."""
    std = entry.get(f"{name}_std", math.nan)
    spread = "" if not math.isfinite(std) else f" ± {std:.{digits}f}"
    return f"{entry[name]:.{digits}f}{spread}"


def table(aggregated: list[dict[str, Any]]) -> str:
    """A markdown table of the aggregated curves (mean ± std over seeds)."""
    header = (
        "| reference | set | labels | weights | E near | F near | E transfer | F transfer "
        "| B0 | C44 | vacancy |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for e in aggregated:
        lines.append(
            f"| {e['reference']} | {e['kind']} | {e['size']} | {e['weighting']} | "
            f"{_cell(e, 'energy_rmse_near')} | {_cell(e, 'force_rmse_near', 0)} | "
            f"{_cell(e, 'energy_rmse_transfer')} | {_cell(e, 'force_rmse_transfer', 0)} | "
            f"{_cell(e, 'mae_B0')} | {_cell(e, 'mae_C44')} | "
            f"{_cell(e, 'mae_vacancy_energy', 3)} |"
        )
    return header + "\n".join(lines) + "\n"


def figure(aggregated: list[dict[str, Any]], path: Path) -> Path:
    """Learning curves: energy and force RMSE, near and transfer, against labels, per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("energy_rmse_near", "energy RMSE near (meV/atom)"),
        ("force_rmse_near", "force RMSE near (meV/Å)"),
        ("energy_rmse_transfer", "energy RMSE transfer (meV/atom)"),
        ("force_rmse_transfer", "force RMSE transfer (meV/Å)"),
    ]
    weightings = sorted({e["weighting"] for e in aggregated})
    fig, axes = plt.subplots(len(weightings), 4, figsize=(16, 3.6 * len(weightings)), squeeze=False)
    for row, weighting in enumerate(weightings):
        for col, (name, label) in enumerate(panels):
            ax = axes[row][col]
            for kind in sets.KINDS:
                points = sorted(
                    (e["size"], e[name], e[f"{name}_std"])
                    for e in aggregated
                    if e["kind"] == kind and e["weighting"] == weighting
                )
                if not points:
                    continue
                x, y, s = map(np.array, zip(*points, strict=True))
                ax.errorbar(x, y, yerr=np.nan_to_num(s), marker="o", capsize=3, label=kind)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("labelled structures")
            ax.set_ylabel(label)
            ax.set_title(f"{weighting} weights")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(args: argparse.Namespace) -> dict[str, Any]:
    """The curves of several ``curves`` runs (e.g. one per seed, run as their pools were
    built) in one record: their rows, the aggregate, the table and the figure."""
    rows: list[dict[str, Any]] = []
    runs = []
    for path in args.inputs:
        record = json.loads(Path(path).read_text())
        rows += record["rows"]
        runs.append(
            {
                k: record[k]
                for k in ("arguments", "machine", "load_before", "load_after", "seconds")
                if k in record
            }
        )
    return {"rows": rows, "aggregate": aggregate(rows), "runs": runs}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    chooser = commands.add_parser("choose", help="pick the fitting settings on seed 100")
    curve = commands.add_parser("curves", help="the learning curves")
    curve.add_argument("--reference", choices=("emt", "sevennet"), default="emt")
    curve.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    curve.add_argument("--sizes", type=int, nargs="+", default=[150, 300, 600, 1000])
    curve.add_argument("--kinds", nargs="+", choices=sets.KINDS, default=list(sets.KINDS))
    curve.add_argument("--weightings", nargs="+", choices=WEIGHTINGS, default=list(WEIGHTINGS))
    curve.add_argument("--figure", type=Path, default=None)
    curve.add_argument(
        "--functions", type=int, default=FIT.functions,
        help="basis functions per element (FIT's by default; another value for every set "
        "alike is a check of the model's capacity, not a tuning per set)",
    )
    merged = commands.add_parser("report", help="merge curves runs: table, figure, one JSON")
    merged.add_argument("inputs", type=Path, nargs="+")
    merged.add_argument("--figure", type=Path, default=None)
    dedupe = commands.add_parser("dedup", help="de-duplication's effect at equal structures")
    dedupe.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    for sub in (chooser, curve, dedupe, merged):
        sub.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    result = {"choose": choose, "curves": curves, "dedup": dedup, "report": report}[args.command](
        args
    )
    record = {
        "benchmark": f"set_value {args.command}",
        "arguments": json.loads(json.dumps(vars(args), default=str)),
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "seconds": time.perf_counter() - start,
        "fit": str(FIT),
        "suite": str(SUITE),
        **result,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1, default=float))
    if args.command in ("curves", "report"):
        print(table(result["aggregate"]))
        if args.figure is not None:
            print(figure(result["aggregate"], args.figure))
    print(f"{args.command}: {record['seconds']:.0f} s; written {args.json}")


if __name__ == "__main__":
    main()
