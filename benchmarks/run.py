"""Benchmarks of assyst_nodes against the published reference package ``assyst``.

    python benchmarks/run.py [--quick] [--only NAME ...] [--repeats N] [--no-reference]
                             [--reference-python PYTHON] [--output results.json]

Each benchmark runs the same work (formulas, space groups, radii, perturbations, relaxation
settings) through our code and through the reference, in two long-lived worker processes
(``worker.py``; the reference's with ``--reference-python``, default this interpreter), one
repetition of each side after the other (ours, reference, ours, reference, ...) so that
background load hits both alike. It reports medians, ratios and targets, the machine, the load
average around every number and the date; writes all of it as JSON (``--output``) and prints a
Markdown table. Nothing is installed: if ``assyst`` cannot be imported by the reference
interpreter, that is said and only our side runs (the comparisons are then reported missing).
Peak memory is the ``ru_maxrss`` of a fresh process per pipeline (``pipeline_rss.py``).

Names for ``--only``: sampling, distance, perturb, relax, storage, memory, scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BENCHMARKS = ("sampling", "distance", "perturb", "relax", "storage", "memory", "scale")

FULL: dict[str, Any] = {
    "repeats": 3,
    "crystals": {"n": 24, "seed": 7},
    "sampling": {"max_atoms": 4, "group_step": 11},
    "distance": [
        {"label": "4 atoms", "n": 2000, "repeat": 1, "max_sigma": 0.7, "seed": 11},
        {"label": "108 atoms", "n": 300, "repeat": 3, "max_sigma": 0.3, "seed": 12},
    ],
    "perturb": {"copies": 10, "retries": 10},
    "relax": {"n": 24, "reference_repeats": 1, "default_blas_n": 3},
    "storage": {"n": 100_000, "n_atoms": 8},
    "memory": {"max_structures": 30},
    "scale": {"sizes": [1000, 5000, 20_000]},
}
"""Workloads of a full run (about 20 minutes on a loaded 2-core machine)."""

QUICK: dict[str, Any] = {
    "repeats": 1,
    "crystals": {"n": 6, "seed": 7},
    "sampling": {"max_atoms": 2, "group_step": 57},
    "distance": [
        {"label": "4 atoms", "n": 60, "repeat": 1, "max_sigma": 0.7, "seed": 11},
        {"label": "108 atoms", "n": 6, "repeat": 3, "max_sigma": 0.3, "seed": 12},
    ],
    "perturb": {"copies": 1, "retries": 10},
    "relax": {"n": 2, "reference_repeats": 1, "default_blas_n": 1},
    "storage": {"n": 2000, "n_atoms": 8},
    "memory": {"max_structures": 2},
    "scale": {"sizes": [100, 400]},
}
"""Tiny workloads that exercise every code path in seconds (numbers are not meaningful)."""

TARGETS: dict[str, tuple[str, float, str]] = {
    "sampling": ("ours/reference structures per second, 1 core", 1.5, ">="),
    "sampling_workers": ("speed-up with 2 workers (near-linear)", 1.7, ">="),
    "distance 4 atoms": ("reference time / our time", 3.0, ">="),
    "distance 108 atoms": ("reference time / our time", 10.0, ">="),
    "perturb": ("ours/reference structures per second", 1.0, ">="),
    "relax_overhead": ("node + project time / bare ASE time - 1", 0.10, "<="),
    "relax_workers": ("speed-up with 2 workers", 1.7, ">="),
    "storage_write": ("seconds to write", 10.0, "<="),
    "storage_read": ("seconds to read back", 10.0, "<="),
    "storage_disk": ("project bytes / raw array bytes", 2.0, "<="),
    "memory": ("our peak RSS / reference peak RSS", 1.5, "<="),
    "memory_project": ("our peak RSS (macro into a project) / reference peak RSS", 1.5, "<="),
    "memory_run_pipeline": ("our peak RSS (run_pipeline) / reference peak RSS", 1.5, "<="),
    "scale": ("time per structure at the largest size / at the smallest", 1.2, "<="),
}
"""Per row: what is measured, the bound and its direction. ``scale``'s 1.2 is our reading of
"linear" (at most 20 % more time per structure at 20x the size)."""


def log(message: str) -> None:
    """Progress to stderr (stdout carries the Markdown table)."""
    print(
        f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {message}",
        file=sys.stderr,
        flush=True,
    )


# ------------------------------------------------------------------------------------------
# workers
# ------------------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker could not start or a case raised inside it."""


