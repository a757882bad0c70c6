"""Compliance as properties: over random customers, consent histories, clocks and caps,
no marketing SMS is ever handed to the backend without consent, after a revocation,
outside the send window in any zone the customer may be in, or beyond a cap.

Each example plays a timeline — consent changes, messages written, deliveries tried
(and tried again when the policy defers them) — on a moving clock, through the real
outbox, policy and delivery code; the backend records what it was handed and when.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytz
import time_machine
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers import consent
from customers.models import ConsentAction, ConsentSource, Customer
from messaging import outbox
from messaging.backends.sms.base import BaseSmsBackend, SmsResult
from messaging.delivery import deliver
from messaging.models import Category, Channel, Message, Status
from tests import factories
from tests.transactions import rolled_back

pytestmark = pytest.mark.django_db

#: (SMS handed over, the moment it was handed over), for the example being played.
handed_over: list = []


class RecordingBackend(BaseSmsBackend):
    def send(self, sms):
        handed_over.append((sms, timezone.now()))
        return SmsResult(f"rec-{len(handed_over)}")


PHONES = [
    "+12125550100",  # New York
    "+13105550100",  # Los Angeles
    "+18005550100",  # toll-free: zones from Guam to Newfoundland
    "+61412345678",  # an Australian mobile: eight zones
    "+393471234567",  # Italy
    "+81312345678",  # Tokyo
]
WINDOW = ("08:00", "21:00")


minutes = st.integers(min_value=0, max_value=4 * 24 * 60)


@st.composite
def scenarios(draw):
    return {
        "phone": draw(st.sampled_from(PHONES)),
        "country": draw(st.sampled_from(["", "US", "AU", "IT", "JP"])),
        "timezone": draw(st.sampled_from(["", "", "", "Europe/Rome", "America/Chicago", "Asia/Tokyo"])),
        "start": draw(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31))).replace(
            tzinfo=UTC
        ),
        # Mostly customers who opted in at the start, so that sends happen and caps bind.
        "consent": ([(0, "grant")] if draw(st.integers(0, 3)) else [])
        + draw(st.lists(st.tuples(minutes, st.sampled_from(["grant", "revoke"])), max_size=4)),
        "caps": draw(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 72)), min_size=1, max_size=2)),
        "no_weekends": draw(st.booleans()),
        "messages": draw(st.lists(st.tuples(minutes, st.integers(0, 24 * 60)), min_size=1, max_size=8)),
    }


def play(scenario) -> Customer:
    """Run the scenario's timeline; return its customer."""
    start = scenario["start"]
    with time_machine.travel(start, tick=False) as clock:
        customer = factories.customer(
            phone=scenario["phone"], country=scenario["country"], timezone=scenario["timezone"]
        )
        content = factories.sms_content()
        timeline = [(start + timedelta(minutes=at), 0, "consent", action) for at, action in scenario["consent"]]
        for index, (at, delay) in enumerate(scenario["messages"]):
            written = start + timedelta(minutes=at)
            timeline.append((written, 1, "write", index))
            timeline.append((written + timedelta(minutes=delay), 2, "deliver", index))
        timeline.sort(key=lambda item: (item[0], item[1]))
        written = {}
        retries = 0
        while timeline:
            moment, _, kind, what = timeline.pop(0)
            clock.move_to(moment)
            if kind == "consent":
                change = consent.grant if what == "grant" else consent.revoke
                change(customer, Channel.SMS, ConsentSource.FORM)
            elif kind == "write":
                written[what] = outbox.enqueue(
                    customer=customer,
                    channel=Channel.SMS,
                    content=content,
                    category=Category.MARKETING,
                    source="property",
                    dedupe_key=f"m{what}",
                )
            elif what in written:
                deliver(written[what].pk)
                message = Message.objects.get(pk=written[what].pk)
                # What the sweeper would do: come back when a deferral is due.
                if message.status == Status.DEFERRED and retries < 20:
                    retries += 1
                    timeline.append((max(message.send_after, moment), 2, "deliver", what))
                    timeline.sort(key=lambda item: (item[0], item[1]))
    return customer


def consent_at(customer, moment) -> str | None:
    record = (
        customer.consent_records.filter(channel=Channel.SMS, recorded_at__lte=moment)
        .order_by("-recorded_at", "-pk")
        .first()
    )
    return record.action if record else None


def candidate_zones(customer) -> list[str]:
    zones = customer.time_zones()
    in_country = [zone for zone in zones if zone in pytz.country_timezones.get(customer.country, ())]
    return in_country or zones


@given(scenario=scenarios())
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_marketing_sms_leaves_without_consent_outside_the_window_or_beyond_a_cap(scenario):
    caps = ",".join(f"sms:marketing:{count}/{hours}h" for count, hours in scenario["caps"])
    handed_over.clear()
    with (
        rolled_back(),
        override_settings(
            TRIGGERHUB_SMS_BACKEND=f"{__name__}.RecordingBackend",
            TRIGGERHUB_FREQUENCY_CAPS=caps,
            TRIGGERHUB_SEND_WINDOW="-".join(WINDOW),
            TRIGGERHUB_SEND_WINDOW_NO_WEEKENDS=scenario["no_weekends"],
        ),
    ):
        customer = play(scenario)
        sent_times = sorted(moment for _, moment in handed_over)

        for _sms, moment in handed_over:
            assert consent_at(customer, moment) == ConsentAction.GRANTED, f"sent at {moment} without consent"
            for zone in candidate_zones(customer):
                local = moment.astimezone(ZoneInfo(zone))
                assert WINDOW[0] <= f"{local:%H:%M}" < WINDOW[1], f"sent at {local} in {zone}"
                if scenario["no_weekends"]:
                    assert local.weekday() < 5, f"sent on a weekend in {zone}"
            for count, hours in scenario["caps"]:
                window_start = moment - timedelta(hours=hours)
                in_window = [other for other in sent_times if window_start < other <= moment]
                assert len(in_window) <= count, f"{len(in_window)} sent within {hours}h (cap {count})"

        # Nothing is lost silently either: every message is sent, waiting, or refused with a reason.
        for message in Message.objects.filter(customer=customer):
            assert message.status in (Status.SENT, Status.DEFERRED, Status.QUEUED, Status.SCHEDULED, Status.BLOCKED)
            if message.status in (Status.DEFERRED, Status.BLOCKED):
                assert message.reason
