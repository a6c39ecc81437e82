"""The Python examples of the README and the docs run, and do what their text says.

Every ```` ```python ```` block of ``README.md``, ``docs/*.md`` and ``docs/stages/*.md`` is run
on its own: in a fresh namespace, in the test's temporary working directory (with a temporary
HOME, see conftest.py). A page's text may supply names an example uses (``crystals``, a project
``pr`` with a sample job ``sample_cu``, your DFT config ``my_dft_config`` ...): the
:data:`SETUPS` entry of the block defines them first (its ``prelude``), makes the sizes small
where the example states them (``smaller``: each replaced text must occur in the block), names
what the example needs (an optional extra or a service: it skips with the reason printed
outside CI and fails under ``CI=true``, like every test that needs one; see services.py) and
checks its results (``check``). A block without an entry must run as it is.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from services import in_ci

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "docs" / "stages").glob("*.md"))]  # fmt: skip

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Example:
    """One ``python`` block: its page (relative to the repository), number on the page, line."""

    page: str
    number: int
    line: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}#{self.number}"


@dataclass(frozen=True)
class Setup:
    """How to run the block of a page that contains ``match`` (see the module docstring)."""

    match: str
    prelude: str = ""
    smaller: tuple[tuple[str, str], ...] = ()
    needs: tuple[str, ...] = ()
    check: str = ""


def _examples() -> list[Example]:
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        blocks = re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)
        for number, block in enumerate(blocks):
            line = text.count("\n", 0, block.start()) + 2
            out.append(Example(str(page.relative_to(ROOT)), number, line, block.group(1)))
    return out


EXAMPLES = _examples()

# --- what the pages' text supplies -----------------------------------------------------------
CRYSTALS = """
from assyst_nodes.stages.sample import sample as _sample
crystals = list(_sample([{"Cu": 1}, {"Cu": 1, "Ag": 1}], [225, 221], max_atoms=2, rng=1))
assert len(crystals) == 2
"""
RELAXED = CRYSTALS + """
from assyst_nodes.stages.relax import VolumeRelax as _VolumeRelax, relax as _relax
relaxed = structures = training_set = _relax(crystals, _VolumeRelax(max_steps=20))
"""
PROJECT = """
from assyst_nodes.project import open_project as _open_project
pr = _open_project("study")
_job = pr.create.job.AssystSample("sample_cu")
_job.input.formulas, _job.input.spacegroups = [{"Cu": 2}, {"Cu": 4}], [225, 229]
_job.input.max_atoms, _job.input.seed = 4, 1
_job.run()
assert len(_job.output.structures) == 2
"""

QUEUED = """
import time
deadline = time.monotonic() + 180
while pr.get_job_status("{name}") not in ("finished", "aborted", "warning"):
    assert time.monotonic() < deadline, pr.job_table()
    time.sleep(0.5)
done = pr.load("{name}")
assert done.status == "finished" and len(done.output.structures) == 2
"""
"""The check of an example that queues job ``name`` (of two structures) on SLURM: it finishes."""

SETUPS: dict[str, list[Setup]] = {
    "docs/stages/validate.md": [
        Setup(
            "reference_suite(Suite(",
            prelude=RELAXED,
            smaller=(
                (
                    'Suite(("Cu", "Ag"))',
                    'Suite(("Cu", "Ag"), phases=("fcc", "bcc"), compounds=("B2",), '
                    "phonons=False, vacancy_repeat=2, vacancy_steps=5, md_snapshots=1, "
                    "md_steps=5, md_equilibration=10)",
                ),
            ),
            check="""
rows = result.errors.set_index("group")
assert rows.loc["all", "structures"] > 0 and rows.loc["all", "energy_rmse"] > 1
assert len(list(__import__("pathlib").Path("validation").glob("*.png"))) == 3
""",
        ),
    ],
    "docs/stages/fit.md": [
        Setup(
            "LinearACE(), \"fit_cuag\"",
            smaller=(
                ("max_structures=30", "max_structures=8"),
                ("LinearACE()", "LinearACE(functions=40)"),
            ),
            needs=("ace",),
            check="""
assert result.errors["validation"]["structures"] > 0
assert result.files[0].endswith("linear_ace.yaml")
assert len(relaxed) == 3
""",
        ),
    ],
    "docs/design.md": [
        Setup(
            "Formulas.range((\"Cu\", \"Ag\"), 0, 3)",
            check="""
