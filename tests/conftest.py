"""Shared test set-up: every test runs with a temporary HOME and working directory, so nothing
is ever written to the real home directory (pyiron's ~/.pyiron included), and without the
developer's own ``PYIRON*`` configuration.

Tests that take the fixture ``pyiron_database`` (the project-layer modules take it for every
test through ``pytestmark``) run twice: on the embedded SQLite database (no pyiron
configuration) and on a real PostgreSQL server configured as pyiron users configure it
(``PYIRON*`` variables). The server comes from ``.ci/services.sh``; where it is missing the
PostgreSQL half skips with the reason, except under ``CI=true``, where it fails. Mark a test
``embedded_only`` when it is about the embedded database itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import drop_postgres_database, fresh_postgres_database, pyiron_postgres_env
from services import require_postgres as _require_postgres

DATABASES = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pyiron_database" in metafunc.fixturenames:
        kinds = list(DATABASES)
        if metafunc.definition.get_closest_marker("embedded_only"):
            kinds = ["sqlite"]
        elif metafunc.definition.get_closest_marker("postgres_only"):
            kinds = ["postgres"]
        metafunc.parametrize("pyiron_database", kinds, indirect=True)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME (and cwd) per test, and no PYIRON* configuration of the developer."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name in list(os.environ):
        if name.startswith("PYIRON"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    url = fresh_postgres_database(_require_postgres())
    yield url
    drop_postgres_database(url)


@pytest.fixture
def pyiron_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``"sqlite"``: no pyiron configuration, so each project root has its embedded SQLite
    database. ``"postgres"``: pyiron configured by ``PYIRON*`` variables for the session's
    PostgreSQL database (subprocesses inherit them)."""
    kind = str(request.param)
    if kind == "postgres":
        _require_postgres()
        url = request.getfixturevalue("postgres_database")
        for name, value in pyiron_postgres_env(url).items():
            monkeypatch.setenv(name, value)
    return kind
