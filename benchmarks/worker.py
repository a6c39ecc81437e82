"""A long-lived benchmark worker: ``python worker.py ours|reference``.

Reads one JSON request per line on stdin, ``{"case": name, "params": {...}}``, runs
``CASES[name](**params)`` of :mod:`cases_ours` or :mod:`cases_reference` and answers one JSON line
``{"ok": true, "result": {...}}`` (or ``{"ok": false, "error": traceback}``) on the original
stdout. Anything the libraries print goes to stderr, which ``run.py`` sends to a log file.
Started by ``run.py`` with the interpreter of the side (ours: the current one; the reference:
``--reference-python``), so the two packages never share a process.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

SIDES = ("ours", "reference")


def _protocol_stream() -> Any:
    """A private copy of stdout for the answers; fd 1 itself is pointed at stderr, so that
    library output (progress bars, prints) cannot corrupt the protocol."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SIDES:
        print(f"usage: worker.py {{{'|'.join(SIDES)}}}, got {argv}", file=sys.stderr)
        return 2
    answers = _protocol_stream()
    try:
        if argv[0] == "ours":
            from cases_ours import CASES
        else:
            from cases_reference import CASES
    except ImportError:
        answers.write(json.dumps({"ok": False, "error": traceback.format_exc()}) + "\n")
        return 1
    answers.write(json.dumps({"ok": True, "result": {"cases": sorted(CASES)}}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            result = CASES[request["case"]](**request.get("params", {}))
            answer = {"ok": True, "result": result}
        except Exception:
            answer = {"ok": False, "error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