class Worker:
    """One ``worker.py`` process of one side; :meth:`call` runs a case and returns its result."""

    def __init__(self, side: str, python: str, workdir: Path) -> None:
        self.side = side
        self.python = python
        self.log_path = workdir / f"worker-{side}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # closed in close()
        env = dict(os.environ, PYTHONUNBUFFERED="1", ASSYST_PROGRESS="0")
        self.process = subprocess.Popen(
            [python, str(HERE / "worker.py"), side],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=workdir,
            env=env,
            text=True,
        )
        hello = self._answer()
        if not hello["ok"]:
            self.close()
            raise WorkerError(hello["error"].strip().splitlines()[-1])

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise WorkerError(
                f"the {self.side} worker ({self.python}) exited with code "
                f"{self.process.returncode}; its log {self.log_path} ends with:\n{self.tail()}"
            )
        return json.loads(line)

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def call(self, case: str, **params: Any) -> dict[str, Any]:
        """Run ``case`` with ``params``; the result gains the 1-min load average before it."""
        assert self.process.stdin is not None
        load = os.getloadavg()[0]
        self.process.stdin.write(json.dumps({"case": case, "params": params}) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        if not answer["ok"]:
            raise WorkerError(f"{self.side} {case}{params} failed:\n{answer['error']}")
        result = answer["result"]
        if isinstance(result, dict):
            result["load_before"] = round(load, 2)
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start_reference(python: str | None, workdir: Path) -> tuple[Worker | None, str]:
    """The reference worker, or ``None`` and why not."""
    if python is None:
        return None, "not run (--no-reference)"
    try:
        return Worker("reference", python, workdir), "ok"
    except (WorkerError, OSError) as error:
        return None, f"unavailable with {python}: {error}"


# ------------------------------------------------------------------------------------------
# statistics and rows
# ------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def verdict(name: str, value: float | None) -> dict[str, Any]:
    """The target of ``name`` and whether ``value`` meets it (``None``: not measured)."""
    what, bound, direction = TARGETS[name]
    met = None
    if value is not None:
        met = value >= bound if direction == ">=" else value <= bound
    return {"measures": what, "bound": f"{direction} {bound:g}", "value": value, "met": met}


def interleave(
    workers: Sequence[tuple[str, Worker | None]],
    repeats: int,
    case: str,
    params: Callable[[str, int], dict[str, Any]],
    limits: dict[str, int] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``repeats`` rounds of ``case``; each round runs every variant once, in the given order.

    ``workers`` is ``(variant, worker)`` pairs (a ``None`` worker is skipped); ``params(variant,
    round)`` gives each call's parameters; ``limits`` caps the rounds of some variants."""
    limits = limits or {}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v, w in workers if w is not None}
    for rep in range(repeats):
        for variant, worker in workers:
            if worker is None or rep >= limits.get(variant, repeats):
                continue
            result = worker.call(case, **params(variant, rep))
            log(
                f"{case} {variant} #{rep + 1}: {result['wall']:.2f} s wall, "
                f"{result['cpu']:.2f} s CPU, {result['count']} structures"
            )
            runs[variant].append(result)
    return runs


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of wall and CPU seconds, structures per wall and per CPU second, the counts."""
    return {
        "wall": median([r["wall"] for r in runs]),
        "cpu": median([r["cpu"] for r in runs]),
        "rate": median([r["count"] / r["wall"] for r in runs if r["wall"] > 0]),
        "rate_cpu": median([r["count"] / r["cpu"] for r in runs if r["cpu"] > 0]),
        "counts": [r["count"] for r in runs],
        "repeats": len(runs),
    }


def row(
    name: str, runs: dict[str, list[dict[str, Any]]], load: tuple[float, float], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "runs": runs,
        "summary": {variant: summarise(r) for variant, r in runs.items() if r},
        "load_before": round(load[0], 2),
        "load_after": round(load[1], 2),
        **extra,
    }


# ------------------------------------------------------------------------------------------
# benchmarks
# ------------------------------------------------------------------------------------------


class Context:
    """What every benchmark needs: the workers, the settings and a scratch folder."""

    def __init__(
        self,
        ours: Worker,
        reference: Worker | None,
        settings: dict[str, Any],
        repeats: int,
        workdir: Path,
    ) -> None:
        self.ours = ours
        self.reference = reference
        self.settings = settings
        self.repeats = repeats
        self.workdir = workdir
        self._crystals: str | None = None

    def crystals(self) -> str:
        """Path of the crystals (sampled once by our sampler) that relax and perturb start from."""
        if self._crystals is None:
            path = self.workdir / "crystals.npz"
            made = self.ours.call("make_crystals", path=str(path), **self.settings["crystals"])
            log(f"inputs: {made['count']} Cu-Ag crystals sampled in {made['wall']:.1f} s")
            self._crystals = str(path)
        return self._crystals

    def folder(self, name: str) -> str:
        """A new, empty project folder path."""
        path = self.workdir / name
        if path.exists():
            shutil.rmtree(path)
        return str(path)


def bench_sampling(ctx: Context) -> list[dict[str, Any]]:
    params = ctx.settings["sampling"]
    load = os.getloadavg()[0]
    runs = interleave(
        [("ours", ctx.ours), ("reference", ctx.reference), ("ours_2_workers", ctx.ours)],
        ctx.repeats,
        "sampling",
        lambda variant, rep: {
            **params,
            "seed": 1000 + rep,
            "workers": 2 if variant == "ours_2_workers" else 1,
        },
    )
    out = row("sampling", runs, (load, os.getloadavg()[0]), params=params)
    s = out["summary"]
    ours, ref, two = s["ours"], s.get("reference"), s["ours_2_workers"]
    out["ratio"] = ratio(ours["rate"], ref and ref["rate"])
    out["ratio_cpu"] = ratio(ours["rate_cpu"], ref and ref["rate_cpu"])
    out["target"] = verdict("sampling", out["ratio"])
    speedup = ratio(ours["wall"], two["wall"])
    workers_row = row("sampling, 2 workers", {}, (load, os.getloadavg()[0]), params=params)
    workers_row["summary"] = {"ours": ours, "ours_2_workers": two}
    workers_row["ratio"] = speedup
    workers_row["target"] = verdict("sampling_workers", speedup)
    return [out, workers_row]


def bench_distance(ctx: Context) -> list[dict[str, Any]]:
    rows = []
    for params in ctx.settings["distance"]:
        label = params["label"]
        call = {k: v for k, v in params.items() if k != "label"}
        load = os.getloadavg()[0]
        runs = interleave(
            [("ours", ctx.ours), ("reference", ctx.reference)],
            ctx.repeats,
            "distance",
            lambda variant, rep, call=call: call,
        )
        out = row(f"distance {label}", runs, (load, os.getloadavg()[0]), params=params)
        s = out["summary"]
        ref = s.get("reference")
        out["ratio"] = ratio(ref and ref["wall"], s["ours"]["wall"])
        out["ratio_cpu"] = ratio(ref and ref["cpu"], s["ours"]["cpu"])
        out["target"] = verdict(f"distance {label}", out["ratio"])
        ours_verdicts = runs["ours"][0]["verdicts"]
        out["kept"] = {"ours": runs["ours"][0]["kept"]}
        if ref is not None:
            ref_verdicts = runs["reference"][0]["verdicts"]
            out["kept"]["reference"] = runs["reference"][0]["kept"]
            out["verdict_mismatches"] = sum(
                a != b for a, b in zip(ours_verdicts, ref_verdicts, strict=True)
            )
        for variant_runs in runs.values():
            for r in variant_runs:
                r.pop("verdicts")
        rows.append(out)
    return rows


def bench_perturb(ctx: Context) -> list[dict[str, Any]]:
    params = ctx.settings["perturb"]
    crystals = ctx.crystals()
    load = os.getloadavg()[0]
    runs = interleave(
        [("ours", ctx.ours), ("reference", ctx.reference)],
        ctx.repeats,
        "perturbing",
        lambda variant, rep: {**params, "crystals": crystals, "seed": 2000 + rep},
    )
    out = row("perturb", runs, (load, os.getloadavg()[0]), params=params)
    s = out["summary"]
    ref = s.get("reference")
    out["ratio"] = ratio(s["ours"]["rate"], ref and ref["rate"])
    out["ratio_cpu"] = ratio(s["ours"]["rate_cpu"], ref and ref["rate_cpu"])
    out["target"] = verdict("perturb", out["ratio"])
    return [out]


def bench_relax(ctx: Context) -> list[dict[str, Any]]:
    settings = ctx.settings["relax"]
    n = settings["n"]
    crystals = ctx.crystals()
    warm = ctx.ours.call("warm_nodes")
    log(f"relax: node and project layers imported in {warm['wall']:.1f} s (not timed below)")
    variants: list[tuple[str, Worker | None]] = [
        ("bare_ase", ctx.ours),
        ("core", ctx.ours),
        ("node_project", ctx.ours),
        ("reference", ctx.reference),
        ("core_2_workers", ctx.ours),
    ]
    kinds = {
        "bare_ase": ("bare", 1),
        "core": ("core", 1),
        "node_project": ("node_project", 1),
        "reference": ("core", 1),
        "core_2_workers": ("core", 2),
    }

    def params(variant: str, rep: int) -> dict[str, Any]:
        kind, workers = kinds[variant]
        return {
            "crystals": crystals,
            "n": n,
            "variant": kind,
            "workers": workers,
            "folder": ctx.folder(f"relax-{variant}-{rep}"),
        }

    load = os.getloadavg()[0]
    # the reference takes several times longer (BLAS threads, see below): fewer rounds of it
    runs = interleave(
        variants,
        ctx.repeats,
        "relaxing",
        params,
        limits={"reference": settings["reference_repeats"]},
    )
    # once, on the first few structures: the bare loop with the BLAS library's default thread
    # count (what the reference and a plain script get); our stages limit BLAS to one thread
    k = settings["default_blas_n"]
    once = ctx.ours.call("relaxing", crystals=crystals, n=k, variant="bare_default_blas")
    log(
        f"relaxing bare_ase_default_blas (first {k}): {once['wall']:.2f} s wall, "
        f"{once['cpu']:.2f} s CPU"
    )
    load_after = os.getloadavg()[0]
    s = {variant: summarise(r) for variant, r in runs.items() if r}
    energies = {variant: r[0]["energies"] for variant, r in runs.items() if r}
    energies["bare_ase_default_blas"] = once["energies"]
    deviation = max(
        abs(a - b) for e in energies.values() for a, b in zip(e, energies["bare_ase"], strict=False)
    )
    bare = s["bare_ase"]["wall"]
    same_first = median([sum(r["seconds_each"][:k]) for r in runs["bare_ase"]])
    common = {
        "params": settings,
        "max_energy_difference_eV": deviation,
        "converged": {v: r[0]["converged"] for v, r in runs.items() if r},
        "default_blas": {
            "n": k,
            "wall": once["wall"],
            "cpu": once["cpu"],
            "bare_one_thread_wall_same_structures": same_first,
            "slowdown": ratio(once["wall"], same_first),
        },
    }
    overhead = row("relax overhead (node + project)", runs, (load, load_after), **common)
    overhead["ratio"] = ratio(s["node_project"]["wall"], bare) - 1
    overhead["ratio_cpu"] = ratio(s["node_project"]["cpu"], s["bare_ase"]["cpu"]) - 1
    overhead["core_overhead"] = ratio(s["core"]["wall"], bare) - 1
    overhead["reference_overhead"] = (
        ratio(s["reference"]["wall"], bare) - 1 if "reference" in s else None
    )
    overhead["fixed_seconds"] = s["node_project"]["wall"] - bare
    overhead["paired_overheads"] = [
        node["wall"] / plain["wall"] - 1
        for node, plain in zip(runs["node_project"], runs["bare_ase"], strict=True)
    ]
    overhead["target"] = verdict("relax_overhead", overhead["ratio"])
    speed = row("relax, 2 workers", {}, (load, load_after), **common)
    speed["summary"] = {"core": s["core"], "core_2_workers": s["core_2_workers"]}
    speed["ratio"] = ratio(s["core"]["wall"], s["core_2_workers"]["wall"])
    speed["target"] = verdict("relax_workers", speed["ratio"])
    return [overhead, speed]


def bench_storage(ctx: Context) -> list[dict[str, Any]]:
    params = ctx.settings["storage"]
    load = os.getloadavg()[0]
    runs = interleave(
        [("ours", ctx.ours)],
        ctx.repeats,
        "storage",
        lambda variant, rep: {**params, "seed": 3000, "folder": ctx.folder(f"storage-{rep}")},
    )
    load_after = os.getloadavg()[0]
    r = runs["ours"]
    write = median([x["wall"] for x in r])
    read = median([x["read_wall"] for x in r])
    disk = r[0]["disk_bytes"] / r[0]["raw_bytes"]
    extra = {
        "params": params,
        "disk_bytes": r[0]["disk_bytes"],
        "h5_bytes": r[0]["h5_bytes"],
        "raw_bytes": r[0]["raw_bytes"],
        "raw_bytes_with_info": r[0]["raw_bytes_with_info"],
        "round_trip_equal": all(x["round_trip_equal"] for x in r),
    }
    rows = []
    for name, value, key in (
        ("storage write", write, "storage_write"),
        ("storage read", read, "storage_read"),
        ("storage disk size", disk, "storage_disk"),
    ):
        out = row(name, runs if key == "storage_write" else {}, (load, load_after), **extra)
        if key == "storage_read":
            out["summary"] = {
                "ours": {
                    "wall": read,
                    "cpu": median([x["read_cpu"] for x in r]),
                    "counts": [x["count"] for x in r],
                    "repeats": len(r),
                }
            }
        elif key == "storage_disk":
            out["summary"] = {}
            out["disk_to_raw_with_info"] = r[0]["disk_bytes"] / r[0]["raw_bytes_with_info"]
        out["ratio"] = value
        out["target"] = verdict(key, value)
        rows.append(out)
    return rows


def run_with_rss(command: list[str], cwd: Path, log_file: IO[bytes]) -> tuple[int, int, str]:
    """Run ``command``; its exit code, its peak resident set size (bytes) and its stdout."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=log_file,
        cwd=cwd,
        env=dict(os.environ, ASSYST_PROGRESS="0"),
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return process.returncode, usage.ru_maxrss * scale, output


def bench_memory(ctx: Context, ours_python: str, reference_python: str | None) -> list[dict]:
    params = ctx.settings["memory"]
    variants = [
        ("ours", ours_python),
        ("reference", reference_python),
        ("ours_run_pipeline", ours_python),
        ("ours_project", ours_python),
    ]
    if ctx.reference is None:
        variants = [v for v in variants if v[0] != "reference"]
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v, _ in variants}
    with open(ctx.workdir / "memory.log", "ab") as log_file:
        for variant, python in variants:
            assert python is not None
            folder = ctx.folder(f"memory-{variant}")
            Path(folder).mkdir()
            command = [
                python,
                str(HERE / "pipeline_rss.py"),
                variant,
                str(params["max_structures"]),
                "42",
                folder,
            ]
            before = os.getloadavg()[0]
            code, rss, output = run_with_rss(command, ctx.workdir, log_file)
            if code != 0:
                raise WorkerError(
                    f"memory pipeline {variant} exited with {code}; see "
                    f"{ctx.workdir / 'memory.log'}"
                )
            result = json.loads(output.strip().splitlines()[-1])
            result.update(
                {
                    "rss_bytes": rss,
                    "load_before": round(before, 2),
                    "count": result["counts"]["training_set"],
                    "cpu": None,
                }
            )
            log(
                f"memory {variant}: peak RSS {rss / 2**20:.0f} MiB, {result['wall']:.1f} s, "
                f"counts {result['counts']}"
            )
            runs[variant].append(result)
    out = {
        "name": "memory (peak RSS, Cu-Ag pipeline)",
        "runs": runs,
        "params": params,
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "summary": {
            v: {
                "rss_mib": r[0]["rss_bytes"] / 2**20,
                "wall": r[0]["wall"],
                "counts": [r[0]["count"]],
                "repeats": 1,
            }
            for v, r in runs.items()
        },
    }
    ref = runs.get("reference")
    out["ratio"] = ratio(runs["ours"][0]["rss_bytes"], ref and ref[0]["rss_bytes"])
    out["target"] = verdict("memory", out["ratio"])
    project = dict(out, name="memory, macro into a project (what assyst-nodes run does)", runs={})
    project["summary"] = {
        v: out["summary"][v] for v in ("ours_project", "reference") if v in out["summary"]
    }
    project["ratio"] = ratio(runs["ours_project"][0]["rss_bytes"], ref and ref[0]["rss_bytes"])
    project["target"] = verdict("memory_project", project["ratio"])
    macro = dict(out, name="memory, run_pipeline (the macro, in memory)", runs={})
    macro["summary"] = {
        v: out["summary"][v] for v in ("ours_run_pipeline", "reference") if v in out["summary"]
    }
    macro["ratio"] = ratio(runs["ours_run_pipeline"][0]["rss_bytes"], ref and ref[0]["rss_bytes"])
    macro["target"] = verdict("memory_run_pipeline", macro["ratio"])
    out["summary"] = {v: out["summary"][v] for v in ("ours", "reference") if v in out["summary"]}
    return [out, macro, project]


