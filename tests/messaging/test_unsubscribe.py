"""Unsubscribe links: in the message, signed, confirmed on a page, one-click for mail clients."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from customers import consent
from customers.models import ConsentAction, ConsentRecord, ConsentSource
from messaging import outbox, rendering
from messaging.delivery import deliver
from messaging.models import Category, Channel, Reason, Status
from tests import factories

pytestmark = pytest.mark.django_db

FOOTER = '<p>Hi {{ customer.first_name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ site.name }}</p>'


@pytest.fixture(autouse=True)
def site(settings):
    settings.TRIGGERHUB_SITE_NAME = "Acme Shop"
    settings.TRIGGERHUB_PUBLIC_BASE_URL = "https://mail.acme.example/"


@pytest.fixture
def subscriber():
    customer = factories.customer(first_name="Zoe", email="zoe@example.com")
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    return customer


def marketing_email(customer, key="promo:1", category=Category.MARKETING, context=None):
    template = factories.email_template(slug=key.replace(":", "-"), html_body=FOOTER)
    return outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        content=template,
        category=category,
        source="test",
        dedupe_key=key,
        context=context,
    )


def link_in(email) -> str:
    """The unsubscribe link of a sent e-mail, as the recipient would click it in the HTML part."""
    [url] = re.findall(r'href="([^"]+)"', email.alternatives[0].content)
    return url


@pytest.fixture
def link(subscriber, mailoutbox) -> str:
    assert deliver(marketing_email(subscriber).pk) == Status.SENT
    return urlsplit(link_in(mailoutbox[0])).path


def ledger(customer) -> list[tuple[str, str]]:
    return list(ConsentRecord.objects.filter(customer=customer).order_by("pk").values_list("action", "source"))


def test_a_marketing_email_links_to_the_sites_unsubscribe_page(subscriber, mailoutbox):
    deliver(marketing_email(subscriber).pk)

    url = link_in(mailoutbox[0])
    assert url.startswith("https://mail.acme.example/unsubscribe/")
    assert "Acme Shop" in mailoutbox[0].alternatives[0].content
    assert "Unsubscribe (https://mail.acme.example/unsubscribe/" in mailoutbox[0].body  # the text part too


def test_the_link_carries_a_signed_token_not_the_message_id(subscriber, mailoutbox):
    message = marketing_email(subscriber)
    deliver(message.pk)
    token = urlsplit(link_in(mailoutbox[0])).path.split("/")[2]
    assert token != str(message.pk) and len(token) > 40


def test_opening_the_link_shows_a_confirmation_and_unsubscribes_nobody(client, subscriber, link):
    response = client.get(link)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Unsubscribe from Acme Shop?" in page and "z•••@example.com" in page
    assert "zoe@example.com" not in page
    assert '<form method="post">' in page
    assert subscriber.has_consent(Channel.EMAIL)


def test_opening_the_link_twice_changes_nothing(client, subscriber, link):
    before = ledger(subscriber)
    client.get(link)
    client.get(link)
    client.head(link)
    assert ledger(subscriber) == before
    assert subscriber.has_consent(Channel.EMAIL)


def test_confirming_revokes_email_consent_with_source_unsubscribe(subscriber, link):
    message_id = subscriber.messages.get().pk
    browser = Client(enforce_csrf_checks=True)  # the page's form carries no CSRF token; the link is the proof

    response = browser.post(link, REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Firefox")

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    record = ConsentRecord.objects.filter(customer=subscriber).latest("pk")
    assert (record.channel, record.action, record.source) == (
        Channel.EMAIL,
        ConsentAction.REVOKED,
        ConsentSource.UNSUBSCRIBE,
    )
    assert f"message {message_id}" in record.evidence
    assert (record.ip_address, record.user_agent) == ("203.0.113.7", "Firefox")


def test_after_unsubscribing_marketing_email_is_blocked_as_opted_out(client, subscriber, link, mailoutbox):
    waiting = marketing_email(subscriber, key="promo:2")  # written before the click
    client.post(link)

    assert deliver(waiting.pk) == Status.BLOCKED
    waiting.refresh_from_db()
    assert waiting.reason == Reason.OPTED_OUT
    later = marketing_email(subscriber, key="promo:3")
    assert (later.status, later.reason) == (Status.BLOCKED, Reason.OPTED_OUT)
    assert len(mailoutbox) == 1


def test_a_mail_clients_one_click_unsubscribe_works_without_a_csrf_token(subscriber, link):
    mail_provider = Client(enforce_csrf_checks=True)

    response = mail_provider.post(link, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert subscriber.consent_state(Channel.EMAIL) == ConsentAction.REVOKED
    assert "one-click" in ConsentRecord.objects.filter(customer=subscriber).latest("pk").evidence


def test_unsubscribing_twice_records_one_revocation(client, subscriber, link):
    client.post(link)
    response = client.post(link)

    assert "You are unsubscribed" in response.content.decode()
    assert ledger(subscriber) == [
        (ConsentAction.GRANTED, ConsentSource.FORM),
        (ConsentAction.REVOKED, ConsentSource.UNSUBSCRIBE),
    ]


def test_opening_the_link_after_unsubscribing_says_so_without_a_button(client, subscriber, link):
    client.post(link)
    page = client.get(link).content.decode()
    assert "You are unsubscribed" in page and "<form" not in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_link_is_refused_with_400_and_changes_nothing(client, subscriber, link, method):
    before = ledger(subscriber)
    token = link.split("/")[2]
    tampered = f"/unsubscribe/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}/"

    response = getattr(client, method)(tampered)

    assert response.status_code == 400
    assert "invalid or damaged" in response.content.decode()
    assert ledger(subscriber) == before


@pytest.mark.parametrize(
    "token",
    [
        "1",  # a guessed message id
        "WzEsMSwiZW1haWwiXQ",  # a payload without a signature
        signing.Signer(salt="another.purpose").sign_object([1, 1, "email"]),  # our key, another salt
    ],
)
def test_a_link_we_did_not_sign_is_refused(client, subscriber, token):
    response = client.post(
        f"/unsubscribe/{token}/", "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert subscriber.has_consent(Channel.EMAIL)


def test_the_page_never_redirects_to_an_address_it_is_given(client, link):
    response = client.post(f"{link}?next=https://evil.example/", {"next": "https://evil.example/"})
    assert response.status_code == 200


def test_a_marketing_email_has_the_one_click_list_unsubscribe_headers(subscriber, mailoutbox):
    deliver(marketing_email(subscriber).pk)

    headers = mailoutbox[0].extra_headers
    assert headers["List-Unsubscribe"] == f"<{link_in(mailoutbox[0])}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    message = mailoutbox[0].message()
    assert message["List-Unsubscribe"].startswith("<https://mail.acme.example/unsubscribe/")


def test_a_transactional_email_has_the_link_but_no_list_unsubscribe_header(subscriber, mailoutbox):
    deliver(marketing_email(subscriber, category=Category.TRANSACTIONAL).pk)
    assert link_in(mailoutbox[0]).startswith("https://mail.acme.example/unsubscribe/")
    assert "List-Unsubscribe" not in mailoutbox[0].extra_headers


def test_a_message_value_cannot_replace_the_unsubscribe_link_or_the_site(subscriber, mailoutbox):
    context = {"unsubscribe_url": "https://evil.example/", "site": {"name": "Evil"}}
    deliver(marketing_email(subscriber, context=context).pk)
    html = mailoutbox[0].alternatives[0].content
    assert "evil.example" not in html and "Evil" not in html


def test_an_sms_link_unsubscribes_from_sms(client, settings):
    from messaging.backends.sms import locmem

    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    customer = factories.customer(phone="+12125550100")
    consent.grant(customer, Channel.SMS, ConsentSource.KEYWORD)
    consent.grant(customer, Channel.EMAIL, ConsentSource.FORM)
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        category=Category.TRANSACTIONAL,
        source="test",
        content=factories.sms_content(text="Your order shipped. Stop offers: {{ unsubscribe_url }}"),
        dedupe_key="sms:1",
    )
    deliver(message.pk)
    [url] = re.findall(r"https://\S+", locmem.outbox[0].body)

    assert "•••0100" in client.get(urlsplit(url).path).content.decode()
    client.post(urlsplit(url).path)
    assert customer.consent_state(Channel.SMS) == ConsentAction.REVOKED
    assert customer.has_consent(Channel.EMAIL)


def test_the_link_of_a_deleted_customer_says_nothing_more_will_be_sent(client, mailoutbox):
    customer = factories.customer()  # no consent records, which would protect the customer from deletion
    deliver(marketing_email(customer, category=Category.TRANSACTIONAL).pk)
    customer.delete()

    response = client.post(urlsplit(link_in(mailoutbox[0])).path)

    assert response.status_code == 200
    assert "no longer on Acme Shop's lists" in response.content.decode()


def test_without_a_public_base_url_links_point_at_localhost_in_development(settings):
    settings.TRIGGERHUB_PUBLIC_BASE_URL = ""
    assert rendering.site_context() == {"name": "Acme Shop", "url": "http://localhost:8000"}


def test_without_a_public_base_url_production_links_use_the_first_allowed_host(settings):
    settings.TRIGGERHUB_PUBLIC_BASE_URL = ""
    settings.TRIGGERHUB_MODE = "production"
    settings.ALLOWED_HOSTS = [".example.com", "shop.example.com"]
    assert rendering.public_base_url() == "https://shop.example.com"

    settings.ALLOWED_HOSTS = ["*"]
    with pytest.raises(ImproperlyConfigured, match="set TRIGGERHUB_PUBLIC_BASE_URL"):
        rendering.public_base_url()