assert len([f for f in Formulas.range(("Cu", "Ag"), 0, 3) if sum(f.values())]) == 8
assert list(Formulas.range("Cu", 1, 3) | Formulas.range("Ag", 1, 3)) == [
    {"Cu": 1, "Ag": 1}, {"Cu": 2, "Ag": 2},
]
assert list(Formulas.range("Cu", 1, 3) * Formulas.range("Ag", 1, 3)) == [
    {"Cu": 1, "Ag": 1}, {"Cu": 1, "Ag": 2}, {"Cu": 2, "Ag": 1}, {"Cu": 2, "Ag": 2},
]
""",
        ),
    ],
    "docs/metadata.md": [
        Setup(
            "{'symmetry': 67",
            smaller=(("{'symmetry': 67", "shown = {'symmetry': 67"),),
            check="""
from assyst_nodes.pipeline import run_pipeline
made = run_pipeline(max_structures=1, progress=False).stages["perturbed"]
assert {a.info["uuid"]: a.info for a in made}[shown["uuid"]] == shown  # what the run makes
""",
        ),
    ],
    "README.md": [
        Setup(
            "crystals = list(sample(",
            smaller=(("max_structures=20", "max_structures=3"),),
            check="""
assert len(crystals) == 3 and len(volume) == len(full) == 3
assert 0 < len(cloud) <= 6 and {a.info["step"] for a in full} == {"full_relax"}
keep = radii & AspectFilter(6.0)
everything = crystals + volume + full + cloud
assert training == [a for a in everything if keep(a)] and len(training) >= 6
""",
        ),
        Setup(
            "run = pwf.run(nodes.assyst, elements",
            smaller=(("max_structures=20", "max_structures=2"),),
            check="""
from ase import Atoms
assert len(training_set) >= 6 and all(isinstance(a, Atoms) for a in training_set)
""",
        ),
        Setup(
            "ProjectRecorder(pr.create_group",
            prelude="from assyst_nodes.calculators import EMT\nmy_dft_config = EMT()\n",
            smaller=(
                ("nodes.assyst, recorder=", "nodes.assyst, max_structures=2, recorder="),
            ),
            check="""
assert job.status == "finished"
labels = job.output.structures
training = run.outputs.training_set
assert len(training) >= 6 and all(a.calc is not None for a in labels)
isolated = [a for a in labels if a.info["config_type"] == "IsolatedAtom"]
assert sorted(a.get_chemical_formula() for a in isolated) == ["Ag", "Cu"]
stood_for = [u for a in labels if a not in isolated
             for u in [a.info["lineage"][-1], *a.info.get("duplicates", [])]]
assert sorted(stood_for) == sorted(a.info["uuid"] for a in training)
""",
        ),
    ],
    "docs/calculators.md": [
        Setup(
            "mlip = SevenNet()",
            prelude=CRYSTALS + "crystals = crystals[:1]\n",  # SevenNet-0 on the CPU: one
            needs=("mlip",),
            check="assert len(full) == 1 and full[0].calc.results['energy'] < 0",
        ),
        Setup(
            "dft = GPAW(",
            prelude=RELAXED + "from assyst_nodes.reports import StageReport\n"
            "report = StageReport()\ntraining_set = training_set[:1]\n",
            smaller=(("cutoff=500.0, kpoint_density=4.0", "cutoff=200.0, kpoint_density=1.0"),),
            needs=("dft",),
            check="""
assert [a.info["config_type"] for a in labelled].count("IsolatedAtom") == len(
    {s for a in training_set for s in a.get_chemical_symbols()}
)
assert len(labelled) - report.flags["isolated_atom"] == 1 and report.n_lost == 0
""",
        ),
        Setup(
            "with shared_workers():",
            smaller=(("max_structures=10", "max_structures=2"),),
            check="assert len(out.outputs.training_set) >= 6",
        ),
        Setup(
            "write_labelled_extxyz(",
            prelude=RELAXED + "labelled = relaxed\n",
            check="""
import pandas, pathlib
from ase.io import read
back = read("train.extxyz", index=":")
assert len(back) == 2 and "REF_energy" in back[0].info
assert len(pandas.read_pickle("train.pkl.gzip", compression="gzip")) == 2
""",
        ),
    ],
    "docs/cluster.md": [
        Setup(
            'wf = pwf.Workflow("remote_relax")',
            check="""
