"""The project layer under random sequences of what pyiron users do (see ``project_machine``):
nothing is lost or corrupted, on the embedded SQLite database and on PostgreSQL.

The budget here keeps CI within its limit; ``benchmarks/stateful_project.py`` runs the same
machine with a larger one (``--examples``, ``--steps``) and reports what it did. Both take
``ASSYST_STATEFUL_EXAMPLES`` and ``ASSYST_STATEFUL_STEPS`` from the environment too.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from project_machine import machine_for

pytestmark = pytest.mark.usefixtures("pyiron_database")  # SQLite and PostgreSQL

EXAMPLES = int(os.environ.get("ASSYST_STATEFUL_EXAMPLES", "4"))
STEPS = int(os.environ.get("ASSYST_STATEFUL_STEPS", "10"))


@pytest.mark.slow
def test_pyiron_operations_in_any_order_lose_nothing(pyiron_database: str) -> None:
    machine = machine_for(pyiron_database)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,  # the same sequences in every CI run; the benchmark varies them
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
    print(f"stateful {pyiron_database}: {machine.figures}")
    assert machine.figures.get("examples", 0) >= 1
