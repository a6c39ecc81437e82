"""Run a queued stage job of an embedded database: what a batch job (SLURM, ...) executes.

    python -m assyst_nodes.project.wrapper --root ROOT --job-id ID --working-directory DIR

pyiron's own wrapper (``python -m pyiron_base.cli wrapper -p DIR -j ID``) looks job ``ID`` up in
the database of the user's pyiron configuration, which does not hold the jobs of an embedded
root (and may hold another job under that id). This one first opens the embedded database of
``ROOT``, then hands over to pyiron's wrapper, which loads the job, runs it and records its
status as for any queued pyiron job. :meth:`AssystJob.run_if_scheduler
<assyst_nodes.project.jobs.AssystJob.run_if_scheduler>` submits this command.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the process exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments ``--root ROOT --job-id ID --working-directory DIR``. Default: none
        (``sys.argv[1:]``).

    Returns
    -------
    int
        The process exit code, 0 once pyiron's wrapper has run the job. A ``ROOT`` that is no
        embedded project root, or a job id its job table lacks, exits through
        :mod:`argparse` (``SystemExit``, code 2) naming it.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the embedded root folder of the job")
    parser.add_argument("--job-id", required=True, type=int, help="the job's id in its table")
    parser.add_argument("--working-directory", required=True, help="the job's working folder")
    args = parser.parse_args(argv)
    from .database import embedded_root
    from .operations import open_project

    if embedded_root(args.root) is None:
        parser.error(f"{args.root} is no embedded project root (no pyiron.db of assyst_nodes)")
    project = open_project(args.root)  # binds pyiron's state to the root's database
    row = project.db.get_item_by_id(args.job_id)
    if row is None:
        parser.error(f"job {args.job_id} is not in the job table of {args.root}")
    from pyiron_base.jobs.job.wrapper import job_wrapper_function

    job_wrapper_function(working_directory=args.working_directory, job_id=args.job_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