assert wf.relax.executor.constructor is ProcessPoolExecutor
assert wf.relax.executor.start_method == "spawn"  # as the text says: each imports again
assert set(wf.relax.inputs.keys()) >= {"structures", "settings"}
""",
        ),
        Setup(
            "full = relax(structures, FullRelax(), workers=4)",
            prelude=RELAXED,
            smaller=(
                ("workers=4", "workers=2"),
                ("ProcessPoolExecutor(4)", "ProcessPoolExecutor(2)"),
            ),
            check="assert len(full) == 2",
        ),
        Setup(
            'relax_executor=Slurm("cpu"',
            smaller=(
                ("max_atoms=8", "max_atoms=2"),
                ("max_structures=2000", "max_structures=2"),
                ('Slurm("cpu", workers=16, memory=2.0, run_time=3600)',
                 "Slurm(PARTITION, workers=2, memory=0.5, run_time=600)"),
            ),
            needs=("slurm",),
            check="assert len(run.outputs.training_set) >= 6",
        ),
        Setup(
            'job = pr.create.job.AssystRelax("relax_on_cluster")',
            prelude=PROJECT,
            smaller=(('job.server.queue = "debug"', "job.server.queue = PARTITION"),),
            needs=("slurm", "pyiron_queue"),
            check=QUEUED.format(name="relax_on_cluster"),
        ),
    ],
    "docs/index.md": [
        Setup(
            "result = run_pipeline(",
            smaller=(("max_structures=20", "max_structures=2"),),
            check="assert len(training_set) == 14 and 'sample' in result.table()",
        ),
    ],
    "docs/nodes.md": [
        Setup(
            'wf = pwf.Workflow("dft_ready")',
            smaller=(("pwf.node(nodes.assyst)", "pwf.node(nodes.assyst, max_structures=2)"),),
            check="""
assert len(labelled) >= 6 and all(a.info["step"] == "single_point" for a in labelled)
assert all(a.calc is not None for a in labelled)
""",
        ),
    ],
    "docs/plots.md": [
        Setup(
            "plot.overview(table",
            smaller=(("max_structures=6", "max_structures=2"),),
            check="""
import pathlib
for name in ("overview", "energy_volume", "stages"):
    assert pathlib.Path(f"{name}.png").read_bytes()[:4] == b"\\x89PNG"
""",
        ),
    ],
    "docs/project.md": [
        Setup(
            "cu_ag = pr.create_group",
            smaller=(("nodes.assyst, recorder=", "nodes.assyst, max_structures=2, recorder="),),
            check="assert len(pr.job_table()) == 8",
        ),
        Setup(
            'job = pr.create.job.AssystRelax("relax_cu")',
            prelude=PROJECT,
            check="assert job.status == 'finished' and len(job.output.structures) == 2",
        ),
        Setup(
            'job = pr.create.job.AssystRelax("relax_queued")',
            prelude=CRYSTALS,
            smaller=(('job.server.queue = "debug"', "job.server.queue = PARTITION"),),
            needs=("slurm", "pyiron_queue"),
            check="assert pr.database_kind == 'embedded' and job.server.queue_id is not None\n"
            + QUEUED.format(name="relax_queued"),
        ),
    ],
    "docs/stages/filter.md": [
        Setup(
            "keep = DistanceFilter(",
            prelude=RELAXED,
            check="""
assert training == [a for a in structures if keep(a)]
assert len(training) + sum(report.dropped.values()) == len(structures) == 2
""",
        ),
    ],
    "docs/stages/perturb.md": [
        Setup("cloud = perturb(", prelude=RELAXED, check="assert len(cloud) == 4"),
    ],
    "docs/stages/relax.md": [
        Setup(
            "volume = relax(crystals",
            prelude=CRYSTALS,
            check="assert len(full) == 2 and report.n_out == 2",
        ),
        Setup(
            "class DampedRelax(Relax)",
            check="""