def bench_scale(ctx: Context) -> list[dict[str, Any]]:
    sizes = ctx.settings["scale"]["sizes"]
    crystals = ctx.crystals()
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {}
    for size in sizes:
        result = ctx.ours.call(
            "scale", crystals=crystals, size=size, seed=4000, folder=ctx.folder(f"scale-{size}")
        )
        log(
            f"scale {size}: {result['wall']:.2f} s (perturb {result['perturb_wall']:.2f}, "
            f"filter {result['filter_wall']:.2f}, store {result['store_wall']:.2f}), "
            f"{result['count']} structures"
        )
        runs[f"ours_{size}"] = [result]
    out = row(
        "scale (perturb + filter + store)",
        runs,
        (load, os.getloadavg()[0]),
        params={"sizes": sizes},
    )
    first, last = runs[f"ours_{sizes[0]}"][0], runs[f"ours_{sizes[-1]}"][0]
    out["per_structure_ms"] = {
        size: 1000 * runs[f"ours_{size}"][0]["wall"] / runs[f"ours_{size}"][0]["count"]
        for size in sizes
    }
    out["ratio"] = ratio(last["wall"] / last["count"], first["wall"] / first["count"])
    out["target"] = verdict("scale", out["ratio"])
    return [out]


# ------------------------------------------------------------------------------------------
# machine, report
# ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and the state of this repository."""
    model = platform.processor() or platform.machine()
    memory = None
    with _suppress():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with _suppress():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info = {
        "cpu": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }
    with _suppress():
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info["commit"] = commit
        info["uncommitted_files"] = len(dirty.splitlines())
    return info


