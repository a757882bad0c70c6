"""Giving a coupon pool codes by pasting a list or uploading a file on its admin page."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from activities.admin_coupons import add_codes, codes_in
from activities.models import Coupon, CouponPool, Enrollment
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool():
    return CouponPool.objects.create(slug="birthday-10", name="Birthday 10%", percent_off=10)


@pytest.fixture
def marketer_client(client):
    user = User.objects.create_user("marketer", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_couponpool", "change_couponpool"]))
    client.force_login(user)
    return client


def add_codes_url(pool):
    return reverse("admin:activities_couponpool_add_codes", args=[pool.pk])


def codes_of(pool):
    return sorted(pool.coupons.values_list("code", flat=True))


def test_pasted_codes_one_a_line_are_added_to_the_pool(marketer_client, pool):
    response = marketer_client.post(add_codes_url(pool), {"codes": "BDAY-001\nBDAY-002\r\nBDAY-003\n"})

    assert response.status_code == 302
    assert codes_of(pool) == ["BDAY-001", "BDAY-002", "BDAY-003"]


def test_codes_separated_by_commas_semicolons_spaces_and_tabs_are_all_read():
    found, refused, _ = codes_in('A1, A2;A3  A4\tA5,"A6"')

    assert [code for _, code in found] == ["A1", "A2", "A3", "A4", "A5", "A6"]
    assert refused == []


def test_the_report_counts_added_repeated_in_the_list_and_already_stored_in_another_pool(pool):
    other = CouponPool.objects.create(slug="other", name="Other")
    Coupon.objects.create(code="TAKEN", pool=other)

    report = add_codes(pool, "NEW1\nNEW2\nNEW1\nTAKEN")

    assert report.added == 2
    assert (report.repeated_in_list, report.already_stored, report.already_there) == (["NEW1"], ["TAKEN"], 2)
    assert Coupon.objects.get(code="TAKEN").pool == other  # never moved
    assert codes_of(pool) == ["NEW1", "NEW2"]


def test_adding_the_same_list_twice_adds_nothing_the_second_time(pool):
    add_codes(pool, "X1 X2 X3")

    report = add_codes(pool, "X1 X2 X3")

    assert (report.added, len(report.already_stored)) == (0, 3)
    assert pool.coupons.count() == 3


@pytest.mark.parametrize(
    "text, reason",
    [
        ('""', "empty"),
        ("A" * 65, "longer than 64 characters (65)"),
        ("SPRING\u00a010", "a space inside (U+00A0 no-break space)"),
        ("SPRING\x0710", "a control or invisible character inside (U+0007)"),
        ("ZERO\u200bWIDTH", "a control or invisible character inside (U+200B zero width space)"),
        ("LONE\ud800", "a control or invisible character inside (U+D800)"),
        ("BROKEN\ufffd", "a character that could not be read (U+FFFD replacement character)"),
    ],
)
def test_an_invalid_code_is_refused_with_its_line_and_reason(pool, text, reason):
    report = add_codes(pool, f"GOOD-1\n{text}\nGOOD-2")

    [refused] = report.refused
    assert refused.line == 2
    assert refused.reason.startswith(reason)
    assert report.added == 2
    assert codes_of(pool) == ["GOOD-1", "GOOD-2"]


def test_a_lone_surrogate_posted_by_a_client_is_refused_not_stored(marketer_client, pool):
    response = marketer_client.post(
        add_codes_url(pool),
        b"codes=GOOD%0ABAD%ED%A0%80",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert "a character that could not be read (U+FFFD" in str(response.context["report"].refused[0])
    assert codes_of(pool) == ["GOOD"]


def test_a_code_of_exactly_64_characters_is_accepted(pool):
    assert add_codes(pool, "C" * 64).added == 1


def test_the_page_lists_refused_codes_with_their_line_and_the_counts(marketer_client, pool):
    Coupon.objects.create(code="OLD", pool=pool)

    response = marketer_client.post(add_codes_url(pool), {"codes": "NEW\nOLD\nNEW\nBAD\u00a0CODE"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "line 4: 'BAD\\xa0CODE' — a space inside (U+00A0 no-break space)" in page.replace("&#x27;", "'")
    report = response.context["report"]
    assert (report.added, report.already_there, len(report.refused)) == (1, 2, 1)
    assert ">Added</th><td>1</td>" in page
    assert "This pool has <strong>2</strong> free" in page


def test_a_utf8_csv_file_with_a_header_and_a_byte_order_mark_is_read(marketer_client, pool):
    upload = SimpleUploadedFile("codes.csv", "\ufeffcode\r\nCSV-1\r\nCSV-2\r\n".encode(), content_type="text/csv")

    response = marketer_client.post(add_codes_url(pool), {"codes": "", "file": upload})

    assert response.status_code == 302
    assert codes_of(pool) == ["CSV-1", "CSV-2"]


def test_a_file_that_is_not_utf8_is_a_form_error_naming_the_byte(marketer_client, pool):
    upload = SimpleUploadedFile("codes.csv", "CAFÉ-1\n".encode("latin-1"), content_type="text/csv")

    response = marketer_client.post(add_codes_url(pool), {"file": upload})

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        'The file is not UTF-8 text (byte 0xC9 at position 3); save it as "CSV UTF-8" or plain text and upload it again.'
    ]
    assert not Coupon.objects.exists()


@pytest.mark.parametrize("codes", ["", "  \n , ;\n"])
def test_nothing_pasted_and_no_file_is_a_form_error(marketer_client, pool, codes):
    response = marketer_client.post(add_codes_url(pool), {"codes": codes})

    assert response.context["form"].non_field_errors() == ["Paste some codes or choose a file."]


def test_a_thousand_codes_go_in_with_a_few_queries_not_one_per_code(pool):
    text = "\n".join(f"BULK-{n:05d}" for n in range(1000))

    with CaptureQueriesContext(connection) as queries:
        report = add_codes(pool, text)

    assert report.added == 1000
    assert len(queries) <= 20  # look-ups, inserts and the check, 500 codes a query (and savepoints)


def test_the_pool_list_and_page_show_free_and_issued_codes(marketer_client, pool):
    activity = factories.welcome_activity()
    customer = factories.customer()
    enrollment = Enrollment.objects.create(
        activity=activity,
        version=activity.current_version(),
        customer=customer,
        occurrence_key="x",
    )
    Coupon.objects.create(code="FREE-1", pool=pool)
    Coupon.objects.create(code="FREE-2", pool=pool)
    Coupon.objects.create(code="ISSUED-1", pool=pool, enrollment=enrollment, customer=customer)

    listing = marketer_client.get(reverse("admin:activities_couponpool_changelist")).content.decode()
    assert '<td class="field-free_codes">2</td><td class="field-issued_codes">1</td>' in listing
    page = marketer_client.get(reverse("admin:activities_couponpool_change", args=[pool.pk])).content.decode()
    assert "Free codes" in page and "Issued codes" in page


def test_without_the_pools_change_permission_adding_codes_is_403(client, pool):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_couponpool"))
    client.force_login(user)

    assert client.post(add_codes_url(pool), {"codes": "SNEAKY"}).status_code == 403
    assert client.get(add_codes_url(pool)).status_code == 403
    page = client.get(reverse("admin:activities_couponpool_change", args=[pool.pk])).content.decode()
    assert add_codes_url(pool) not in page
    assert not Coupon.objects.exists()


def test_an_unknown_pool_is_404(marketer_client):
    assert marketer_client.get(reverse("admin:activities_couponpool_add_codes", args=[424242])).status_code == 404