from assyst_nodes.stages.relax import relax
from ase.build import bulk
atoms = bulk("Cu", cubic=True)
atoms.rattle(0.05, seed=1)
[out] = relax([atoms], DampedRelax())
assert out.info["step"] == "damped_relax" and out.info["relax_converged"]
""",
        ),
    ],
    "docs/stages/sample.md": [
        Setup(
            "crystals = list(sample(",
            smaller=(("max_structures=20", "max_structures=3"),),
            check="assert len(crystals) == 3 and report.n_out == 3",
        ),
    ],
}


def _setup(example: Example) -> Setup | None:
    found = [s for s in SETUPS.get(example.page, []) if s.match in example.code]
    assert len(found) <= 1, f"{example.id}: {len(found)} setups match"
    return found[0] if found else None


def _missing(reason: str) -> None:
    """Skip with the reason printed; under CI fail, as for every missing extra or service."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required, not skipped)", pytrace=False)
    print(reason)
    pytest.skip(reason)


def _provide(needs: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Check (or set up) what an example needs; the names it adds to the namespace."""
    names: dict[str, object] = {}
    for need in needs:
        if need == "mlip":
            for module in ("torch", "sevenn"):
                try:
                    importlib.import_module(module)
                except ImportError as error:
                    _missing(f"the extra mlip is not installed ({error})")
        elif need == "dft":
            try:
                from assyst_nodes.calculators.dft import GPAW

                GPAW(cutoff=200.0).check()
            except (ImportError, FileNotFoundError) as error:
                _missing(f"the extra dft (GPAW and its setups) is not usable ({error})")
        elif need == "ace":
            try:
                importlib.import_module("pyace")
            except ImportError as error:
                _missing(f"the extra ace (python-ace) is not installed ({error})")
        elif need == "slurm":
            from services import require_slurm

            names["PARTITION"] = require_slurm()
            # the SLURM jobs run this environment's python
            monkeypatch.setenv(
                "PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
            )
        elif need == "pyiron_queue":  # the resource folder of docs/project.md, as written there
            queues = tmp_path / "resources" / "queues"
            queues.mkdir(parents=True)
            yaml, template = _queue_files()
            partition = str(names["PARTITION"])
            (queues / "queue.yaml").write_text(yaml.replace("debug", partition))
            (queues / "slurm.sh").write_text(template.replace("=debug", f"={partition}"))
            # only the resource path: the project keeps its embedded database
            monkeypatch.setenv("PYIRONRESOURCEPATHS", str(tmp_path / "resources"))
        else:  # pragma: no cover - a typo in SETUPS
            raise AssertionError(f"unknown need {need!r}")
    return names


def _queue_files() -> tuple[str, str]:
    """``queues/queue.yaml`` and the template it names, as the "Queues" section of
    docs/project.md shows them (its ``yaml`` and ``bash`` blocks)."""
    text = (ROOT / "docs" / "project.md").read_text(encoding="utf-8")
    section = text[text.index("## Queues") :]
    section = section[: section.index("\n## ", 3)]
    yaml = re.search(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    template = re.search(r"^```bash\n(.*?)^```", section, re.S | re.M)
    assert yaml and template, "docs/project.md, Queues: the yaml and bash blocks are gone"
    assert "queue_type: SLURM" in yaml.group(1) and "{{command}}" in template.group(1)
    return yaml.group(1), template.group(1)


def test_the_pages_have_examples_and_every_setup_matches_one() -> None:
    assert len(EXAMPLES) >= 20
    for page, setups in SETUPS.items():
        codes = [e.code for e in EXAMPLES if e.page == page]
        for setup in setups:
            assert sum(setup.match in code for code in codes) == 1, (page, setup.match)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_runs(
    example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = _setup(example) or Setup(match="")
    code = example.code
    for text, smaller in setup.smaller:
        assert text in code, f"{example.id}: {text!r} is no longer in the example; update SETUPS"
        code = code.replace(text, smaller)
    namespace: dict[str, object] = {"__name__": "__main__"}
    namespace.update(_provide(setup.needs, tmp_path, monkeypatch))
    if setup.prelude:
        exec(compile(setup.prelude, f"{example.id} (prelude)", "exec"), namespace)
    # the example's own lines keep their line numbers on its page in a traceback
    source = "\n" * (example.line - 1) + code
    exec(compile(source, str(ROOT / example.page), "exec"), namespace)
    if setup.check:
        exec(compile(setup.check, f"{example.id} (check)", "exec"), namespace)
