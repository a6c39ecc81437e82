"""Per-call wall-time limits (s) for the work of a stage: one relaxation, one pyxtal draw.

:class:`TimeLimit` runs a call and raises :class:`TimeLimitExceeded` when it takes longer than
``seconds``. How depends on where it is called:

- in the main thread of a process (a script, a notebook cell, a pool worker): a ``SIGALRM``
  timer (``setitimer``) whose handler raises in the running code. Nothing is copied or started;
  an outer ``SIGALRM`` timer (e.g. pytest-timeout) keeps working. The call stops at the next
  Python bytecode after the deadline, which covers Python code, ``time.sleep`` and system calls
  that return on a signal (e.g. waiting for a subprocess or a socket). It does **not** stop C
  or Fortran code that never returns to the interpreter (a compiled calculator stuck in a
  loop): such a call ends only when that code returns, and is then reported as over the limit.
  ``TimeLimit(seconds, mode="process")`` covers that case too, at the price of a child process.
- in any other thread (pyiron_workflow runs nodes in a thread pool, and so do some notebook
  tools), where signals cannot be used: each call runs in a child Python process that applies
  the timer in its own main thread, while this thread waits at most ``seconds`` plus a grace
  period (:data:`GRACE_SECONDS` + 10 %) and then kills the child. This also stops code hung in
  C, and a child that dies (e.g. a segfault in a calculator) raises :class:`WorkerDied` instead
  of taking the whole run down. The child is started with ``sys.executable`` and gets this
  process's ``sys.path``; it is kept and reused by later calls (its imports and cached
  calculators are paid once; unpickling the work, i.e. imports, is not timed) and exits within
  a second when this process dies. The function and its arguments must pickle (with cloudpickle
  if installed, which also carries what is defined in ``__main__`` or a notebook).

:meth:`TimeLimit.prepare` runs set-up work (e.g. building a calculator) untimed, where the timed
calls run and again in every new child. A call that ran past its deadline never returns a
result, even if the code swallowed the exception (pyxtal has bare ``except:`` clauses; the alarm
repeats every :data:`REPEAT_SECONDS` until the call ends): a half-finished result is never
used. Results of calls within the limit are the same in either mode (the child limits BLAS to
one thread, as :func:`assyst_nodes.runtime.fanout.call_single_threaded` does). POSIX only (Linux,
macOS): elsewhere a limit raises ``NotImplementedError``.

Own child processes, not ``pebble.ProcessPool`` (``benchmarks/deadline_pebble.py`` compares
the two; the figures are in ``benchmarks/RESULTS.md``):

- a call stuck in compiled code is killed right after ``seconds`` and a short grace; pebble
  sends ``SIGTERM``, whose Python handler cannot run there, and kills only seconds later;
- it works inside a daemonic ``multiprocessing.Pool`` worker (``subprocess``, not
  ``multiprocessing``); pebble gets "daemonic processes are not allowed to have children";
- in a forked ``ProcessPoolExecutor`` worker of a process whose fork server runs, pebble's
  fork-server child fails and its spawned child (non-daemonic) keeps the worker from exiting;
- the child exits when this process is killed; pebble's keeps hanging;
- no polling thread here (pebble runs three per child), and one dependency fewer.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal, TypeVar

__all__ = [
    "GRACE_SECONDS",
    "REPEAT_SECONDS",
    "TimeLimit",
    "TimeLimitExceeded",
    "WorkerDied",
    "check_time_limit",
]

R = TypeVar("R")

REPEAT_SECONDS = 0.05
"""Interval (s) at which the alarm repeats after the deadline until the call has ended."""

GRACE_SECONDS = 1.0
"""Extra wait (s), plus 10 % of the limit, before a child process over its limit is killed."""


class TimeLimitExceeded(BaseException):
    """A call ran past its time limit (s).

    A ``BaseException`` like ``KeyboardInterrupt``, so ``except Exception`` in the interrupted
    code (a calculator, an optimiser, pyxtal) does not swallow it. Its message is
    ``exceeded the time limit of <seconds> s``, followed by `` (<detail>)`` when a detail is
    given; it pickles as ``(seconds, detail)``, so it travels back from worker processes.

    Parameters
    ----------
    seconds : float
        The limit that was exceeded (s); kept as the attribute ``seconds``.
    detail : str, default ""
        What happened besides (e.g. that the process was killed, or the exception the
        interrupted code turned the alarm into); kept as the attribute ``detail``. Empty: none.
    """

    def __init__(self, seconds: float, detail: str = "") -> None:
        message = f"exceeded the time limit of {seconds:g} s"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.seconds = seconds
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seconds, self.detail))


class WorkerDied(RuntimeError):
    """The child process running a call died (e.g. killed by the OS or a segfault).

    Raised by a :class:`TimeLimit` in process mode (a call from a thread other than the main
    one, or ``mode="process"``) instead of taking the whole run down; the message gives the
    child's exit code.
    """


def check_time_limit(seconds: float | None, name: str = "time_limit") -> float | None:
    """Check a time limit (s) and return it as a float.

    Parameters
    ----------
    seconds : float or None
        The limit (s): a finite number > 0, or ``None`` for no limit. ``bool`` is not a number
        here.
    name : str, default "time_limit"
        The argument's name, used in the error messages.

    Returns
    -------
    float or None
        ``seconds`` as a float, or ``None`` if it is ``None``.

    Raises
    ------
    TypeError
        If ``seconds`` is not a number (nor ``None``); the message names ``name`` and the value.
    ValueError
        If ``seconds`` is not finite or not > 0; the message names ``name`` and the value.
    """
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} must be a number of seconds > 0 or None, got {seconds!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0 or None, got {seconds!r}")
    return float(seconds)


def _signals_usable() -> bool:
    """Whether a ``SIGALRM`` timer can be used here (POSIX, main thread of the process)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@dataclass
