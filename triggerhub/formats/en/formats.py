"""English date formats that name the time zone: a time without its zone is ambiguous to a
marketer whose customers live in many. What is not set here is Django's own (input formats too)."""

DATETIME_FORMAT = "j M Y, H:i T"  # 2 Dec 2026, 10:00 UTC
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"  # 2026-12-02 10:00 UTC
