"""`manage.py demo` as a newcomer runs it: web, worker and beat come up on a fresh
embedded setup, a registration's welcome e-mail shows as sent in the admin within
ten seconds, a process that dies is started again, one that cannot start stops the
demo with its error, and Ctrl-C stops every process."""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.conftest import ROOT, wait_until

PASSWORD = "demo-admin-Pass-42"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Just enough of a browser: cookies, CSRF tokens, form posts."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path):
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.status, response.read().decode()

    def post_form(self, path, fields):
        self.get(path)
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Referer": self.base + path})
        with self.opener.open(request, timeout=10) as response:
            return response.status, response.geturl(), response.read().decode()


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def worker_pid(demo_pid):
    """The Celery worker's main process among the demo's children."""
    return next(pid for pid in children_of(demo_pid) if " worker " in command_line(pid))


def is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_demo(tmp_path, port):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRIGGERHUB_VAR_DIR=str(tmp_path), TRIGGERHUB_DEMO_ADMIN_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    process, log_path = start_demo(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: "ready." in log_path.read_text() and _answers(base), timeout=90, message="the demo's web and worker"
        )
        yield process, base, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        print(log_path.read_text()[-4000:])


def _answers(base):
    try:
        urllib.request.urlopen(base + "/", timeout=2).close()
    except OSError:
        return False
    return True


def test_demo_registration_email_shows_as_sent_in_the_admin_and_ctrl_c_stops_everything(demo):
    process, base, log_path = demo
    assert f"password '{PASSWORD}'" in log_path.read_text()

    shopper = Browser(base)
    status, url, _ = shopper.post_form(
        "/register/",
        {
            "username": "newcomer",
            "email": "newcomer@example.com",
            "first_name": "Nia",
            "country": "US",
            "password1": "a-Long-secret-9",
            "password2": "a-Long-secret-9",
        },
    )
    assert (status, url) == (200, base + "/")
    registered_at = time.monotonic()

    admin = Browser(base)
    admin.post_form("/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD})

    def welcome_listed_as_sent():
        _, page = admin.get("/admin/messaging/message/?status__exact=sent")
        return "Welcome to the Example shop, Nia" in page

    wait_until(welcome_listed_as_sent, timeout=10, interval=0.25, message="the welcome e-mail in the admin")
    assert time.monotonic() - registered_at < 10
    assert "To: newcomer@example.com" in log_path.read_text()  # printed by the worker

    children = children_of(process.pid)
    assert len(children) == 3  # web, worker, beat
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=40) == 0
    assert not [pid for pid in children if is_alive(pid)]
    assert re.search(r"\[demo\] stopped\.", log_path.read_text())


def test_demo_restarts_a_worker_killed_with_sigkill_and_the_site_keeps_answering(demo):
    process, base, log_path = demo
    killed = worker_pid(process.pid)

    os.kill(killed, signal.SIGKILL)

    def worker_ready_again_or_demo_ended():
        log = log_path.read_text()
        return process.poll() is not None or len(re.findall(r"\[worker\].* ready\.", log)) >= 2

    wait_until(worker_ready_again_or_demo_ended, timeout=90, message="the worker to be ready again")
    assert process.poll() is None, "the demo stopped when its worker died"
    log = log_path.read_text()
    assert re.search(r"\[demo\] worker exited with code -9 \(killed by SIGKILL\); restarting it in 1 s", log)
    assert worker_pid(process.pid) != killed
    with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"ok")

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=40) == 0


def test_demo_whose_port_is_taken_stops_with_the_web_servers_error_and_leaves_nothing_running(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process, log_path = start_demo(tmp_path, taken.getsockname()[1])
        try:
            assert process.wait(timeout=180) == 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            print(log_path.read_text()[-4000:])

    log = log_path.read_text()
    assert re.search(
        r"\[demo\] web died within 10 s of its start 5 times in a row; giving up\. Its last output:\n"
        r"(\[web   \] .*\n)*\[web   \] Error: That port is already in use\.\n",
        log,
    )
    started = [int(pid) for pid in re.findall(r"\[demo\] \w+ started \(pid (\d+)\)", log)]
    assert not [pid for pid in started if is_alive(pid)]
    assert re.search(r"\[demo\] stopped\.", log)
