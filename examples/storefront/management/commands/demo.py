"""``manage.py demo``: migrate, load demo data, run web + worker + beat (restarting any that dies) until Ctrl-C."""

import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from examples.storefront import demo
from examples.storefront.supervisor import supervise

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
        self.stdout.write(
            "E-mail and SMS are printed by the worker below. A process that dies is started again;"
            " Ctrl-C stops everything.\n"
        )
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "triggerhub",
                "worker",
                "-Q",
                WORKER_QUEUES,
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "-n",
                "demo@%h",
            ],
            "beat": [python, "-m", "celery", "-A", "triggerhub", "beat", "--loglevel", "INFO"],
        }
        sys.exit(supervise(commands, cwd=settings.BASE_DIR, out=self.stdout))