class _Alarm:
    """Book-keeping of one alarm-limited call."""

    seconds: float
    deadline: float
    outer_deadline: float
    outer_handler: Any
    active: bool = True
    fired: bool = False
    outer_due: bool = False


def _call_with_alarm(seconds: float | None, function: Callable[..., R], args: tuple[Any, ...]) -> R:
    """``function(*args)`` under a ``SIGALRM`` timer of ``seconds`` (main thread only; ``None``:
    no timer)."""
    if seconds is None:
        return function(*args)
    outer_handler = signal.getsignal(signal.SIGALRM)
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    alarm = _Alarm(
        seconds,
        start + seconds,
        start + outer_delay if outer_delay > 0 else math.inf,
        outer_handler,
    )

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if not alarm.outer_due and alarm.outer_deadline < alarm.deadline:
            # the outer timer was due first: hand it over, then wait for ours
            alarm.outer_due = True
            signal.setitimer(signal.ITIMER_REAL, max(alarm.deadline - now, 1e-6))
            if callable(alarm.outer_handler):
                alarm.outer_handler(signum, frame)
            return
        if not alarm.active:
            return
        alarm.fired = True
        signal.setitimer(signal.ITIMER_REAL, REPEAT_SECONDS)  # again if it is swallowed
        raise TimeLimitExceeded(alarm.seconds)

    signal.signal(signal.SIGALRM, on_alarm)
    try:  # arm inside the try: a tiny limit may fire before the next line runs
        signal.setitimer(
            signal.ITIMER_REAL, max(min(alarm.deadline, alarm.outer_deadline) - start, 1e-6)
        )
        result = function(*args)
    except TimeLimitExceeded:
        raise
    except BaseException as error:
        if alarm.fired:  # the code turned our exception into its own
            raise TimeLimitExceeded(seconds, f"{type(error).__name__}: {error}") from error
        raise
    finally:
        alarm.active = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_delay > 0:
            if alarm.outer_due:
                if outer_interval > 0:
                    signal.setitimer(signal.ITIMER_REAL, outer_interval, outer_interval)
            else:
                remaining = max(alarm.outer_deadline - time.monotonic(), 1e-6)
                signal.setitimer(signal.ITIMER_REAL, remaining, outer_interval)
    if alarm.fired:  # past the deadline, but the code swallowed the exception
        raise TimeLimitExceeded(seconds, "the interrupted code returned anyway; result discarded")
    return result


# ----------------------------------------------------------------------------------------------
# child processes for calls from other threads

_CHILD_CODE = (
    "import sys; from assyst_nodes.runtime.deadline import _child_main; "
    "_child_main(int(sys.argv[1]), int(sys.argv[2]))"
)


