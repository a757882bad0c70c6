"""The demo's processes run side by side, and kept running: ``manage.py demo`` starts
web, worker and beat through :func:`supervise`.

A process that dies is started again after a pause that doubles from one second up to
thirty while it keeps dying soon after its start, and goes back to one second once it
has run for a minute. Only Ctrl-C or SIGTERM stop everything.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

#: How long the processes have to stop on Ctrl-C before they are killed.
STOP_TIMEOUT_SECONDS = 15


@dataclass
class RestartBackoff:
    """How long to wait before starting a process again that has just ended."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    #: A process that ran this long died of something new: the pauses start over.
    stable_after: float = 60.0
    _next_delay: float = field(init=False, default=0.0)

    def __post_init__(self):
        self._next_delay = self.first_delay

    def delay_after(self, *, ran_for: float) -> float:
        if ran_for >= self.stable_after:
            self._next_delay = self.first_delay
        delay = self._next_delay
        self._next_delay = min(delay * 2, self.max_delay)
        return delay


@dataclass
class Child:
    name: str
    argv: list[str]
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0


def supervise(commands: dict[str, list[str]], *, cwd, out) -> int:
    """Run the commands side by side, prefixing their output, restarting any that ends,
    until we get SIGINT or SIGTERM; then stop them all and return 0.

    Children run in their own sessions so that Ctrl-C reaches only us; we then ask
    each to stop (SIGTERM: warm shutdown for Celery) and kill what is still up after 15 s.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    children = [Child(name, argv) for name, argv in commands.items()]
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

    _stop_all(children, out=out)
    return 0


def _start(child: Child, *, cwd, out) -> None:
    child.process = subprocess.Popen(
        child.argv, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
    )
    child.started_at = time.monotonic()
    out.write(f"[demo] {child.name} started (pid {child.process.pid})\n")
    threading.Thread(target=_relay, args=(child.name, child.process, out), daemon=True).start()


def _ended(child: Child, *, now: float, out) -> None:
    code = child.process.returncode
    # What it leaves behind in its process group (a killed worker's pool processes) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signal.SIGKILL)
    delay = child.backoff.delay_after(ran_for=now - child.started_at)
    child.process, child.restart_at = None, now + delay
    out.write(f"[demo] {child.name} exited with {_describe_exit(code)}; restarting it in {delay:g} s.\n")


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code} (killed by {signal.Signals(-code).name})"
    return f"code {code}"


def _stop_all(children: list[Child], *, out) -> None:
    running = [child for child in children if child.process is not None]
    out.write(f"[demo] stopping {', '.join(child.name for child in running)}...\n")
    for child in running:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            out.write(f"[demo] {child.name} did not stop in time; killing it.\n")
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
    out.write("[demo] stopped.\n")


def _relay(name, process, out):
    for line in process.stdout:
        out.write(f"[{name:6}] {line.rstrip()}\n")
        out.flush()
