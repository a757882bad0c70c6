import pytest
from django.core.exceptions import ValidationError

from messaging import outbox, rendering
from messaging.backends.sms import locmem
from messaging.delivery import deliver
from messaging.models import Category, Channel, EmailTemplateVariant, SmsContentVariant, Status
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    template = factories.email_template(subject="Hello {{ customer.first_name }}", html_body="<p>Welcome</p>")
    for language, subject, body in [
        ("it", "Ciao {{ customer.first_name }}", "<p>Benvenuta</p>"),
        ("pt", "Olá {{ customer.first_name }}", "<p>Bem-vinda</p>"),
    ]:
        EmailTemplateVariant.objects.create(template=template, language=language, subject=subject, html_body=body)
    return template


def delivered_email(template, language, mailoutbox):
    customer = factories.customer(first_name="Zoe", language=language)
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.EMAIL,
        content=template,
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key=f"variant:{language}",
    )
    assert deliver(message.pk) == Status.SENT
    [email] = mailoutbox
    return email


def test_a_customer_speaking_italian_receives_the_italian_variant(template, mailoutbox):
    email = delivered_email(template, "it", mailoutbox)
    assert (email.subject, email.alternatives[0].content, email.body) == ("Ciao Zoe", "<p>Benvenuta</p>", "Benvenuta")


def test_brazilian_portuguese_falls_back_to_portuguese(template, mailoutbox):
    email = delivered_email(template, "pt-BR", mailoutbox)
    assert email.subject == "Olá Zoe"


def test_an_exact_regional_variant_wins_over_its_base_language(template, mailoutbox):
    EmailTemplateVariant.objects.create(
        template=template, language="pt-br", subject="Oi {{ customer.first_name }}", html_body="<p>Bem-vinda!</p>"
    )
    email = delivered_email(template, "pt-BR", mailoutbox)
    assert email.subject == "Oi Zoe"


def test_a_language_without_a_variant_gets_the_default_template(template, mailoutbox):
    email = delivered_email(template, "de", mailoutbox)
    assert (email.subject, email.body) == ("Hello Zoe", "Welcome")


def test_a_customer_without_a_language_gets_the_default_template(template, mailoutbox):
    email = delivered_email(template, "", mailoutbox)
    assert email.subject == "Hello Zoe"


def test_a_variant_with_its_own_text_body_sends_it(template, mailoutbox):
    EmailTemplateVariant.objects.filter(language="it").update(text_body="Ciao {{ customer.first_name }}, testo.")
    email = delivered_email(template, "it", mailoutbox)
    assert email.body == "Ciao Zoe, testo."


def test_an_sms_is_sent_in_the_customers_language(settings):
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    locmem.outbox.clear()
    content = factories.sms_content(text="Hi {{ customer.first_name }}")
    SmsContentVariant.objects.create(content=content, language="it", text="Ciao {{ customer.first_name }}")
    customer = factories.customer(first_name="Zoe", phone="+393471234567", country="IT", language="it-IT")
    message = outbox.enqueue(
        customer=customer,
        channel=Channel.SMS,
        content=content,
        category=Category.TRANSACTIONAL,
        source="test",
        dedupe_key="variant:sms",
    )
    assert deliver(message.pk) == Status.SENT
    assert [sms.body for sms in locmem.outbox] == ["Ciao Zoe"]


def test_prefetched_variants_cost_no_query(template, django_assert_num_queries):
    [prefetched] = type(template).objects.filter(pk=template.pk).prefetch_related("variants")
    values = {"customer": {"first_name": "Zoe", "language": "it"}}
    with django_assert_num_queries(0):
        assert rendering.render_email(prefetched, values)[0] == "Ciao Zoe"


def test_a_variant_language_is_stored_in_one_spelling():
    variant = SmsContentVariant(content=factories.sms_content(), language="pt_BR", text="Oi")
    variant.full_clean()
    assert variant.language == "pt-br"


def test_a_variant_language_that_is_no_language_code_is_refused():
    variant = SmsContentVariant(content=factories.sms_content(), language="Portuguese", text="Oi")
    with pytest.raises(ValidationError) as error:
        variant.full_clean()
    assert error.value.message_dict["language"] == ["'portuguese' is not a language code such as it or pt-br."]


def test_a_second_variant_in_the_same_language_is_refused():
    content = factories.sms_content()
    SmsContentVariant.objects.create(content=content, language="it", text="Ciao")
    with pytest.raises(ValidationError):
        SmsContentVariant(content=content, language="IT", text="Ciao ancora").full_clean()