def _child_main(fd: int, parent: int) -> None:
    """Entry of a time-limit child process: serve calls on socket ``fd`` until EOF.

    Each call is a pickled ``(sys.path or None if unchanged, pickled (seconds, function,
    args))``; the answers are ``("started",)`` once it is unpickled (imports
    done, not timed), then ``("ok", result)`` or ``("raised", exception)``; a call that cannot be
    unpickled gets ``("unloadable", text)``. Exits when the parent process is gone.
    """
    import os
    import socket
    from multiprocessing.connection import Connection

    from .fanout import single_threaded

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)  # the parent died (e.g. SIGKILL): never outlive it

    threading.Thread(target=watch_parent, daemon=True).start()
    single_threaded()
    connection = Connection(socket.socket(fileno=fd).detach())
    try:
        while True:
            payload = connection.recv_bytes()
            try:
                path, payload = pickle.loads(payload)
                if path is not None:
                    sys.path[:] = path
                seconds, function, args = pickle.loads(payload)
            except Exception as error:
                connection.send(("unloadable", f"{type(error).__name__}: {error}"))
                continue
            connection.send(("started",))
            try:
                answer: tuple[str, Any] = ("ok", _call_with_alarm(seconds, function, args))
            except BaseException as error:
                answer = ("raised", error)
            try:
                connection.send(answer)
            except Exception as error:
                kind, value = answer
                what = f"{type(value).__name__}: {value}" if kind == "raised" else "its result"
                connection.send(("raised", RuntimeError(f"cannot send back {what}: {error}")))
    except (EOFError, OSError):
        return


