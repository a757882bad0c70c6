"""The send policy: the one place that decides whether a message may go now.

``decide()`` is asked when a message is written and again when it is delivered
(inside the delivery's per-customer lock, so two workers cannot both take the last
slot of a cap). It answers send, defer until a moment, or block with a reason from
``Reason``. The checks, in order:

1. an address, and a valid one; e-mail addresses suppressed by a hard bounce or a
   complaint are blocked;
2. marketing needs the channel's consent, read from the ledger at the moment of the
   decision, so a revocation stops what is still waiting;
3. region exclusion (per activity): a customer who may be in an excluded region is
   skipped;
4. frequency caps (site defaults, per-activity override) over rolling windows,
   counting what was handed to a provider;
5. the send window (quiet hours) for marketing SMS in every zone the customer may be
   in;
6. SMS credits, when the site enforces them.

A message deferred by a cap or the send window past its ``expires_at`` is blocked
instead: a birthday greeting a week late is worse than none.

Per-activity overrides travel with the message as ``Message.rules`` (the messaging
app knows nothing of activities); ``SendRules.problems_in()`` lists their problems for the
activity editor and activity files.
"""

import functools
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytz
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import models

from customers import phones
from customers.models import ConsentAction

from . import credits, suppressions
from .models import Category, Channel, Message, Reason


class Action(models.TextChoices):
    SEND = "send", "Send"
    DEFER = "defer", "Defer"
    BLOCK = "block", "Block"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason | str = ""
    until: datetime | None = None
    detail: str = ""

    @classmethod
    def send(cls):
        return cls(Action.SEND)

    @classmethod
    def block(cls, reason, detail=""):
        return cls(Action.BLOCK, reason, detail=detail)

    @classmethod
    def defer(cls, until, reason, detail=""):
        return cls(Action.DEFER, reason, until, detail)


# --- rules -----------------------------------------------------------------------------