class _suppress:
    """Ignore the failure of an optional probe (no /proc, no git)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(
            exc[0], (OSError, subprocess.SubprocessError, ValueError)
        )  # type: ignore[arg-type]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "missing"
    return f"{value:.{digits}g}"


def _side(row_: dict[str, Any], variant: str) -> str:
    s = row_.get("summary", {}).get(variant)
    if s is None:
        return "missing" if variant == "reference" else "-"
    if "rss_mib" in s:
        return f"{s['rss_mib']:.0f} MiB"
    counts = s.get("counts") or []
    count = (
        f", n={counts[0]}"
        if counts and len(set(counts)) == 1
        else (f", n={min(counts)}-{max(counts)}" if counts else "")
    )
    cpu = f" ({s['cpu']:.2f} CPU)" if s.get("cpu") is not None else ""
    return f"{s['wall']:.3g} s{cpu}{count}"


def markdown(results: dict[str, Any]) -> str:
    """The table of RESULTS.md: one row per measured quantity."""
    m = results["machine"]
    lines = [
        f"Run {results['date']} on {m['cpu']}, {m['usable_cores']} usable cores "
        f"({m['logical_cores']} logical), {m['memory']}, Python {m['python']}, "
        f"commit {m.get('commit', '?')} (+{m.get('uncommitted_files', '?')} uncommitted files); "
        f"{results['repeats']} repeats, medians; {results['mode']} mode; "
        f"total {results['total_seconds'] / 60:.1f} min.",
        f"Reference: {results['reference']['status']}"
        + (
            f" ({', '.join(f'{k} {v}' for k, v in results['reference']['versions'].items())})"
            if results["reference"].get("versions")
            else ""
        ),
        f"Ours: {', '.join(f'{k} {v}' for k, v in results['ours_versions'].items())}",
        "",
        "| benchmark | ours | reference / baseline | measured | target | met | load 1 min "
        "before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["benchmarks"]:
        variants = list(r.get("summary", {}))
        ours_variant = next(
            (v for v in variants if v.startswith("ours") or v == "core"),
            variants[0] if variants else "ours",
        )
        other = [v for v in variants if v != ours_variant]
        if r["name"].startswith("relax overhead"):
            ours_cell = _side(r, "node_project")
            blas = r["default_blas"]
            other_cell = (
                f"bare ASE {_side(r, 'bare_ase')}; core relax() {_side(r, 'core')}; "
                f"reference {_side(r, 'reference')}; bare ASE with default BLAS threads, first "
                f"{blas['n']}: {blas['wall']:.3g} s vs "
                f"{blas['bare_one_thread_wall_same_structures']:.3g} s with 1 thread; "
                f"fixed overhead {r['fixed_seconds']:.2g} s"
            )
        elif r["name"].startswith("scale"):
            ours_cell = "; ".join(
                f"{k}: {v:.3g} ms/structure" for k, v in r["per_structure_ms"].items()
            )
            other_cell = "-"
        else:
            ours_cell = _side(r, ours_variant)
            other_cell = "; ".join(f"{v}: {_side(r, v)}" for v in other) or (
                "missing"
                if r["target"]["measures"].startswith(("ours/", "reference", "our "))
                else "-"
            )
        target = r["target"]
        met = {True: "yes", False: "**no**", None: "missing"}[target["met"]]
        cpu = f" (from CPU times: {_fmt(r['ratio_cpu'])})" if r.get("ratio_cpu") is not None else ""
        lines.append(
            f"| {r['name']} | {ours_cell} | {other_cell} | {target['measures']}: "
            f"{_fmt(target['value'])}{cpu} | {target['bound']} | {met} | "
            f"{r['load_before']:.2f} → {r['load_after']:.2f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny workloads (seconds; checks the harness, not the speed)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repetitions per side (default 3, --quick 1)"
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="run our side only (comparisons are reported missing)",
    )
    parser.add_argument(
        "--reference-python",
        default=sys.executable,
        help="interpreter that can import assyst (default: this one)",
    )
    parser.add_argument(
        "--output",
        default="benchmark_results.json",
        help="JSON file to write (default: benchmark_results.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if (
        args.reference_python
        and not shutil.which(args.reference_python)
        and not Path(args.reference_python).is_file()
    ):
        parser.error(f"--reference-python {args.reference_python!r} is not an executable")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    settings = QUICK if args.quick else FULL
    repeats = args.repeats or settings["repeats"]
    chosen = [name for name in BENCHMARKS if args.only is None or name in args.only]
    start = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "mode": "quick" if args.quick else "full",
        "repeats": repeats,
        "machine": machine(),
        "load_at_start": os.getloadavg(),
        "settings": {name: settings.get(name) for name in chosen},
        "benchmarks": [],
    }
    reference_python = None if args.no_reference else args.reference_python
    with tempfile.TemporaryDirectory(prefix="assyst-bench-") as scratch:
        workdir = Path(scratch)
        ours = Worker("ours", sys.executable, workdir)
        reference, status = start_reference(reference_python, workdir)
        log(f"reference: {status}")
        results["ours_versions"] = ours.call("info")
        results["ours_versions"].pop("load_before", None)
        results["reference"] = {"python": reference_python, "status": status}
        if reference is not None:
            versions = reference.call("info")
            versions.pop("load_before", None)
            results["reference"]["versions"] = versions
        ctx = Context(ours, reference, settings, repeats, workdir)
        benches: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "sampling": lambda: bench_sampling(ctx),
            "distance": lambda: bench_distance(ctx),
            "perturb": lambda: bench_perturb(ctx),
            "relax": lambda: bench_relax(ctx),
            "storage": lambda: bench_storage(ctx),
            "memory": lambda: bench_memory(
                ctx, sys.executable, reference_python if reference else None
            ),
            "scale": lambda: bench_scale(ctx),
        }
        try:
            for name in chosen:
                log(f"--- {name}")
                results["benchmarks"].extend(benches[name]())
        except WorkerError as error:
            print(f"benchmark failed: {error}\nours log tail:\n{ours.tail()}", file=sys.stderr)
            return 1
        finally:
            ours.close()
            if reference is not None:
                reference.close()
    results["load_at_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - start
    Path(args.output).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(markdown(results))
    log(f"wrote {args.output}; total {results['total_seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
