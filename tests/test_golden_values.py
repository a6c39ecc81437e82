"""Golden values: seeds, uuids and positions of small seeded computations, pinned literally.

The other tests check that seeds and uuids are *reproducible* (equal inputs, equal outputs);
these check that they are *the same as before*, so that an unintended change of the seed
derivation (``assyst_nodes.random``), of the uuid scheme (``assyst_nodes.lineage``: namespace,
key, geometry digest), of a stage's keys or of what a seeded run draws fails here. Such a
change silently breaks caching and de-duplication against data sets and projects made before
it (a rerun no longer finds its finished jobs, the same structure gets two ids).

The pins are (1) pure derivations (``derive_seed``, ``derive_uuid``, ``geometry_digest``),
(2) a seeded rattle of a hand-written cell, (3) the tiny canonical run
``run_pipeline(max_structures=1)`` (its first sampled crystal and everything made from it are
also the first of the full canonical run) and (4) the ``info`` example of ``docs/metadata.md``,
which is the second perturbation of that crystal's volume relaxation.

Updating them on purpose: when a change is *meant* to change ids or draws (a new uuid key, a
new seed derivation, a pyxtal upgrade, other relaxation defaults: the perturbed structures'
uuids include their parent's relaxed geometry bit for bit), run::

    .venv/bin/python tests/test_golden_values.py

which prints every value pinned here as it is now; paste them over ``GOLDEN`` below, replace
the example dictionary in ``docs/metadata.md`` by the printed ``metadata_example`` (and its
prose: group, parent uuids) and say in the change's notes that uuids change, so projects and
data sets made before are not reused.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from pprint import pprint
from typing import Any

import numpy as np
import pytest
from ase import Atoms

from assyst_nodes.lineage import derive_uuid, geometry_digest, update_uuid
from assyst_nodes.pipeline import PipelineResult, run_pipeline
from assyst_nodes.random import derive_seed, resolve_seed
from assyst_nodes.stages.perturb import Rattle, perturb

METADATA_PAGE = Path(__file__).resolve().parent.parent / "docs" / "metadata.md"

GOLDEN: dict[str, Any] = {
    "derive_seed": {
        "7/pyxtal/Cu2Ag1/225/0": 291205251441454316,
        "0/shuffle": 6547849830404123199,
        "generator(0)": 5874934615388537135,
    },
    "derive_uuid": "2cee917f-713b-53bc-85ba-199549a0c799",
    "geometry_digest": "22b0cfa2f934a02411426181cb33971a",
    "update_uuid": "a1d7bad6-0611-5998-aac7-19ac82f6b749",
    "rattle": {
        "uuid": "b253a1d9-1200-52b7-8bfd-ceba882572df",
        "rng_seed": 8523948869169781900,
        "positions": [
            [-0.043242404856984884, -0.03818004723930315, 0.06914543117751029],
            [1.695376260375639, 1.8402997659345666, -0.016257714708067632],
            [1.8519501982167852, -0.10171315766233538, 1.754831242001408],
            [0.11129131342700244, 1.7140963959704778, 1.7725173365984874],
        ],
    },
    "sampled": {
        "uuid": "4ef99aca-7285-55e8-bd78-9bafe4e15103",
        "rng_seed": 5283888191783563996,
        "formula": "Ag4",
        "symmetry": 67,
        "spacegroup": 67,
        "cell": [
            [3.5650540315047157, 0.0, 0.0],
            [0.0, 4.099528889038897, 0.0],
            [0.0, 0.0, 4.36797851282803],
        ],
        "positions": [
            [0.0, 1.0248822222597243, 0.7073789051048678],
            [0.0, 3.0746466667791728, 3.6605996077231624],
            [1.7825270157523576, 3.0746466667791728, 0.7073789051048678],
            [1.7825270157523576, 1.0248822222597243, 3.6605996077231624],
        ],
    },
    "volume_relaxed": ["f2f93205-c20e-5612-8ade-188e1292a3c0"],
    "full_relaxed": ["9819f040-592a-50b3-a74a-16b715d2f255"],
    "perturbed": [
        ("c4de6e18-9c6b-563d-b235-98128bd3673b", 3998828722621781047),
        ("087e6c60-8e7a-5dff-a13d-91bfbcbba9b6", 7515123052433013113),
        ("c09ea840-b805-53a3-a03a-1032081fd941", 4847168975773685708),
        ("a80865d5-c992-5f89-bc74-ce0799d0a79e", 943238163067167540),
    ],
}

UPDATE_HINT = (
    "a pinned seed/uuid/position changed; if that is intended, update the pins as the docstring "
    "of tests/test_golden_values.py says (run it as a script to print the current values)"
)


def _cu4() -> Atoms:
    """fcc Cu, a = 3.5 Å, written out by hand (no arithmetic: the same bits everywhere)."""
    positions = [[0.0, 0.0, 0.0], [1.75, 1.75, 0.0], [1.75, 0.0, 1.75], [0.0, 1.75, 1.75]]
    return Atoms("Cu4", positions=positions, cell=[3.5, 3.5, 3.5], pbc=True)


def derivations() -> dict[str, Any]:
    """The pure seed and uuid derivations."""
    made = update_uuid(_cu4(), step="made")
    return {
        "derive_seed": {
            "7/pyxtal/Cu2Ag1/225/0": derive_seed(7, "pyxtal", "Cu2Ag1", 225, 0),
            "0/shuffle": derive_seed(0, "shuffle"),
            "generator(0)": resolve_seed(np.random.default_rng(0)),
        },
        "derive_uuid": derive_uuid("", "pyxtal", "key"),
        "geometry_digest": geometry_digest(_cu4()),
        "update_uuid": made.info["uuid"],
    }


def rattled() -> dict[str, Any]:
    """``Rattle(0.1)`` of the hand-written cell under base seed 0."""
    [out] = perturb([update_uuid(_cu4(), step="made")], Rattle(0.1), rng=0)
    return {
        "uuid": out.info["uuid"],
        "rng_seed": out.info["rng_seed"],
        "positions": out.positions.tolist(),
    }


def tiny_run() -> PipelineResult:
    """The canonical run cut to its first crystal (about 2 s)."""
    return run_pipeline(max_structures=1, progress=False)


def run_values(result: PipelineResult) -> dict[str, Any]:
    """The pinned values of :func:`tiny_run`."""
    [crystal] = result.stages["sampled"]
    info = crystal.info
    return {
        "sampled": {
            "uuid": info["uuid"],
            "rng_seed": info["rng_seed"],
            "formula": crystal.get_chemical_formula(),
            "symmetry": info["symmetry"],
            "spacegroup": info["spacegroup"],
            "cell": crystal.cell.array.tolist(),
            "positions": crystal.positions.tolist(),
        },
        "volume_relaxed": [s.info["uuid"] for s in result.stages["volume_relaxed"]],
        "full_relaxed": [s.info["uuid"] for s in result.stages["full_relaxed"]],
        "perturbed": [(s.info["uuid"], s.info["rng_seed"]) for s in result.stages["perturbed"]],
    }


def metadata_example(result: PipelineResult) -> dict[str, Any]:
    """``info`` of the structure docs/metadata.md shows: the second perturbation (the random
    choice) of the volume-relaxed crystal."""
    [volume_relaxed] = result.stages["volume_relaxed"]
    parent = volume_relaxed.info["uuid"]
    [made] = [
        s for s in result.stages["perturbed"]
        if s.info["lineage"][-1] == parent and s.info["step"].startswith("random_choice")
    ]  # fmt: skip
    return dict(made.info)


def documented_example() -> dict[str, Any]:
    """The example dictionary of docs/metadata.md, read as a Python literal."""
    text = METADATA_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    examples = [b for b in blocks if "'uuid'" in b and "'rng_seed'" in b]
    assert len(examples) == 1, "docs/metadata.md should show one info dictionary"
    return ast.literal_eval(examples[0])


@pytest.fixture(scope="module")
def result() -> PipelineResult:
    return tiny_run()


def _assert_positions(actual: list[list[float]], expected: list[list[float]]) -> None:
    # a tolerance far below any physical change, above last-bit differences of other CPUs
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-9, err_msg=UPDATE_HINT)


def test_seed_and_uuid_derivations_are_unchanged() -> None:
    now = derivations()
    for key, value in now.items():
        assert value == GOLDEN[key], f"{key}: {UPDATE_HINT}"


def test_a_seeded_rattle_is_unchanged() -> None:
    now = rattled()
    assert (now["uuid"], now["rng_seed"]) == (
        GOLDEN["rattle"]["uuid"],
        GOLDEN["rattle"]["rng_seed"],
    ), UPDATE_HINT
    _assert_positions(now["positions"], GOLDEN["rattle"]["positions"])


def test_the_tiny_canonical_run_is_unchanged(result: PipelineResult) -> None:
    now = run_values(result)
    sampled, pinned = now["sampled"], GOLDEN["sampled"]
    for key in ("uuid", "rng_seed", "formula", "symmetry", "spacegroup"):
        assert sampled[key] == pinned[key], f"sampled {key}: {UPDATE_HINT}"
    _assert_positions(sampled["cell"], pinned["cell"])
    _assert_positions(sampled["positions"], pinned["positions"])
    for key in ("volume_relaxed", "full_relaxed", "perturbed"):
        assert now[key] == GOLDEN[key], f"{key}: {UPDATE_HINT}"


def test_the_metadata_page_shows_what_the_canonical_run_makes(result: PipelineResult) -> None:
    example = metadata_example(result)
    assert documented_example() == example, f"docs/metadata.md: {UPDATE_HINT}"
    text = METADATA_PAGE.read_text(encoding="utf-8")
    for uuid in example["lineage"]:  # the prose names the parents by their first 8 digits
        assert f"`{uuid[:8]}…`" in text, f"docs/metadata.md does not name {uuid[:8]}…"


if __name__ == "__main__":  # print the current values, to update the pins on purpose
    run = tiny_run()
    pprint({**derivations(), "rattle": rattled(), **run_values(run)}, width=100)
    print("\nmetadata_example (docs/metadata.md):")
    pprint(metadata_example(run), width=100, sort_dicts=False)