_CAP = re.compile(r"^(?P<channel>\w+):(?P<category>\w+):(?P<count>\d+)/(?P<amount>\d+)(?P<unit>[dh])$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``count`` messages of ``channel``/``category`` to a customer per ``window``."""

    channel: str
    category: str
    count: int
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> "FrequencyCap":
        """``sms:marketing:3/7d`` → 3 marketing SMS per 7 days (``h`` for hours)."""
        match = _CAP.match(text.strip())
        if not match or match["channel"] not in Channel.values or match["category"] not in Category.values:
            raise ValueError(
                f"{text!r} is not a frequency cap: write channel:category:count/window, "
                "e.g. sms:marketing:3/7d or email:marketing:1/12h"
            )
        amount = int(match["amount"])
        window = timedelta(days=amount) if match["unit"] == "d" else timedelta(hours=amount)
        return cls(match["channel"], match["category"], int(match["count"]), window)

    @classmethod
    def from_rule(cls, rule: dict) -> "FrequencyCap":
        window = timedelta(days=rule.get("days", 0), hours=rule.get("hours", 0))
        return cls(rule["channel"], rule["category"], int(rule["count"]), window)


@dataclass(frozen=True)
class SendRules:
    """The rules a message is decided by: the site's, with the activity's overrides."""

    window_start: time = time(8, 0)
    window_end: time = time(21, 0)
    no_weekends: bool = False
    spread: timedelta = timedelta(minutes=30)
    caps: tuple[FrequencyCap, ...] = ()
    excluded_regions: tuple[str, ...] = field(default=())

    @classmethod
    def site(cls) -> "SendRules":
        """The site's own rules, from the TRIGGERHUB_SEND_WINDOW* and FREQUENCY_CAPS settings."""
        return _site_rules(
            settings.TRIGGERHUB_SEND_WINDOW,
            settings.TRIGGERHUB_FREQUENCY_CAPS,
            settings.TRIGGERHUB_SEND_WINDOW_NO_WEEKENDS,
            settings.TRIGGERHUB_SEND_WINDOW_SPREAD_MINUTES,
        )

    def with_overrides(self, overrides: dict | None) -> "SendRules":
        """These rules with an activity's ``overrides`` (the shape ``problems_in()`` accepts)."""
        if not overrides:
            return self
        changed: dict[str, Any] = {}  # SendRules fields, each of its own type
        if "send_window" in overrides:
            window = overrides["send_window"]
            if "start" in window:
                changed["window_start"] = _parse_clock(window["start"])
            if "end" in window:
                changed["window_end"] = _parse_clock(window["end"])
            if "no_weekends" in window:
                changed["no_weekends"] = bool(window["no_weekends"])
        if "caps" in overrides:
            changed["caps"] = tuple(FrequencyCap.from_rule(rule) for rule in overrides["caps"])
        if "excluded_regions" in overrides:
            changed["excluded_regions"] = tuple(overrides["excluded_regions"])
        return replace(self, **changed)

    @staticmethod
    def problems_in(overrides) -> list[str]:
        """Every problem with an activity's overrides, in words a marketer can act on.

        The shape: ``{"send_window": {"start": "09:00", "end": "20:00", "no_weekends": true},
        "caps": [{"channel": "sms", "category": "marketing", "count": 1, "days": 7}],
        "excluded_regions": ["Asia", "Australia", "America/Sao_Paulo", "JP"]}``.
        """
        if not isinstance(overrides, dict):
            return ["send rules must be an object with send_window, caps or excluded_regions"]
        errors = [
            f"unknown send rule {key!r}: use send_window, caps or excluded_regions"
            for key in overrides
            if key not in ("send_window", "caps", "excluded_regions")
        ]
        window = overrides.get("send_window", {})
        if not isinstance(window, dict):
            errors.append("send_window must be an object with start, end and no_weekends")
            window = {}
        for key in ("start", "end"):
            if key in window and not (isinstance(window[key], str) and _CLOCK.match(window[key])):
                errors.append(f"send_window.{key} must be a time such as 08:00, not {window[key]!r}")
        if "start" in window and "end" in window and not errors and window["start"] >= window["end"]:
            errors.append("send_window.start must be before send_window.end")
        for index, rule in enumerate(overrides.get("caps", [])):
            where = f"caps[{index}]"
            if not isinstance(rule, dict):
                errors.append(f"{where} must be an object")
                continue
            if rule.get("channel") not in Channel.values:
                errors.append(f"{where}.channel must be one of {', '.join(Channel.values)}")
            if rule.get("category") not in Category.values:
                errors.append(f"{where}.category must be one of {', '.join(Category.values)}")
            if not isinstance(rule.get("count"), int) or rule["count"] < 0:
                errors.append(f"{where}.count must be a whole number, 0 or more")
            spans = [rule.get(unit) for unit in ("days", "hours") if unit in rule]
            if not spans or not all(isinstance(span, (int, float)) and span > 0 for span in spans):
                errors.append(f"{where} needs a window: days or hours greater than 0")
        for region in overrides.get("excluded_regions", []):
            if not (isinstance(region, str) and _is_region(region)):
                errors.append(
                    f"excluded region {region!r} is not a zone area (Asia), a zone (Asia/Tokyo) or a country code (JP)"
                )
        return errors

    #: Its name before "problems" became the one word for listing problems (kept for callers).
    errors_in = problems_in


def _parse_clock(text: str) -> time:
    if not _CLOCK.match(text or ""):
        raise ValueError(f"{text!r} is not a time such as 08:00")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _parse_window(text: str) -> tuple[time, time]:
    try:
        start_text, end_text = text.split("-")
        start, end = _parse_clock(start_text.strip()), _parse_clock(end_text.strip())
    except ValueError:
        raise ImproperlyConfigured(f"TRIGGERHUB_SEND_WINDOW must look like 08:00-21:00, not {text!r}") from None
    if start >= end:
        raise ImproperlyConfigured("TRIGGERHUB_SEND_WINDOW must start before it ends, e.g. 08:00-21:00")
    return start, end


_AREAS = {zone.split("/")[0] for zone in pytz.all_timezones if "/" in zone}


def _is_region(region: str) -> bool:
    return region in _AREAS or region in pytz.all_timezones_set or region in pytz.country_timezones


# --- the decision ----------------------------------------------------------------------


def address_of(customer, channel) -> str:
    return customer.email if channel == Channel.EMAIL else customer.phone


@functools.lru_cache(maxsize=16)
def _site_rules(send_window: str, frequency_caps: str, no_weekends: bool, spread_minutes: int) -> SendRules:
    """The site's rules, parsed once per value of the settings (every decision reads them)."""
    start, end = _parse_window(send_window)
    try:
        caps = tuple(FrequencyCap.parse(text) for text in frequency_caps.split(",") if text.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRIGGERHUB_FREQUENCY_CAPS: {exc}") from None
    return SendRules(
        window_start=start,
        window_end=end,
        no_weekends=no_weekends,
        spread=timedelta(minutes=spread_minutes),
        caps=caps,
    )


def decide(
    customer,
    channel,
    category,
    at: datetime,
    *,
    rules: dict | None = None,
    expires_at: datetime | None = None,
    parts: int | None = None,
    message_id: int | None = None,
    suppressed: set[str] | None = None,
) -> Decision:
    """May ``customer`` get a ``category`` message on ``channel`` at ``at``?

    ``rules`` are the activity's overrides; ``parts`` the SMS parts to pay for (one
    when not yet rendered); ``message_id`` the message being decided, which its own
    caps do not count. ``suppressed``, when given, holds the suppressed addresses
    (normalised) among a batch's recipients, read once instead of once per message.
    """
    address = address_of(customer, channel)
    if not address:
        return Decision.block(Reason.NO_ADDRESS)
    if channel == Channel.EMAIL:
        try:
            validate_email(address)
        except ValidationError:
            return Decision.block(Reason.INVALID_ADDRESS)
        if (
            suppressions.is_suppressed(channel, address)
            if suppressed is None
            else suppressions.normalize_address(channel, address) in suppressed
        ):
            return Decision.block(Reason.SUPPRESSED)
    if category == Category.MARKETING:
        state = customer.consent_state(channel)
        if state == ConsentAction.REVOKED:
            return Decision.block(Reason.OPTED_OUT)
        if state != ConsentAction.GRANTED:
            return Decision.block(Reason.NO_CONSENT)
    send_rules = SendRules.site().with_overrides(rules)
    marketing_sms = channel == Channel.SMS and category == Category.MARKETING
    # Only regions and the send window read the zones (a phone number's cost a parse).
    zones = customer.time_zones() if send_rules.excluded_regions or marketing_sms else []
    excluded = excluded_region(customer, zones, send_rules.excluded_regions)
    if excluded:
        return Decision.block(Reason.REGION_EXCLUDED, f"may be in {excluded}")

    moment, reason, detail = at, "", ""
    cap_frees_at, cap = when_caps_allow(customer, channel, category, at, send_rules.caps, message_id)
    if cap_frees_at > moment:
        moment, reason = cap_frees_at, Reason.FREQUENCY_CAP
        detail = f"at most {cap.count} per {_words(cap.window)}"
    if marketing_sms:
        window = SendWindow(
            send_rules,
            zones,
            at=moment,
            spread_key=customer.pk,
            country=customer.country,
            number_country=phones.country_of(customer.phone),
        )
        if window.is_empty:
            return Decision.block(Reason.NO_SEND_WINDOW, window.describe())
        opens_at = window.next_open(moment)
        if opens_at > moment:
            moment, reason, detail = opens_at, reason or Reason.QUIET_HOURS, detail or window.describe()
    if moment > at:
        if expires_at is not None and moment > expires_at:
            return Decision.block(reason, f"{detail}; it would wait past its expiry")
        return Decision.defer(moment, reason, detail)

    if channel == Channel.SMS and settings.TRIGGERHUB_SMS_CREDITS_ENFORCED:
        shortfall = credits.shortfall(customer.phone, parts or 1)
        if shortfall:
            return Decision.defer(at, Reason.NO_CREDITS, shortfall)
    return Decision.send()


def excluded_region(customer, zones, regions) -> str:
    """The first of ``regions`` the customer may be in ('' if none).

    Any candidate zone counts: a number that may ring in an excluded region is skipped.
    """
    for region in regions:
        if region == customer.country:
            return region
        for zone in zones:
            if zone == region or zone.split("/")[0] == region or zone in pytz.country_timezones.get(region, ()):
                return region
    return ""


def capped(channel, category, rules: dict | None = None) -> bool:
    """Does a frequency cap count messages of ``channel`` and ``category`` (the site's, or ``rules``')?"""
    return any(
        cap.channel == channel and cap.category == category for cap in SendRules.site().with_overrides(rules).caps
    )


def when_caps_allow(customer, channel, category, at, caps, message_id=None):
    """The first moment from ``at`` when every cap has room, and the cap that waited longest.

    A cap counts the customer's messages of its channel and category handed to a
    provider (``sent_at`` set) within its rolling window.
    """
    frees_at, binding = at, None
    for cap in caps:
        if cap.channel != channel or cap.category != category:
            continue
        if cap.count == 0:
            return datetime.max.replace(tzinfo=UTC), cap
        recent = (
            Message.objects.filter(customer=customer, channel=channel, category=category, sent_at__gt=at - cap.window)
            .exclude(pk=message_id)
            .order_by("-sent_at")
            .values_list("sent_at", flat=True)
        )
        times = list(recent[: cap.count])
        if len(times) >= cap.count:
            # The window has room again when the oldest of the last `count` sends leaves it.
            frees = times[cap.count - 1] + cap.window
            if frees > frees_at:
                frees_at, binding = frees, cap
    return frees_at, binding


def _words(span: timedelta) -> str:
    if span % timedelta(days=1) == timedelta(0):
        days = span // timedelta(days=1)
        return "day" if days == 1 else f"{days} days"
    hours = span // timedelta(hours=1)
    return "hour" if hours == 1 else f"{hours} hours"


class SendWindow:
    """When marketing SMS may reach a customer: the window must hold in every candidate zone.

    A number's zones are narrowed to the customer's own country when it is known (a
    toll-free +1 number maps to zones from Guam to Newfoundland; a customer in the US
    is in one of its US zones). Where the candidates still admit no common window,
    they are narrowed to the number's country; if there is still none, the window is
    empty and the policy blocks rather than guess.
    """

    #: How far ahead a common window is looked for: a week covers weekends and DST changes.
    HORIZON_DAYS = 8

    def __init__(self, rules: SendRules, zones, *, at: datetime, country="", number_country="", spread_key=""):
        self.rules = rules
        self.zones = list(zones)
        self.spread_key = str(spread_key)
        self.zones = self._in_country(self.zones, country)
        if not self._intervals(self.zones, at):
            self.zones = self._in_country(self.zones, number_country)
        self.is_empty = not self._intervals(self.zones, at)

    @staticmethod
    def _in_country(zones, country):
        in_country = [zone for zone in zones if zone in pytz.country_timezones.get(country, ())]
        return in_country or zones

    def _intervals(self, zones, start: datetime) -> list[tuple[datetime, datetime]]:
        """UTC intervals from the day before ``start`` on, when the window is open in every zone."""
        common = None
        for zone in zones:
            intervals = self._zone_intervals(ZoneInfo(zone), start)
            common = intervals if common is None else _intersect(common, intervals)
            if not common:
                return []
        return common or []

    def _zone_intervals(self, tz, start):
        first = start.astimezone(tz).date() - timedelta(days=1)
        intervals = []
        for offset in range(self.HORIZON_DAYS + 1):
            day = first + timedelta(days=offset)
            if self.rules.no_weekends and day.weekday() >= 5:
                continue
            opens = _local(day, self.rules.window_start, tz)
            closes = _local(day, self.rules.window_end, tz)
            intervals.append((opens, closes))
        return intervals

    def next_open(self, at: datetime) -> datetime:
        """``at`` when the window is open then; else when it next opens, plus this customer's spread."""
        for opens, closes in self._intervals(self.zones, at):
            if closes <= at:
                continue
            if opens <= at:
                return at
            return opens + self._spread(closes - opens)
        raise AssertionError("a non-empty window opens within the horizon")  # is_empty was checked

    def _spread(self, length: timedelta) -> timedelta:
        """A stable offset into the window, from a hash of the customer.

        Messages released when a window opens are spread over its first minutes instead
        of hitting the gateway at once; deciding again gives the same moment.
        """
        spread = min(self.rules.spread, length / 2)
        if spread <= timedelta(0):
            return timedelta(0)
        seconds = int(spread.total_seconds())
        digest = hashlib.blake2b(self.spread_key.encode(), digest_size=4).digest()
        return timedelta(seconds=int.from_bytes(digest, "big") % seconds)

    def describe(self) -> str:
        start, end = self.rules.window_start, self.rules.window_end
        days = " on weekdays" if self.rules.no_weekends else ""
        if self.is_empty:
            return f"no moment is {start:%H:%M}-{end:%H:%M}{days} in all of {', '.join(self.zones)}"
        zones = self.zones[0] if len(self.zones) == 1 else f"{len(self.zones)} zones"
        return f"outside {start:%H:%M}-{end:%H:%M}{days} in {zones}"


def _local(day: date, clock: time, tz) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _intersect(left, right):
    """Intersection of two sorted lists of disjoint (start, end) intervals."""
    result, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            result.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return result
