"""E-mail is published as drains: one pending drain serves every message committed before it starts."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import delivery, outbox, rendering
from messaging.models import Category, Channel, Message, MessageEvent, Reason, Status
from tests import factories
from triggerhub import queueing

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return factories.email_template(subject="Hello {{ customer.first_name }}")


class Published(list):
    """The names of the tasks published, in order; ``accepts`` is what the broker answers."""

    accepts = True

    def __call__(self, task, *args, **options):
        self.append(task.name)
        return self.accepts


@pytest.fixture
def published(monkeypatch, settings):
    """What this process publishes (nothing reaches the broker)."""
    settings.TRIGGERHUB_PUBLISH_IN_BACKGROUND = False
    names = Published()
    monkeypatch.setattr(outbox, "publish", names)
    monkeypatch.setattr(queueing, "publish", names)
    return names


def email(template, key, **fields):
    return outbox.enqueue(
        customer=factories.customer(),
        channel=Channel.EMAIL,
        content=template,
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key=key,
        **fields,
    )


def statuses(messages):
    return [Message.objects.get(pk=message.pk).status for message in messages]


def test_a_drain_sends_every_due_email_in_batches_and_calls_one_helper(template, settings, published, mailoutbox):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    messages = [email(template, f"drain:{n}") for n in range(5)]
    published.clear()

    assert delivery.drain_emails() == 5

    assert statuses(messages) == [Status.SENT] * 5
    assert sorted(m.to[0] for m in mailoutbox) == sorted(m.customer.email for m in messages)
    assert MessageEvent.objects.filter(status=Status.SENT).count() == 5
    # The first batch was full: one more drain was published to share the queue.
    assert published == ["messaging.tasks.drain_email"]


def test_a_drain_publishes_its_helper_once_its_full_first_batch_is_locked_before_sending_it(
    template, settings, published, mailoutbox
):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    for n in range(3):
        email(template, f"early:{n}")
    sent_when_published = []
    published.append = lambda name: (sent_when_published.append(len(mailoutbox)), list.append(published, name))

    assert delivery.drain_emails() == 3
    assert published == ["messaging.tasks.drain_email"]
    assert sent_when_published == [0]  # so the helper takes the next batch while this one renders and sends


def test_a_drain_that_finds_less_than_a_batch_publishes_nothing(template, published, mailoutbox):
    messages = [email(template, f"short:{n}") for n in range(3)]
    published.clear()

    assert delivery.drain_emails() == 3
    assert statuses(messages) == [Status.SENT] * 3
    assert published == []
    assert delivery.drain_emails() == 0


def test_a_drain_past_its_budget_hands_the_rest_to_a_new_drain(template, settings, published, monkeypatch, mailoutbox):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    monkeypatch.setattr(delivery, "DRAIN_BUDGET_SECONDS", 0)
    messages = [email(template, f"budget:{n}") for n in range(6)]
    published.clear()

    assert delivery.drain_emails() == 2

    assert statuses(messages) == [Status.SENT] * 2 + [Status.QUEUED] * 4
    assert published == ["messaging.tasks.drain_email"] * 2  # the helper, then the successor


def test_a_drain_leaves_sms_and_messages_not_yet_due(template, settings, published, mailoutbox):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    due = email(template, "due")
    later = email(template, "later", send_after=timezone.now() + timedelta(hours=1))
    sms = outbox.enqueue(
        customer=factories.customer(phone="+12125550100"),
        channel=Channel.SMS,
        content=factories.sms_content(),
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="sms",
    )

    assert delivery.drain_emails() == 1
    assert statuses([due, later, sms]) == [Status.SENT, Status.SCHEDULED, Status.QUEUED]


def test_enqueue_publishes_one_drain_while_one_is_pending(template, published, django_capture_on_commit_callbacks):
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            email(template, f"pending:{n}")
    assert published == ["messaging.tasks.drain_email"]

    outbox.email_drain_started()  # the drain began looking: later messages need another
    with django_capture_on_commit_callbacks(execute=True):
        email(template, "after-start")
    assert published == ["messaging.tasks.drain_email"] * 2


def test_when_the_broker_refuses_a_drain_the_next_message_tries_again(
    template,
    published,
    django_capture_on_commit_callbacks,
):
    published.accepts = False
    with django_capture_on_commit_callbacks(execute=True):
        email(template, "refused")
    published.accepts = True
    with django_capture_on_commit_callbacks(execute=True):
        email(template, "next")
    assert published == ["messaging.tasks.drain_email"] * 2


def test_sms_is_still_published_one_task_per_message(published, django_capture_on_commit_callbacks):
    content = factories.sms_content()
    for n in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            outbox.enqueue(
                customer=factories.customer(phone=f"+1212555010{n}"),
                channel=Channel.SMS,
                content=content,
                category=Category.TRANSACTIONAL,
                source="test",
                dedupe_key=f"sms:{n}",
            )
    assert published == ["messaging.tasks.deliver_sms"] * 2


def test_the_sweeper_releases_due_emails_with_one_drain(template, published):
    now = timezone.now()
    messages = [email(template, f"deferred:{n}") for n in range(3)]
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(
        status=Status.DEFERRED, send_after=now - timedelta(seconds=1)
    )
    published.clear()

    assert outbox.sweep(stale_after=timedelta(minutes=2), now=now)["released"] == 3

    assert statuses(messages) == [Status.QUEUED] * 3
    assert published == ["messaging.tasks.drain_email"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: SQLite runs one writer at a time")
def test_drains_running_at_once_send_each_message_once(template, settings, mailoutbox, monkeypatch):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 5
    monkeypatch.setattr(outbox, "publish", lambda *args, **options: True)
    messages = [email(template, f"race:{n}") for n in range(60)]
    barrier = threading.Barrier(4)
    taken = []

    def drain():
        barrier.wait()
        try:
            taken.append(delivery.drain_emails())
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(taken) == 60
    assert statuses(messages) == [Status.SENT] * 60
    assert sorted(m.to[0] for m in mailoutbox) == sorted(m.customer.email for m in messages)
    assert MessageEvent.objects.filter(status=Status.SENT).count() == 60


def test_a_message_that_cannot_be_rendered_fails_at_once_with_the_reason_and_the_drain_goes_on(
    template,
    settings,
    published,
    monkeypatch,
    mailoutbox,
):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    bad, *good = [email(template, f"poison:{n}") for n in range(4)]
    render = delivery._render

    def render_or_fail(message, values):
        if message.pk == bad.pk:
            raise rendering.RenderFailed("e-mail template 'welcome', HTML body", "line 2: {% include %} is not allowed")
        render(message, values)

    monkeypatch.setattr(delivery, "_render", render_or_fail)

    assert delivery.drain_emails() == 4

    bad.refresh_from_db()
    assert (bad.status, bad.reason, bad.sent_at, bad.attempts) == (Status.FAILED, Reason.TEMPLATE_ERROR, None, 0)
    assert bad.detail == "e-mail template 'welcome', HTML body: line 2: {% include %} is not allowed"
    assert bad.lease_expires_at is None
    assert statuses(good) == [Status.SENT] * 3
    assert delivery.drain_emails() == 0  # not taken again


def test_a_message_whose_rendering_raises_something_else_waits_outside_the_batch_and_is_queued_again(
    template,
    settings,
    published,
    monkeypatch,
    mailoutbox,
):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    odd, *good = [email(template, f"odd:{n}") for n in range(3)]
    render = delivery._render

    def render_or_raise(message, values):
        if message.pk == odd.pk:
            raise ImproperlyConfigured("TRIGGERHUB_SITE_URL is not set")
        render(message, values)

    monkeypatch.setattr(delivery, "_render", render_or_raise)
    assert delivery.drain_emails() == 3
    assert statuses(good) == [Status.SENT] * 2
    odd.refresh_from_db()
    assert odd.status == Status.SENDING and odd.handover_id is None  # outside the batch's hand-over

    monkeypatch.setattr(delivery, "_render", render)  # the operator set it
    with time_machine.travel(odd.lease_expires_at + timedelta(seconds=1)):
        outbox.sweep(stale_after=timedelta(minutes=2))
        assert Message.objects.get(pk=odd.pk).status == Status.QUEUED
        assert delivery.drain_emails() == 1
    assert statuses([odd]) == [Status.SENT] and len(mailoutbox) == 3


def test_a_drain_reads_its_templates_once_for_its_batches(template, settings, published, mailoutbox):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    messages = [email(template, f"reads:{n}") for n in range(6)]

    with CaptureQueriesContext(connection) as captured:
        assert delivery.drain_emails() == 6

    assert statuses(messages) == [Status.SENT] * 6
    template_reads = [q for q in captured.captured_queries if 'FROM "messaging_emailtemplate"' in q["sql"]]
    assert len(template_reads) == 1, "read once for the drain's 3 batches"


def test_an_edited_template_reaches_a_running_drain_once_its_reread_time_has_passed(
    template,
    settings,
    published,
    monkeypatch,
    mailoutbox,
):
    settings.TRIGGERHUB_DELIVERY_BATCH_SIZE = 2
    for n in range(6):
        email(template, f"edit:{n}")
    send_emails = delivery._send_emails
    batches = []  # the size of each batch sent

    with time_machine.travel(timezone.now(), tick=False) as clock:

        def send_then_edit(messages, **kwargs):
            outcomes = send_emails(messages, **kwargs)
            batches.append(len(messages))
            if len(batches) == 1:  # the marketer saves a new subject after the first batch
                template.subject = "Goodbye {{ customer.first_name }}"
                template.save()
            elif len(batches) == 2:  # the next batch comes REREAD_SECONDS later
                clock.shift(timedelta(seconds=delivery.EmailTemplates.REREAD_SECONDS))
            return outcomes

        monkeypatch.setattr(delivery, "_send_emails", send_then_edit)
        assert delivery.drain_emails() == 6

    assert batches == [2, 2, 2]
    subjects = [m.subject.split()[0] for m in mailoutbox]
    # The second batch came within the re-read time of the first: the template as read then.
    assert subjects == ["Hello"] * 4 + ["Goodbye"] * 2