class _Child:
    """A Python process that runs calls under the alarm in its main thread (POSIX only)."""

    def __init__(self) -> None:
        import os
        import socket
        import subprocess
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        import assyst_nodes

        # the folder holding the package (never the package's own folder: its io/ would
        # shadow the standard library's io in the child)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(assyst_nodes.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (package_root, env.get("PYTHONPATH", "")) if part
        )
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self.connection = Connection(mine.detach())
        self.path: list[str] | None = None  # the sys.path the child has

    def alive(self) -> bool:
        return self.process.poll() is None and not self.connection.closed

    def call(self, seconds: float | None, function: Callable[..., R], args: tuple[Any, ...]) -> R:
        """``function(*args)`` in the child under a limit of ``seconds`` (``None``: none); the
        child is killed (and :class:`TimeLimitExceeded` raised) if no answer comes ``seconds``
        plus a grace period after the call started."""
        try:
            payload = _dumps((seconds, function, args))
        except Exception as error:
            raise TypeError(
                "a time limit outside the main thread runs each call in a child process, which "
                f"needs picklable work; {getattr(function, '__qualname__', function)!r} or its "
                f"arguments are not ({type(error).__name__}: {error}); use a calculator config "
                "(EMT(), ImportedCalculator(...)) instead of a live object, or call from the "
                "main thread"
            ) from error
        path = list(sys.path)
        answered = False
        try:
            self.connection.send_bytes(pickle.dumps((path if path != self.path else None, payload)))
            self.path = path
            started = self._receive(None, seconds)  # unpickling (imports) is not timed
            if started[0] == "unloadable":
                answered = True
                raise TypeError(
                    "a time limit outside the main thread runs each call in a separate Python "
                    "process, which could not load "
                    f"{getattr(function, '__qualname__', function)!r} ({started[1]}); define it "
                    "in an importable module (not in __main__ or a notebook), or call from the "
                    "main thread"
                )
            wait = None if seconds is None else seconds + GRACE_SECONDS + 0.1 * seconds
            kind, value = self._receive(wait, seconds)
            answered = True
        finally:
            if not answered:  # e.g. KeyboardInterrupt while waiting: never reuse it mid-call
                self.kill()
        if kind == "raised":
            raise value
        return value

    def _receive(self, timeout: float | None, seconds: float | None) -> tuple[Any, ...]:
        if not self.connection.poll(timeout):
            self.kill()
            raise TimeLimitExceeded(seconds or 0.0, "it did not stop; its process was killed")
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            code = self.process.wait()
            self.kill()
            raise WorkerDied(f"the process running the call died (exit code {code})") from None

    def kill(self) -> None:
        self.connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _dumps(task: Any) -> bytes:
    """Pickle ``task``; with cloudpickle (if installed) functions and classes defined in
    ``__main__`` or a notebook travel by value."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with executorlib
        return pickle.dumps(task)
    return cloudpickle.dumps(task)


_IDLE: list[_Child] = []
_IDLE_LOCK = threading.Lock()


def _checkout() -> _Child:
    """An idle child process (started processes are kept for the next calls: their imports and
    cached calculators are reused)."""
    with _IDLE_LOCK:
        while _IDLE:
            child = _IDLE.pop()
            if child.alive():
                return child
    return _Child()


def _checkin(child: _Child) -> None:
    if child.alive():
        with _IDLE_LOCK:
            _IDLE.append(child)


@atexit.register
def _stop_idle() -> None:
    with _IDLE_LOCK:
        children = list(_IDLE)
        _IDLE.clear()
    for child in children:
        with contextlib.suppress(Exception):
            child.kill()


@dataclass
class TimeLimit:
    """Calls ``function(*args)`` limited to ``seconds`` (s) each; ``None``: no limit.

    Use as a context manager around a batch of calls (it closes the child processes of the
    thread mode at exit, see :meth:`close`). Pickles as its settings only, so it can be handed
    to pool workers, which start their own. See the module docstring for how each mode works
    and what it can stop.

    Parameters
    ----------
    seconds : float or None, optional
        Wall-time limit of each call (s), a finite number > 0 (checked by
        :func:`check_time_limit`). Default: ``None`` (no limit: calls run as they are).
    mode : {"auto", "signal", "process"}, default "auto"
        ``"auto"``: a ``SIGALRM`` alarm in the main thread, a child process elsewhere;
        ``"signal"``: always the alarm (only works in the main thread); ``"process"``: always a
        child process (e.g. to also stop code hung in C or Fortran).

    Raises
    ------
    TypeError
        On construction, if ``seconds`` is not a number (see :func:`check_time_limit`).
    ValueError
        On construction, if ``seconds`` is not finite and > 0, or ``mode`` is not one of the
        three.

    Notes
    -----
    A limited call raises :class:`TimeLimitExceeded` past its limit, ``RuntimeError`` with
    ``mode="signal"`` outside the main thread, ``NotImplementedError`` on a system that is not
    POSIX, :class:`WorkerDied` when its child process dies, and ``TypeError`` in process mode
    when the function or its arguments do not pickle or the child process cannot load them.
    """

    seconds: float | None = None
    mode: Literal["auto", "signal", "process"] = "auto"
    _children: dict[int, _Child] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _setup: list[tuple[Callable[..., Any], tuple[Any, ...]]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.seconds = check_time_limit(self.seconds)
        if self.mode not in ("auto", "signal", "process"):
            raise ValueError(f"mode must be 'auto', 'signal' or 'process', got {self.mode!r}")

    def __call__(self, function: Callable[..., R], *args: Any) -> R:
        """``function(*args)``; raises :class:`TimeLimitExceeded` past the limit.

        Parameters
        ----------
        function : callable
            What to call; in process mode it and ``args`` must pickle.
        *args
            Its positional arguments.

        Returns
        -------
        object
            What ``function(*args)`` returned (never a result of a call past the limit).

        Raises
        ------
        TimeLimitExceeded
            If the call ran past ``seconds`` (s), even if the code swallowed the alarm.
        """
        return self._run(self.seconds, function, args)

    def prepare(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` now, without a limit, where the limited calls run.

        That is this process, or this thread's child process; it runs again in every child
        process started later (after one was killed): e.g. to build a calculator, so that
        loading it does not count against a structure's time. Exceptions are ignored (the
        timed calls meet them). Does nothing when ``seconds`` is ``None``.

        Parameters
        ----------
        function : callable
            The set-up work; in process mode it and ``args`` must pickle.
        *args
            Its positional arguments.
        """
        if self.seconds is None:
            return
        with self._lock:
            if (function, args) not in self._setup:
                self._setup.append((function, args))
        with contextlib.suppress(Exception):
            self._run(None, function, args)

    def _run(self, seconds: float | None, function: Callable[..., R], args: tuple[Any, ...]) -> R:
        if self.seconds is None:
            return function(*args)
        if self.mode == "signal" or (self.mode == "auto" and _signals_usable()):
            if not _signals_usable():
                raise RuntimeError("TimeLimit(mode='signal') works only in the main thread")
            return _call_with_alarm(seconds, function, args)
        if not hasattr(signal, "setitimer"):
            raise NotImplementedError(
                "time limits need a POSIX system (Linux, macOS); use time_limit=None here"
            )
        key = threading.get_ident()
        with self._lock:
            child = self._children.pop(key, None)
            setup = list(self._setup)
        if child is None or not child.alive():
            child = _checkout()
            for step in setup if seconds is not None else ():
                with contextlib.suppress(Exception):
                    child.call(None, *step)
        try:
            return child.call(seconds, function, args)
        finally:
            with self._lock:
                self._children[key] = child

    def close(self) -> None:
        """Hand the child processes this limit used back for reuse."""
        with self._lock:
            children, self._children = list(self._children.values()), {}
        for child in children:
            _checkin(child)

    def __enter__(self) -> TimeLimit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "mode": self.mode}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.seconds = state["seconds"]
        self.mode = state["mode"]
        self._children = {}
        self._lock = threading.Lock()
        self._setup = []
