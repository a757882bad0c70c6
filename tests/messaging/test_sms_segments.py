"""SMS segment counting, as carriers count and bill it."""

import json
from datetime import datetime
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import regex
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from messaging import credits, outbox
from messaging.admin import segment_report
from messaging.delivery import deliver
from messaging.models import Category, Channel, SmsRate, Status
from messaging.sms import (
    GSM7_EXTENSION,
    PART_LIMIT,
    SINGLE_LIMIT,
    LongSmsPolicy,
    apply_long_policy,
    segment,
    truncate,
    unit_cost,
)
from tests import factories

# Twilio's own segment calculator on varied texts; the file's "about" says how they were made.
VECTORS = json.loads((Path(__file__).parent / "segment_vectors.json").read_text(encoding="utf-8"))

FAMILY, FLAG, RAINBOW, THUMBS_UP_MEDIUM, KEYCAP_ONE = "👨‍👩‍👧", "🇮🇹", "🏳️‍🌈", "👍🏽", "1️⃣"


def test_160_plain_characters_are_one_gsm7_sms():
    result = segment("a" * 160)
    assert (result.encoding, result.units, result.segments) == ("GSM-7", 160, 1)


def test_161_plain_characters_are_two_parts_of_153_and_8():
    result = segment("a" * 161)
    assert [len(part) for part in result.parts] == [153, 8]


def test_euro_signs_count_two_septets_each():
    result = segment("€" * 80)
    assert (result.encoding, result.units, result.segments) == ("GSM-7", 160, 1)


def test_an_escape_pair_is_never_split_across_parts():
    result = segment("€" * 81)
    assert result.segments == 2
    assert [len(part) for part in result.parts] == [76, 5]  # 152 septets: a 77th € would need 154
    assert "".join(result.parts) == "€" * 81


def test_an_emoji_forces_ucs2_counts_two_units_and_stays_whole():
    result = segment("a" * 70 + "😀")
    assert (result.encoding, result.units, result.segments) == ("UCS-2", 72, 2)
    assert result.parts[1].endswith("😀") and "😀" not in result.parts[0]


def test_accented_letters_of_the_basic_table_stay_gsm7():
    for letter in "èéñüà":
        result = segment(letter * 160)
        assert (result.encoding, result.segments) == ("GSM-7", 1), letter


def test_a_curly_apostrophe_forces_ucs2_and_is_named():
    result = segment("It’s here")
    assert result.encoding == "UCS-2"
    assert result.non_gsm_characters == ("’",)


def test_truncate_keeps_160_gsm_characters_before_a_late_emoji():
    assert truncate("a" * 200 + "😀") == "a" * 160


def test_truncate_cuts_to_one_sms_without_splitting_an_emoji():
    text = "a" * 69 + "😀"
    assert truncate(text) == "a" * 69
    assert truncate("short") == "short"


texts = st.text(alphabet=st.sampled_from("aé€[ ’😀\n"), max_size=400)


@given(texts)
def test_parts_rebuild_the_text_and_each_fits_its_limit(text):
    result = segment(text)
    assert "".join(result.parts) == text
    limit = SINGLE_LIMIT[result.encoding] if result.segments <= 1 else PART_LIMIT[result.encoding]
    for part in result.parts:
        assert sum(unit_cost(c, result.encoding) for c in part) <= limit
    assert result.units == sum(unit_cost(c, result.encoding) for c in text)
    assert (result.encoding == "GSM-7") == (not result.non_gsm_characters)


def test_extension_characters_are_the_gsm_0338_ones():
    assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\f")


def units(text, encoding="UCS-2"):
    return sum(unit_cost(c, encoding) for c in text)


def across_the_end_of_part_one(cluster):
    """A UCS-2 text of exactly two full parts if ``cluster`` were cut at unit 67; three if kept whole."""
    before = 67 - units(cluster) // 2
    return "a" * before + cluster + "b" * (134 - before - units(cluster))


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, RAINBOW, THUMBS_UP_MEDIUM, KEYCAP_ONE])
def test_a_grapheme_cluster_across_the_end_of_a_part_opens_the_next_part_whole(cluster):
    text = across_the_end_of_part_one(cluster)
    result = segment(text)
    assert result.segments == 3
    assert cluster not in result.parts[0] and result.parts[1].startswith(cluster)
    assert "".join(result.parts) == text


def test_a_flag_is_never_split_between_its_two_regional_indicators():
    result = segment("a" * 65 + FLAG + "b" * 65)  # 🇮 would be units 66-67, 🇹 units 68-69
    assert result.parts[0] == "a" * 65 and result.parts[1].startswith(FLAG)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["family"])
def test_segments_agree_with_twilios_calculator(vector):
    result = segment(vector["text"])
    assert (result.encoding, result.segments) == (vector["encoding"], vector["segments"])
    assert [len(part) for part in result.parts] == vector["part_lengths"]


