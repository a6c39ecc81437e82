"""The ``assyst-nodes`` command (also ``python -m assyst_nodes``).

``assyst-nodes run`` runs the canonical ASSYST pipeline on the embedded default (Cu-Ag, ASE's
EMT) into a project folder (an SQLite pyiron job table, one job per stage run, reused on rerun),
prints a table of what each stage made and dropped, and writes the training set as extxyz.
:mod:`~assyst_nodes.cli.parser` holds the options, :mod:`~assyst_nodes.cli.settings` the run
settings (command line or file) and :mod:`~assyst_nodes.cli.commands` what each command does.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from . import commands
from .parser import build_parser, settings_of
from .settings import read_settings_file

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``assyst-nodes`` command: the entry point, returning the process exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The command-line arguments without the program name, e.g.
        ``["run", "--elements", "Cu", "--max-atoms", "4"]``. Default: none (``sys.argv[1:]``,
        as :mod:`argparse` reads it).

    Returns
    -------
    int
        The process exit code: 0 on success (also after ``run --write-config``, which writes
        the settings and stops), 2 when the settings or the project are refused (the message
        goes to standard error as ``assyst-nodes: error: ...``). ``--help`` and malformed
        options exit through :mod:`argparse` (``SystemExit``) instead.

    Notes
    -----
    The database connections a command opened are closed when it is done, also when it
    fails: a PostgreSQL connection's watchdog thread would otherwise hold the exit for
    pyiron's connection timeout (60 s by default).
    """
    try:
        return _main(argv)
    finally:
        database = sys.modules.get("assyst_nodes.project.database")
        if database is not None:
            database.close_connections()


def _main(argv: Sequence[str] | None) -> int:
    """What :func:`main` does."""
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    if not verbose:  # semantikon's unit table, built when pyiron_workflow is imported, makes pint
        # warn about ambiguous QUDT unit symbols ("Parsing mcd yield multiple results")
        logging.getLogger("pint.util").setLevel(logging.ERROR)
    try:
        if args.command in {"jobs", "history", "export", "fit", "validate"}:
            project = commands.existing_project(args.project, args.database)
            if args.command == "jobs":
                return commands.jobs(project)
            if args.command == "history":
                return commands.history(project, args.uuid)
            if args.command == "fit":
                return commands.fit(project, args)
            if args.command == "validate":
                return commands.validate(project, args)
            return commands.export(project, args)
        if args.config is not None:
            args = build_parser(read_settings_file(args.config)).parse_args(argv)
        settings = settings_of(args)
        settings.check()
        if args.write_config is not None:
            print(f"settings written to {settings.write(args.write_config)}")
            return 0
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError) as error:
        message = error.args[0] if isinstance(error, KeyError) else error
        print(f"assyst-nodes: error: {message}", file=sys.stderr)
        return 2
    commands.warm_workers(settings)
    try:
        result = commands.run(settings)
    except (ValueError, TypeError, ImportError, PermissionError) as error:
        print(f"assyst-nodes: error: {error}", file=sys.stderr)
        return 2
    print(result.table())
    commands.write_outputs(settings, result)
    return 0



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
