"""``manage.py demo``: migrate, load demo data, run web + worker + beat until Ctrl-C."""

import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from storefront import demo

WORKER_QUEUES = "events,email,sms,clock"


class Command(BaseCommand):
    help = "Set up the demo (migrate, demo data) and run web, worker and beat until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Port of the web server (default 8000).")
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--setup-only", action="store_true", help="Migrate and load data, start nothing.")

    def handle(self, *args, port, host, setup_only, **options):
        call_command("migrate", interactive=False, verbosity=0)
        password = demo.load(admin_password=os.environ.get("TRIGGERHUB_DEMO_ADMIN_PASSWORD"))
        base = f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}"
        self.stdout.write(self.style.SUCCESS("TriggerHub demo is set up."))
        self.stdout.write(f"  Storefront: {base}/   (register to get the welcome e-mail)")
        self.stdout.write(f"  Admin:      {base}/admin/   user {demo.ADMIN_USERNAME!r}, password {password!r}")
        self.stdout.write(f"  Database:   {settings.DATABASES['default']['NAME']}")
        self.stdout.write(f"  Broker:     {settings.CELERY_BROKER_URL}")
        if setup_only:
            return
        self.stdout.write("E-mail and SMS are printed by the worker below. Ctrl-C stops everything.\n")
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": [python, "-m", "celery", "-A", "triggerhub", "worker", "-Q", WORKER_QUEUES,
                       "--concurrency", "2", "--loglevel", "INFO", "-n", "demo@%h"],
            "beat": [python, "-m", "celery", "-A", "triggerhub", "beat", "--loglevel", "INFO"],
        }
        sys.exit(run_together(commands, cwd=settings.BASE_DIR, out=self.stdout))


def run_together(commands: dict[str, list[str]], *, cwd, out) -> int:
    """Run the commands side by side, prefixing their output, until one ends or we are stopped.

    Children run in their own sessions so that Ctrl-C reaches only us; we then ask
    each to stop (SIGTERM: warm shutdown for Celery) and kill what is still up after 15 s.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    children = {}
    for name, argv in commands.items():
        child = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,
        )
        children[name] = child
        threading.Thread(target=_relay, args=(name, child, out), daemon=True).start()

    exit_code = 0
    while not stop.is_set():
        ended = [name for name, child in children.items() if child.poll() is not None]
        if ended:
            out.write(f"[demo] {', '.join(ended)} stopped unexpectedly; stopping the rest.\n")
            exit_code = 1
            break
        stop.wait(0.5)

    out.write("[demo] stopping web, worker and beat...\n")
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            out.write(f"[demo] {name} did not stop in time; killing it.\n")
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    out.write("[demo] stopped.\n")
    return exit_code


def _relay(name, child, out):
    for line in child.stdout:
        out.write(f"[{name:6}] {line.rstrip()}\n")
        out.flush()
