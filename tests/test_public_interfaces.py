"""The ways in that earlier issues named keep their paths, whatever moves behind them.

Each name is imported from the path the docs give; a module that moves must leave a
re-export there, or this fails naming the path.
"""

import importlib

import pytest
from django.core.management import get_commands
from django.urls import resolve, reverse

PUBLIC_NAMES = [
    ("customers.events", "emit"),
    ("customers.consent", "grant"),
    ("customers.consent", "revoke"),
    ("customers.phones", "normalize"),
    ("customers.phones", "time_zones"),
    ("customers.signals", "customer_registered"),
    ("customers.signals", "order_placed"),
    ("customers.signals", "cart_updated"),
    ("customers.signals", "profile_updated"),
    ("messaging.sms", "segment"),
    ("messaging.policy", "decide"),
    ("messaging.outbox", "enqueue"),
    ("activities.spec", "load"),
    ("activities.spec", "dump"),
    ("activities.files", "parse"),
    ("activities.files", "render"),
    ("activities.files", "import_data"),
    # The SMS backend's dotted path is a setting's value (TRIGGERHUB_SMS_BACKEND).
    ("messaging.backends.sms.twilio", "SmsBackend"),
    ("messaging.backends.sms.console", "SmsBackend"),
    ("messaging.backends.sms.locmem", "SmsBackend"),
]


@pytest.mark.parametrize("module, name", PUBLIC_NAMES, ids=[f"{module}.{name}" for module, name in PUBLIC_NAMES])
def test_a_public_name_is_importable_from_its_documented_path(module, name):
    value = getattr(importlib.import_module(module), name, None)
    assert value is not None, f"{module}.{name} is gone: leave a re-export behind"
    assert callable(value) or hasattr(value, "send"), f"{module}.{name} is not a function, class or signal"


def test_the_twilio_backend_at_its_old_path_is_the_provider_homes_backend():
    from messaging.backends.sms.twilio import SmsBackend
    from messaging.providers.twilio.backend import SmsBackend as at_home

    assert SmsBackend is at_home


@pytest.mark.parametrize(
    "command", ["import_customers", "export_customers", "create_api_key", "import_activity", "export_activity"]
)
def test_the_management_commands_keep_their_names(command):
    assert command in get_commands()


@pytest.mark.parametrize(
    "url, name",
    [
        ("/healthz", "healthz"),
        ("/webhooks/twilio/status/", "twilio-status-webhook"),
        ("/unsubscribe/abc/", "unsubscribe"),
    ],
)
def test_the_public_urls_keep_their_paths_and_names(url, name):
    assert resolve(url).url_name == name
    assert reverse(name, kwargs={"token": "abc"} if name == "unsubscribe" else None) == url


def test_the_events_api_keeps_its_path():
    assert resolve("/api/v1/events").route.startswith("api/v1/")
