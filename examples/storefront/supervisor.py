"""The demo's processes run side by side, and kept running: ``manage.py demo`` starts
web, worker and beat through :func:`supervise`.

A process that dies is started again after a pause that doubles from one second up to
thirty while it keeps dying soon after its start, and goes back to one second once it
has run for a minute. A process that dies within ten seconds of its start five times in
a row (the web port already in use, a broken setting) will not get better by waiting:
the demo stops, naming it and showing its last output. Otherwise only Ctrl-C, SIGTERM
or SIGHUP (a closed terminal) stop everything, and whatever ends the demo, even an
error of its own, stops its processes first.
"""

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: How long the processes have to stop on Ctrl-C before they are killed.
STOP_TIMEOUT_SECONDS = 15
#: How many of a process's last lines of output are shown when the demo gives up on it.
LAST_OUTPUT_LINES = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class RestartBackoff:
    """How long to wait before starting a process again that has just ended, and when to stop trying."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    #: A process that ran this long died of something new: the pauses start over.
    stable_after: float = 60.0
    #: A process that died this soon after its start, ``give_up_after`` times in a row,
    #: fails at its start for a reason waiting will not fix.
    quick_death_within: float = 10.0
    give_up_after: int = 5
    _next_delay: float = field(init=False, default=0.0)
    _quick_deaths_in_a_row: int = field(init=False, default=0)

    def __post_init__(self):
        self._next_delay = self.first_delay

    def delay_after(self, *, ran_for: float) -> float:
        if ran_for >= self.stable_after:
            self._next_delay = self.first_delay
        self._quick_deaths_in_a_row = self._quick_deaths_in_a_row + 1 if ran_for < self.quick_death_within else 0
        delay = self._next_delay
        self._next_delay = min(delay * 2, self.max_delay)
        return delay

    @property
    def keeps_dying_at_start(self) -> bool:
        return self._quick_deaths_in_a_row >= self.give_up_after


@dataclass
class Child:
    name: str
    argv: list[str]
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    process: subprocess.Popen | None = None
    relay: threading.Thread | None = None
    last_output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LAST_OUTPUT_LINES))
    started_at: float = 0.0
    restart_at: float = 0.0


class GaveUp(Exception):
    """A process keeps dying at its start; the message names it and shows its last output."""


def supervise(
    commands: dict[str, list[str]], *, cwd, out, backoff: Callable[[], RestartBackoff] = RestartBackoff
) -> int:
    """Run the commands side by side, prefixing their output, restarting any that ends,
    until we get SIGINT, SIGTERM or SIGHUP (then return 0) or one keeps dying at its start
    (then return 1); stop them all on the way out, also when an error ends the loop.

    Children run in their own sessions so that Ctrl-C reaches only us; we then ask
    each to stop (SIGTERM: warm shutdown for Celery) and kill what is still up after 15 s.
    """
    stop = threading.Event()
    previous_handlers = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in STOP_SIGNALS}
    children = [Child(name, argv, backoff=backoff()) for name, argv in commands.items()]
    try:
        for child in children:
            _start(child, cwd=cwd, out=out)
        while not stop.is_set():
            now = time.monotonic()
            for child in children:
                if child.process is None:
                    if now >= child.restart_at:
                        _start(child, cwd=cwd, out=out)
                elif child.process.poll() is not None:
                    _ended(child, now=now, out=out)
            stop.wait(0.2)
    except GaveUp as gave_up:
        _say(out, str(gave_up))
        return 1
    finally:
        _stop_all(children, out=out)
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    return 0


def _start(child: Child, *, cwd, out) -> None:
    child.process = subprocess.Popen(
        child.argv,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    child.started_at = time.monotonic()
    child.last_output.clear()
    out.write(f"[demo] {child.name} started (pid {child.process.pid})\n")
    child.relay = threading.Thread(target=_relay, args=(child, out), daemon=True)
    child.relay.start()


def _ended(child: Child, *, now: float, out) -> None:
    code = child.process.returncode
    # What it leaves behind in its process group (a killed worker's pool processes) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signal.SIGKILL)
    delay = child.backoff.delay_after(ran_for=now - child.started_at)
    child.process, child.restart_at = None, now + delay
    if child.backoff.keeps_dying_at_start:
        child.relay.join(timeout=2)  # its last lines, still in the pipe
        raise GaveUp(
            f"[demo] {child.name} died within {child.backoff.quick_death_within:g} s of its start"
            f" {child.backoff.give_up_after} times in a row; giving up. Its last output:\n"
            + "".join(child.last_output)
            + "[demo] Fix what it says (for web, a port already in use: --port) and run the demo again.\n"
        )
    out.write(f"[demo] {child.name} exited with {_describe_exit(code)}; restarting it in {delay:g} s.\n")


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code} (killed by {signal.Signals(-code).name})"
    return f"code {code}"


def _stop_all(children: list[Child], *, out) -> None:
    running = [child for child in children if child.process is not None]
    _say(out, f"[demo] stopping {', '.join(child.name for child in running)}...\n")
    for child in running:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(out, f"[demo] {child.name} did not stop in time; killing it.\n")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
    _say(out, "[demo] stopped.\n")


def _say(out, text: str) -> None:
    """Write on the way out, where a closed terminal must not keep the processes from being stopped."""
    with contextlib.suppress(OSError, ValueError):
        out.write(text)


def _relay(child: Child, out) -> None:
    # Reads to the end whatever happens to our output: a child whose pipe is full blocks for ever.
    for line in child.process.stdout:
        line = f"[{child.name:6}] {line.rstrip()}\n"
        child.last_output.append(line)
        with contextlib.suppress(OSError, ValueError):
            out.write(line)
            out.flush()
