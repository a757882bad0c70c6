"""Both ways to run, and the production mode, are set by environment variables alone."""

import os
import subprocess
import sys

from django.core.management import call_command

from .conftest import ROOT

PRODUCTION_ENV = {
    "TRIGGERHUB_MODE": "production",
    "DJANGO_SECRET_KEY": "x7Qm2vN9pL4sT8wZ1cR6yB3nK5hJ0fG2dA9eU4iO7tY1rW8qE3",
    "DJANGO_ALLOWED_HOSTS": "triggerhub.example.com",
}


def manage(*args, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRIGGERHUB_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


# An ESP and Twilio: backends that deliver, as production needs.
DELIVERING_BACKENDS = {
    "DJANGO_EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "postmark-server-token",
    "TRIGGERHUB_SMS_BACKEND": "messaging.backends.sms.twilio.SmsBackend",
    "TRIGGERHUB_TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TRIGGERHUB_TWILIO_AUTH_TOKEN": "token",
    "TRIGGERHUB_TWILIO_FROM_NUMBER": "+12125550100",
}


def test_check_deploy_is_clean_with_the_documented_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV, **DELIVERING_BACKENDS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_in_production_with_the_console_email_backend_naming_the_setting():
    result = manage(
        "check",
        "--deploy",
        **PRODUCTION_ENV,
        **{**DELIVERING_BACKENDS, "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
    )
    assert result.returncode != 0
    assert "triggerhub.E008" in result.stderr
    assert "DJANGO_EMAIL_BACKEND is 'django.core.mail.backends.console.EmailBackend'" in result.stderr


def test_production_has_no_default_email_backend():
    env = {k: v for k, v in DELIVERING_BACKENDS.items() if k != "DJANGO_EMAIL_BACKEND"}
    result = manage("check", "--deploy", **PRODUCTION_ENV, **env)
    assert result.returncode != 0
    assert "DJANGO_EMAIL_BACKEND is not set" in result.stderr


def test_production_may_run_on_backends_that_deliver_nothing_only_when_told_so():
    console = {
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "TRIGGERHUB_SMS_BACKEND": "messaging.backends.sms.console.SmsBackend",
    }
    refused = manage("check", "--deploy", **PRODUCTION_ENV, **console)
    assert refused.returncode != 0
    assert "triggerhub.E008" in refused.stderr and "triggerhub.E009" in refused.stderr

    allowed = manage(
        "check", "--deploy", **PRODUCTION_ENV, **console, TRIGGERHUB_ALLOW_NON_DELIVERING_BACKENDS="email,sms"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr.count("triggerhub.W002") == 2


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when TRIGGERHUB_MODE=production" in result.stderr


def test_production_turns_debug_off():
    result = manage(
        "shell", "--no-imports", "-c", "from django.conf import settings; print(settings.DEBUG)", **PRODUCTION_ENV
    )
    assert result.stdout.strip() == "False", result.stderr


def test_database_and_broker_come_from_the_environment():
    code = (
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
    )
    services = manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        DATABASE_URL="postgres://u@db.example:5432/th",
        REDIS_URL="redis://cache.example:6379/1",
    )
    assert services.stdout.split() == ["django.db.backends.postgresql", "redis://cache.example:6379/1"]
    embedded = manage("shell", "--no-imports", "-c", code)
    assert embedded.stdout.split() == ["django.db.backends.sqlite3", "triggerhub-fs://"]


def test_every_model_change_has_its_migration(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_healthz_answers_ok_when_the_database_does(client, db):
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok")


def test_beat_schedules_for_the_sweepers_exist_after_migrating(db):
    from django_celery_beat.models import PeriodicTask

    schedules = {t.task: t.interval.every for t in PeriodicTask.objects.filter(enabled=True)}
    assert schedules["messaging.tasks.sweep_outbox"] == 30
    assert schedules["customers.tasks.sweep_events"] == 60


def test_a_production_worker_refuses_to_start_with_a_backend_that_delivers_nothing(tmp_path):
    """Celery runs Django's checks and ignores them: the worker itself must refuse."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRIGGERHUB_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env = {
        **clean,
        **PRODUCTION_ENV,
        **DELIVERING_BACKENDS,
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "TRIGGERHUB_VAR_DIR": str(tmp_path),
    }
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "triggerhub",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            "nothing-here",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert worker.returncode != 0
    assert "DJANGO_EMAIL_BACKEND" in worker.stdout + worker.stderr
