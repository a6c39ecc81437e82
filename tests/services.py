"""Where the real services for the tests are, and helpers to use them.

Not a test module: tests import it (``from services import ...``; pytest puts ``tests/`` on
``sys.path``). The services themselves are started by ``.ci/services.sh``::

    bash .ci/services.sh install            # once per machine (Debian packages)
    bash .ci/services.sh start
    eval "$(bash .ci/services.sh env)"      # ASSYST_TEST_POSTGRES, ASSYST_TEST_SLURM, ...
    ...
    bash .ci/services.sh stop

``require_postgres()``, ``require_slurm()`` and ``require_graphviz()`` skip the calling test
when a service is missing, except under CI (``CI=true``), where a missing service fails the
test: in CI nothing real is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest

START_HINT = 'start them with `bash .ci/services.sh start` and `eval "$(bash .ci/services.sh env)"`'
INSTALL_HINT = "install it with `bash .ci/services.sh install`"
DEFAULT_PARTITION = "debug"
DEFAULT_SLURM_CONF = "/etc/slurm/slurm.conf"  # Debian's build of SLURM

# pysqa configuration for the one-node test cluster: ``queues/queue.yaml`` ...
PYSQA_QUEUE_YAML = """\
queue_type: SLURM
queue_primary: debug
queues:
  debug: {cores_max: 2, cores_min: 1, run_time_max: 3600, script: slurm.sh}
"""

# ... and the jinja2 template it names, ``queues/slurm.sh`` (pysqa fills in the job's values)
PYSQA_SLURM_TEMPLATE = """\
#!/bin/bash
#SBATCH --output=time.out
#SBATCH --job-name={{job_name}}
#SBATCH --chdir={{working_directory}}
#SBATCH --partition=debug
#SBATCH --ntasks={{cores}}
{%- if run_time_max %}
#SBATCH --time={{ [1, run_time_max // 60]|max }}
{%- endif %}
{%- if memory_max %}
#SBATCH --mem={{memory_max}}G
{%- endif %}
{%- if dependency_list %}
#SBATCH --dependency=afterok:{{ dependency_list | join(',') }}
{%- endif %}

{{command}}
"""


def in_ci() -> bool:
    """True when running under CI (the environment variable ``CI`` is "true", any case)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def _missing(reason: str) -> NoReturn:
    """Skip the current test, or fail it under CI, where every real service must be there."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: services are required, not skipped)", pytrace=False)
    pytest.skip(reason)


FIT_VENV = "ASSYST_FIT_VENV"
"""The environment variable naming the virtual environment where ``.ci/run`` runs the tests of
the extra ``fit``: mace-torch 0.3.16 pins e3nn 0.4.4 and SevenNet (extra ``mlip``) needs
e3nn >= 0.5, so the two extras cannot share an environment."""


def missing_fit_extra(reason: str) -> NoReturn:
    """Skip a test of the extra ``fit`` that lacks it: with the reason printed; under CI it
    fails, unless CI runs these tests in the environment :data:`FIT_VENV` names (which exists)."""
    elsewhere = os.environ.get(FIT_VENV, "")
    if elsewhere and (Path(elsewhere) / "bin" / "python").is_file():
        pytest.skip(f"{reason}; these tests run in {elsewhere} (${FIT_VENV}, .ci/run)")
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the extra is required, not skipped)", pytrace=False)
    print(reason)
    pytest.skip(reason)


# ------------------------------------------------------------------------------ PostgreSQL
def postgres_url() -> str | None:
    """The test server's URL from ``ASSYST_TEST_POSTGRES``, or None when it is not set."""
    return os.environ.get("ASSYST_TEST_POSTGRES") or None


def _connect(url: str, **kwargs: Any) -> Any:
    """An autocommit psycopg2 connection to ``url``."""
    try:
        import psycopg2
    except ImportError as error:  # pragma: no cover - psycopg2-binary is a test dependency
        raise RuntimeError("psycopg2 is needed: pip install psycopg2-binary") from error
    connection = psycopg2.connect(url, connect_timeout=10, **kwargs)
    connection.autocommit = True
    return connection


def _with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def require_postgres() -> str:
    """The URL of the test PostgreSQL server, after checking that it answers.

    Skips the test (fails it under CI) when ``ASSYST_TEST_POSTGRES`` is unset or the server
    does not answer.
    """
    url = postgres_url()
    if url is None:
        _missing(f"PostgreSQL test server: ASSYST_TEST_POSTGRES is not set; {START_HINT}")
    try:
        _connect(url).close()
    except Exception as error:
        _missing(f"PostgreSQL test server at {url} does not answer ({error}); {START_HINT}")
    return url


def fresh_postgres_database(url: str) -> str:
    """Create a new, uniquely named, empty database on the server of ``url``; return its URL.

    The role in ``url`` needs CREATEDB (the CI role ``assyst`` is a superuser). Drop it again
    with :func:`drop_postgres_database`.
    """
    from psycopg2 import sql

    name = f"assyst_{uuid.uuid4().hex[:16]}"
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()
    return _with_database(url, name)


def drop_postgres_database(url: str) -> None:
    """Drop the database that ``url`` names (if it exists), closing its open connections."""
    from psycopg2 import sql

    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise ValueError(f"no database name in {url!r}")
    last_error: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            connection = _connect(_with_database(url, maintenance))
        except Exception as error:
            last_error = error
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        finally:
            connection.close()
        return
    raise RuntimeError(f"cannot reach a maintenance database to drop {name}: {last_error}")


