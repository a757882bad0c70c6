import pytest

from customers import segments
from customers.models import Segment
from tests import factories

pytestmark = pytest.mark.django_db


def a_segment():
    return Segment.objects.create(name="VIP", slug="vip")


def test_add_puts_customers_in_the_segment_and_counts_them():
    segment, ann, bob = a_segment(), factories.customer(), factories.customer()

    assert segments.add(segment, [ann, bob]) == 2
    assert set(segment.customers.all()) == {ann, bob}


def test_adding_the_same_customers_twice_adds_nobody_new():
    segment, ann, bob = a_segment(), factories.customer(), factories.customer()
    segments.add(segment, [ann, bob])

    assert segments.add(segment, [ann, bob]) == 0
    assert segment.customers.count() == 2


def test_add_counts_only_the_customers_not_already_in():
    segment, ann, bob = a_segment(), factories.customer(), factories.customer()
    segments.add(segment, [ann])

    assert segments.add(segment, [ann, bob]) == 1
    assert set(segment.customers.all()) == {ann, bob}


def test_add_accepts_ids_as_well_as_customers():
    segment, ann = a_segment(), factories.customer()

    assert segments.add(segment, [ann.pk, ann]) == 1
    assert list(segment.customers.all()) == [ann]


def test_remove_takes_customers_out_and_counts_those_that_were_in():
    segment, ann, bob, carl = a_segment(), factories.customer(), factories.customer(), factories.customer()
    segments.add(segment, [ann, bob])

    assert segments.remove(segment, [ann, carl]) == 1
    assert list(segment.customers.all()) == [bob]


def test_removing_from_one_segment_leaves_the_others():
    vip, newsletter, ann = a_segment(), Segment.objects.create(name="News", slug="news"), factories.customer()
    segments.add(vip, [ann])
    segments.add(newsletter, [ann])

    segments.remove(vip, [ann])

    assert list(ann.segments.all()) == [newsletter]
