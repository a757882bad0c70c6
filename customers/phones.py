"""Phone numbers: E.164 normalisation and the time zones a number can be in."""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from phonenumbers import NumberParseException, ValidationResult
from phonenumbers import timezone as phone_timezones

_UNKNOWN_ZONE = "Etc/Unknown"
_PARSE_PROBLEMS = {
    NumberParseException.INVALID_COUNTRY_CODE: "does not start with a known country calling code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}
_LENGTH_PROBLEMS = {
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has the wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "does not start with a known country calling code",
}


def normalize(raw: str, country: str | None = None) -> str:
    """Return ``raw`` in E.164 (``+12125550100``), or raise ``ValidationError`` saying why not.

    ``country`` (ISO 3166-1 alpha-2) is needed for a national number such as
    ``(212) 555-0100``; a number written with ``+`` and its calling code needs none.
    """
    text = (raw or "").strip()
    if not text:
        raise ValidationError("Give a phone number.", code="required")
    if re.search(r"[^\d\s()+\-./]", text):
        raise ValidationError(
            f"'{text}' contains characters other than digits, spaces and ()+-./.", code="not_a_number"
        )
    country = (country or "").strip().upper() or None
    if country is not None and country not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"'{country}' is not a country code (ISO 3166-1, e.g. US or IT).", code="country")
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and country is None:
        raise ValidationError(
            f"'{text}' is a national number: give the customer's country, or write it with + and the "
            "country calling code.",
            code="country_missing",
        )
    where = f" for a {country} number" if country and not text.startswith("+") else ""  # before parsing
    try:
        number = phonenumbers.parse(text, country)
    except NumberParseException as exc:
        raise ValidationError(
            f"'{text}' {_PARSE_PROBLEMS.get(exc.error_type, 'cannot be read')}{where}.", code="invalid"
        ) from None
    region = phonenumbers.region_code_for_number(number) or ""
    if region in ("", "001", "ZZ"):
        region = country if country and not text.startswith("+") else f"+{number.country_code}"
    region_words = f" for a {region} number"
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise ValidationError(f"'{text}' {_LENGTH_PROBLEMS[possible]}{region_words}.", code="invalid")
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY or not phonenumbers.is_valid_number(number):
        raise ValidationError(f"'{text}' is not a valid {region} number.", code="invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def time_zones(e164: str) -> list[str]:
    """The IANA zones the number may be in, from phonenumbers' data; [] if it cannot tell."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return []
    return [zone for zone in phone_timezones.time_zones_for_number(number) if zone != _UNKNOWN_ZONE]


def country_of(e164: str) -> str:
    """The ISO country of a number, or "" for non-geographic ones."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return ""
    return "" if region is None or region in ("001", "ZZ") else region
