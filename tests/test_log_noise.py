"""What a newcomer watching ``manage.py demo`` would read as errors, and is not: the
e-mail and SMS the console backends print in the worker, and the browser's request
for the site's icon."""

import contextlib
import logging
import sys

from django.core import mail

from messaging.backends.sms.base import OutgoingSms
from messaging.backends.sms.console import SmsBackend
from triggerhub.celery import app as celery_app


@contextlib.contextmanager
def stdout_redirected_as_in_a_worker():
    """What ``celery worker`` does at start (celery/apps/worker.py): standard output and
    error go to the celery.redirected logger, at the level the configuration sets."""
    saved = sys.stdout, sys.stderr
    celery_app.log.redirect_stdouts_to_logger(
        logging.getLogger("celery.redirected"), loglevel=celery_app.conf.worker_redirect_stdouts_level
    )
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def test_email_and_sms_printed_by_the_console_backends_in_a_worker_are_logged_as_info(caplog):
    caplog.set_level(logging.DEBUG, logger="celery.redirected")
    with stdout_redirected_as_in_a_worker():
        SmsBackend().send(OutgoingSms(to="+12125550100", body="Your code is 1234", message_id=7))
        email = mail.EmailMessage("Welcome", "Hello", "shop@example.com", ["nia@example.com"])
        mail.get_connection("django.core.mail.backends.console.EmailBackend").send_messages([email])

    printed = [r for r in caplog.records if r.name == "celery.redirected"]
    assert "Your code is 1234" in caplog.text and "To: nia@example.com" in caplog.text
    assert {r.levelname for r in printed} == {"INFO"}


def test_the_site_icon_is_served_at_favicon_ico(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content).startswith(b"\x00\x00\x01\x00")  # an ICO file
