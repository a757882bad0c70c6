"""How the demo keeps its processes running: how long it waits before starting one again
that died, when it gives up on one, and that its processes never outlive it."""

import errno
import os
import re
import signal
import subprocess
import sys

import pytest

from examples.storefront import supervisor
from examples.storefront.supervisor import RestartBackoff, supervise
from tests.conftest import ROOT, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
DIES_AT_ONCE = [sys.executable, "-c", "print('Error: That port is already in use.'); raise SystemExit(1)"]


def test_a_process_that_keeps_dying_at_start_waits_twice_as_long_each_time_up_to_30_s():
    backoff = RestartBackoff()

    delays = [backoff.delay_after(ran_for=0.5) for _ in range(7)]

    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_a_process_that_ran_for_a_minute_before_dying_is_restarted_after_1_s_again():
    backoff = RestartBackoff()
    for _ in range(5):
        backoff.delay_after(ran_for=0.5)

    assert backoff.delay_after(ran_for=60) == 1
    assert backoff.delay_after(ran_for=0.5) == 2


def test_a_process_that_dies_within_seconds_of_its_start_five_times_in_a_row_is_given_up():
    backoff = RestartBackoff()
    for _ in range(4):
        backoff.delay_after(ran_for=2)
    assert not backoff.keeps_dying_at_start

    backoff.delay_after(ran_for=2)

    assert backoff.keeps_dying_at_start


def test_a_run_of_more_than_a_few_seconds_between_quick_deaths_starts_the_count_over():
    backoff = RestartBackoff()
    for _ in range(4):
        backoff.delay_after(ran_for=2)
    backoff.delay_after(ran_for=20)
    for _ in range(4):
        backoff.delay_after(ran_for=2)

    assert not backoff.keeps_dying_at_start


class Terminal:
    """What the supervisor writes to; ``broken_at`` makes it fail as a closed pipe would."""

    def __init__(self, *, broken_at=None):
        self.text, self.broken_at = "", broken_at

    def write(self, text):
        if self.broken_at and self.broken_at in text:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        self.text += text

    def flush(self):
        pass

    def pid_of(self, name):
        return int(re.findall(rf"\[demo\] {name} started \(pid (\d+)\)", self.text)[-1])


def quick_backoff():
    return RestartBackoff(first_delay=0.01)


def is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def leftover_processes():
    """Pids a failing test would leave running: killed after it."""
    pids = []
    yield pids
    for pid in pids:
        if is_alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_a_process_that_keeps_dying_at_start_stops_the_demo_with_its_name_and_last_output(tmp_path, leftover_processes):
    terminal = Terminal()

    code = supervise({"web": DIES_AT_ONCE, "beat": SLEEPER}, cwd=tmp_path, out=terminal, backoff=quick_backoff)
    leftover_processes.append(terminal.pid_of("beat"))

    assert code == 1
    assert re.search(
        r"\[demo\] web died within 10 s of its start 5 times in a row; giving up\. Its last output:\n"
        r"\[web   \] Error: That port is already in use\.\n",
        terminal.text,
    )
    assert terminal.text.count("[demo] web started") == 5
    assert not is_alive(terminal.pid_of("beat"))


def test_when_the_demo_cannot_write_its_output_it_stops_its_processes_before_it_ends(tmp_path, leftover_processes):
    terminal = Terminal(broken_at="restarting it")

    with pytest.raises(BrokenPipeError):
        supervise({"worker": DIES_AT_ONCE, "beat": SLEEPER}, cwd=tmp_path, out=terminal, backoff=quick_backoff)
    leftover_processes.append(terminal.pid_of("beat"))

    assert not is_alive(terminal.pid_of("beat"))


def test_when_a_restart_cannot_start_its_process_the_others_are_stopped_before_the_demo_ends(
    tmp_path, monkeypatch, leftover_processes
):
    terminal, real_popen = Terminal(), subprocess.Popen

    def popen(argv, **kwargs):
        if argv == DIES_AT_ONCE and "[demo] worker started" in terminal.text:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")  # fork() failing
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(supervisor.subprocess, "Popen", popen)

    with pytest.raises(BlockingIOError):
        supervise({"worker": DIES_AT_ONCE, "beat": SLEEPER}, cwd=tmp_path, out=terminal, backoff=quick_backoff)
    leftover_processes.append(terminal.pid_of("beat"))

    assert not is_alive(terminal.pid_of("beat"))


def test_sighup_stops_the_demo_and_its_processes_as_sigterm_does(tmp_path, leftover_processes):
    # A closed terminal sends SIGHUP; the processes run in sessions of their own and would not get it.
    script = (
        "import sys; from examples.storefront.supervisor import supervise;"
        f"sys.exit(supervise({{'beat': {SLEEPER!r}}}, cwd='.', out=sys.stdout))"
    )
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        demo = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_until(lambda: "[demo] beat started" in log_path.read_text(), message="the demo to start beat")
        beat = int(re.search(r"pid (\d+)", log_path.read_text())[1])
        leftover_processes.append(beat)

        demo.send_signal(signal.SIGHUP)

        assert demo.wait(timeout=20) == 0
        assert not is_alive(beat)
        assert "[demo] stopped." in log_path.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_a_process_writing_bytes_that_are_not_utf8_is_relayed_and_never_blocked(tmp_path):
    noisy = [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'caf\\xe9 \\xff\\n' * 20000)"]
    terminal, child = Terminal(), supervisor.Child("worker", noisy)

    supervisor._start(child, cwd=tmp_path, out=terminal)

    assert child.process.wait(timeout=20) == 0
    wait_until(lambda: terminal.text.count("[worker] caf\ufffd \ufffd\n") == 20000, message="all its output")


def test_a_process_is_never_blocked_by_a_terminal_that_cannot_be_written_to(tmp_path):
    # The relay keeps reading what the process writes, else its pipe fills and it waits for ever.
    chatty = [sys.executable, "-c", "print(('x' * 100 + '\\n') * 2000)"]
    terminal, child = Terminal(broken_at="[worker]"), supervisor.Child("worker", chatty)

    supervisor._start(child, cwd=tmp_path, out=terminal)

    assert child.process.wait(timeout=20) == 0