@pytest.mark.parametrize("vector", VECTORS["newer_clusters"], ids=lambda v: v["family"])
def test_clusters_newer_than_the_calculator_stay_whole_and_never_count_fewer_parts(vector):
    # The calculator's grapheme tables predate these clusters and cut them; counting fewer
    # parts than it would be the one error that bills more than was debited.
    result = segment(vector["text"])
    assert result.segments >= vector["segments"]
    assert not clusters_cut(vector["text"], part_ends(result), result.encoding)


def test_a_cluster_longer_than_a_whole_part_is_cut_between_characters():
    zalgo = "e" + "\u0301" * 100  # one cluster of 101 code units: it cannot travel whole
    result = segment(zalgo)
    assert [len(part) for part in result.parts] == [67, 34]


def test_truncate_does_not_cut_a_skin_tone_from_its_emoji():
    assert truncate("a" * 67 + THUMBS_UP_MEDIUM + "b") == "a" * 67  # 👍 alone would fit


def test_truncate_does_not_cut_an_accent_from_its_letter():
    # "e" is GSM-7, its combining accent is not: the GSM-7 beginning ends before the "e".
    assert truncate("a" * 100 + "e\u0301" + "a" * 100) == "a" * 100


def test_the_truncate_policy_keeps_a_family_whole():
    text = "a" * 65 + FAMILY + "b" * 10  # 65 + 8 units: the family would end at unit 73
    assert apply_long_policy(text, LongSmsPolicy.TRUNCATE) == "a" * 65


NOON = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.mark.django_db
def test_a_message_with_a_flag_across_a_part_end_is_debited_counted_and_shown_as_billed(settings):
    settings.TRIGGERHUB_SMS_CREDITS_ENFORCED = True
    settings.TRIGGERHUB_SMS_BACKEND = "messaging.backends.sms.locmem.SmsBackend"
    settings.TRIGGERHUB_SMS_LONG_POLICY = LongSmsPolicy.SPLIT
    SmsRate.objects.create(country="", credits_per_part=Decimal("1"))
    text = across_the_end_of_part_one(FLAG)
    with time_machine.travel(NOON, tick=False):
        credits.add(Decimal("10"))
        message = outbox.enqueue(
            customer=factories.customer(phone="+393471234567"),
            channel=Channel.SMS,
            content=factories.sms_content(slug="flag", text=text),
            category=Category.TRANSACTIONAL,
            source="test",
            dedupe_key="flag",
        )
        assert deliver(message.pk) == Status.SENT
    message.refresh_from_db()
    assert (message.body_text, message.parts, credits.balance()) == (text, 3, Decimal("7"))
    assert segment_report(text)["summary"].startswith("UCS-2 · 3 parts")


def part_ends(result):
    return set(accumulate(len(part) for part in result.parts[:-1]))


def clusters_cut(text, positions, encoding):
    """The grapheme clusters of ``text`` that a cut at any of ``positions`` splits.

    A cut may fall inside CR LF (two GSM characters to Twilio) and inside a cluster too long for one part.
    """
    cut, start = [], 0
    for cluster in regex.findall(r"\X", text):
        inside = range(start + 1, start + len(cluster))
        if positions.intersection(inside) and cluster != "\r\n" and units(cluster, encoding) <= PART_LIMIT[encoding]:
            cut.append(cluster)
        start += len(cluster)
    return cut


CLUSTERS = [FAMILY, FLAG, RAINBOW, THUMBS_UP_MEDIUM, KEYCAP_ONE, "🏳️‍⚧️", "❤️‍🔥", "e\u0301", "क्ष", "\r\n"]
texts_with_clusters = st.lists(
    st.one_of(st.sampled_from(list("aé€[ ’😀\n") + CLUSTERS), st.text(max_size=3)), min_size=20, max_size=150
).map("".join)  # long enough to make several parts


@given(texts_with_clusters)
def test_parts_rebuild_the_text_fit_their_limit_and_never_split_a_grapheme_cluster(text):
    result = segment(text)
    assert "".join(result.parts) == text
    limit = SINGLE_LIMIT[result.encoding] if result.segments <= 1 else PART_LIMIT[result.encoding]
    assert all(units(part, result.encoding) <= limit for part in result.parts)
    assert not clusters_cut(text, part_ends(result), result.encoding)


@given(texts_with_clusters)
def test_truncated_text_is_one_sms_ending_between_clusters(text):
    cut = truncate(text)
    assert text.startswith(cut) and segment(cut).segments <= 1
    assert not clusters_cut(text, {len(cut)}, "UCS-2")
    if cut != text:  # and the next cluster would not have fitted
        next_cluster = regex.match(r"\X", text, pos=len(cut)).group()
        assert segment(text[: len(cut) + len(next_cluster)]).segments > 1
