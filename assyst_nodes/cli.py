"""The ``assyst-nodes`` command (also ``python -m assyst_nodes``).

``assyst-nodes run`` runs the canonical ASSYST pipeline on the embedded default (Cu-Ag, ASE's
EMT) and prints a table of what each stage made and dropped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _spacegroups(text: str) -> list[int]:
    """``"1-10,221,225"`` -> ``[1, ..., 10, 221, 225]``."""
    groups: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            groups.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"space groups must look like '1-10,225', got {text!r}"
            ) from None
    return groups


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assyst-nodes",
        description="Build ASSYST training sets for machine-learning interatomic potentials.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run sample -> relax -> perturb -> filter and print a per-stage table"
    )
    run.add_argument("--elements", nargs="+", default=["Cu", "Ag"], help="default: Cu Ag")
    run.add_argument("--max-atoms", type=int, default=4, help="atoms per cell at most (4)")
    run.add_argument("--min-atoms", type=int, default=1, help="atoms per cell at least (1)")
    run.add_argument(
        "--spacegroups", type=_spacegroups, default=None, help="e.g. '1-10,225' (default: all)"
    )
    run.add_argument(
        "--max-structures", type=int, default=30, help="sampled crystals at most (30)"
    )
    run.add_argument("--seed", type=int, default=0, help="base seed of every random choice (0)")
    run.add_argument("--workers", type=int, default=1, help="processes for relaxation (1)")
    run.add_argument("-v", "--verbose", action="store_true", help="log what each stage drops")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    from .pipeline import run_pipeline

    try:
        result = run_pipeline(
            elements=tuple(args.elements),
            max_atoms=args.max_atoms,
            min_atoms=args.min_atoms,
            spacegroups=args.spacegroups,
            max_structures=args.max_structures,
            rng=args.seed,
            workers=args.workers,
        )
    except (ValueError, TypeError, ImportError) as error:
        print(f"assyst-nodes: error: {error}", file=sys.stderr)
        return 2
    print(result.table())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