def pyiron_postgres_env(url: str) -> dict[str, str]:
    """pyiron_base 0.15's environment variables for the PostgreSQL database ``url``.

    pyiron_base builds ``postgresql://{PYIRONUSER}:{PYIRONSQLUSERKEY}@{PYIRONSQHOST}/
    {PYIRONSQLDATABASE}`` (``PYIRONSQHOST`` is spelled so), hence the host carries the port.
    pyiron_base reads them once, at import: set them before importing it (e.g. in a
    subprocess), or apply them with ``pyiron_base.state.update(...)``.

    ``PYIRONCONNECTIONTIMEOUT=0`` is set too: with pyiron's default (60 s) a non-daemon
    watchdog thread holds the connection open and delays the exit of every process that
    touched the database by up to 60 s. Note that PostgreSQL, unlike SQLite, enforces the
    job table's column lengths: a job class name (``hamilton``), status and user of at most
    20 characters.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"} or not parts.hostname:
        raise ValueError(f"not a postgresql:// URL with a host: {url!r}")
    host = parts.hostname
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return {
        "PYIRONSQLTYPE": "Postgres",
        "PYIRONUSER": unquote(parts.username or ""),
        "PYIRONSQLUSERKEY": unquote(parts.password or ""),
        "PYIRONSQHOST": host,
        "PYIRONSQLDATABASE": unquote(parts.path.lstrip("/")),
        "PYIRONCONNECTIONTIMEOUT": "0",
    }


# ----------------------------------------------------------------------------------- SLURM
def _sinfo(*args: str) -> str | None:
    """The output of ``sinfo -h ARGS``, or None when sinfo is missing or fails."""
    if shutil.which("sinfo") is None:
        return None
    # without its configuration file sinfo retries for 60 s before it gives up
    if not Path(os.environ.get("SLURM_CONF") or DEFAULT_SLURM_CONF).exists():
        return None
    try:
        done = subprocess.run(
            ["sinfo", "-h", *args], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def slurm_partition() -> str:
    """The partition for test jobs: ``ASSYST_TEST_SLURM_PARTITION``, else the cluster's
    default partition, else ``debug``."""
    name = os.environ.get("ASSYST_TEST_SLURM_PARTITION")
    if name:
        return name
    for line in (_sinfo("-o", "%P") or "").split():
        if line.endswith("*"):
            return line.rstrip("*")
    return DEFAULT_PARTITION


def slurm_available() -> bool:
    """True when ``ASSYST_TEST_SLURM`` is set (not "0"), or ``sinfo`` shows an idle node."""
    if os.environ.get("ASSYST_TEST_SLURM", "0").strip() not in {"", "0"}:
        return True
    states = _sinfo("-o", "%t")
    return states is not None and "idle" in states.split()


def require_slurm() -> str:
    """The partition name of the test SLURM cluster, after checking that ``sinfo`` answers.

    Skips the test (fails it under CI) when no cluster is configured or it does not answer.
    """
    if not slurm_available():
        _missing(f"SLURM test cluster: ASSYST_TEST_SLURM is not set; {START_HINT}")
    partition = slurm_partition()
    states = _sinfo("-p", partition, "-o", "%t")
    if not states or not states.split():
        _missing(
            f"SLURM test cluster: `sinfo -p {partition}` does not answer "
            f"(SLURM_CONF={os.environ.get('SLURM_CONF')}); {START_HINT}"
        )
    return partition


def write_pysqa_config(folder: str | os.PathLike[str], partition: str | None = None) -> Path:
    """Write ``<folder>/queues/queue.yaml`` and ``<folder>/queues/slurm.sh`` for pysqa.

    ``folder`` can serve as a pyiron resource path (``PYIRONRESOURCEPATHS``); the returned
    ``queues`` folder is what ``pysqa.QueueAdapter(directory=...)`` takes. ``partition``
    replaces the queue and partition name ``debug``.
    """
    queues = Path(folder) / "queues"
    queues.mkdir(parents=True, exist_ok=True)
    yaml_text, template = PYSQA_QUEUE_YAML, PYSQA_SLURM_TEMPLATE
    if partition is not None and partition != DEFAULT_PARTITION:
        yaml_text = yaml_text.replace("queue_primary: debug", f"queue_primary: {partition}")
        yaml_text = yaml_text.replace("  debug: {", f"  {partition}: {{")
        template = template.replace("--partition=debug", f"--partition={partition}")
    (queues / "queue.yaml").write_text(yaml_text)
    (queues / "slurm.sh").write_text(template)
    return queues


# -------------------------------------------------------------------------------- graphviz
def require_graphviz() -> str:
    """The path of graphviz's ``dot``, after checking that ``dot -V`` works.

    Skips the test (fails it under CI) when it is missing.
    """
    dot = shutil.which("dot")
    if dot is None:
        _missing(f"graphviz: `dot` is not on PATH; {INSTALL_HINT}")
    try:
        done = subprocess.run([dot, "-V"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        _missing(f"graphviz: `dot -V` failed ({error}); {INSTALL_HINT}")
    if done.returncode != 0:
        _missing(f"graphviz: `dot -V` exited with {done.returncode}; {INSTALL_HINT}")
    return dot
