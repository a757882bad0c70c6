"""SMS segment counting, as carriers count and bill it."""

from hypothesis import given
from hypothesis import strategies as st

from messaging.sms import GSM7_EXTENSION, PART_LIMIT, SINGLE_LIMIT, segment, truncate, unit_cost


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


@given(texts)
def test_truncated_text_is_one_sms_and_a_prefix(text):
    cut = truncate(text)
    assert text.startswith(cut)
    assert segment(cut).segments <= 1
    assert not cut or cut == text or segment(text[: len(cut) + 1]).segments > 1


def test_extension_characters_are_the_gsm_0338_ones():
    assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\f")
