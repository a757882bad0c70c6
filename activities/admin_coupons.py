"""The admin of coupon pools and the coupons they hand out.

A pool is given codes by pasting a list or uploading a text/CSV file on its page
(``add_codes``). Codes are unique across all pools, so a code already stored anywhere is
counted as already there, never moved; a code that could not be typed back by a customer
(empty, over 64 characters, a space or an invisible character inside) is refused with its
line. The new codes go in with one bulk insert per batch, never one query per code.
"""

import unicodedata
from dataclasses import dataclass, field
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from customers.admin import ReadOnlyAdmin

from .models import Coupon, CouponPool

CODE_MAX_LENGTH = cast(int, Coupon._meta.get_field("code").max_length)  # the field has one
#: What separates codes on a line: commas and semicolons (CSV) and ASCII blanks.
SEPARATORS = ",; \t\f\v"
#: A first line naming the column, as a spreadsheet exports it, is not a code.
HEADER_NAMES = frozenset(("code", "codes", "coupon", "coupon code", "coupon_code"))
#: The largest upload read: about 400,000 codes of a dozen characters.
UPLOAD_MAX_BYTES = 5 * 1024 * 1024
#: Codes looked up or inserted per query.
BATCH_SIZE = 500
#: How many examples of each kind the report lists.
EXAMPLES_SHOWN = 20


@dataclass(frozen=True)
class RefusedCode:
    line: int
    code: str
    reason: str

    def __str__(self):
        if not self.code:
            return f"line {self.line}: {self.reason}"
        shown = self.code if len(self.code) <= 40 else self.code[:40] + "…"
        return f"line {self.line}: {shown!a} — {self.reason}"  # escaped, so an invisible character shows


@dataclass
class CodesReport:
    """What adding a list of codes to a pool did."""

    added: int = 0
    repeated_in_list: list[str] = field(default_factory=list)  # each later occurrence of a code in the list
    already_stored: list[str] = field(default_factory=list)  # in this pool or another
    refused: list[RefusedCode] = field(default_factory=list)
    header_skipped: bool = False

    @property
    def already_there(self) -> int:
        return len(self.repeated_in_list) + len(self.already_stored)


def problem_with_code(code: str) -> str | None:
    """Why ``code`` cannot be a coupon code, in words for the marketer; None if it can."""
    if not code:
        return "empty"
    if len(code) > CODE_MAX_LENGTH:
        return f"longer than {CODE_MAX_LENGTH} characters ({len(code)})"
    for character in code:
        category = unicodedata.category(character)
        name = unicodedata.name(character, "").lower()
        described = f"U+{ord(character):04X}" + (f" {name}" if name else "")
        if category.startswith("Z"):  # a no-break space pasted from a spreadsheet looks like a separator
            return f"a space inside ({described}); split it into two codes or remove the space"
        if category.startswith("C"):
            return f"a control or invisible character inside ({described}); type the code again"
        if character == "\ufffd":  # what the browser or the decoder made of a character it could not read
            return f"a character that could not be read ({described}); type the code again"
    return None


def codes_in(text: str) -> tuple[list[tuple[int, str]], list[RefusedCode], bool]:
    """The codes in a pasted list or file, each with its line; the refused ones; whether a header was skipped."""
    found, refused, header_skipped = [], [], False
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first_line = next((number for number, line in enumerate(lines, 1) if line.strip(SEPARATORS)), None)
    for number, line in enumerate(lines, 1):
        pieces = [piece for piece in _split(line) if piece != ""]
        if number == first_line and len(pieces) == 1 and pieces[0].strip('"').lower() in HEADER_NAMES:
            header_skipped = True
            continue
        for piece in pieces:
            code = piece[1:-1] if len(piece) >= 2 and piece[0] == piece[-1] == '"' else piece  # a CSV cell's quotes
            problem = problem_with_code(code)
            if problem:
                refused.append(RefusedCode(number, code, problem))
            else:
                found.append((number, code))
    return found, refused, header_skipped


def _split(line: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for character in line:
        if character in SEPARATORS:
            pieces.append("".join(current))
            current = []
        else:
            current.append(character)
    pieces.append("".join(current))
    return pieces


def add_codes(pool: CouponPool, text: str) -> CodesReport:
    """Add the codes listed in ``text`` to ``pool``; the report says what became of each."""
    found, refused, header_skipped = codes_in(text)
    report = CodesReport(refused=refused, header_skipped=header_skipped)
    unique = []
    seen = set()
    for _, code in found:
        if code in seen:
            report.repeated_in_list.append(code)
        else:
            seen.add(code)
            unique.append(code)
    stored: set[str] = set()
    for batch in _batches(unique):
        stored.update(Coupon.objects.filter(code__in=batch).values_list("code", flat=True))
    new = [code for code in unique if code not in stored]
    # ignore_conflicts: a code another person adds at the same moment is skipped, not an error.
    Coupon.objects.bulk_create(
        [Coupon(code=code, pool=pool) for code in new], batch_size=BATCH_SIZE, ignore_conflicts=True
    )
    inserted: set[str] = set()
    for batch in _batches(new):
        inserted.update(Coupon.objects.filter(pool=pool, code__in=batch).values_list("code", flat=True))
    report.added = len(inserted)
    # Stored before, or by someone else between the look-up and the insert.
    report.already_stored = [code for code in unique if code not in inserted]
    return report


def _batches(codes: list[str]):
    for start in range(0, len(codes), BATCH_SIZE):
        yield codes[start : start + BATCH_SIZE]


class AddCodesForm(forms.Form):
    codes = forms.CharField(
        required=False,
        strip=False,
        label="Paste codes",
        widget=forms.Textarea(attrs={"rows": 10, "cols": 60, "spellcheck": "false"}),
        help_text="One a line, or several separated by commas, semicolons or spaces.",
    )
    file = forms.FileField(
        required=False,
        label="Or upload a file",
        help_text="Plain text or CSV with one column (UTF-8); a first line 'code' is skipped.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload is None:
            return ""
        content = upload.read(UPLOAD_MAX_BYTES + 1)
        if len(content) > UPLOAD_MAX_BYTES:
            raise ValidationError(
                f"The file is over {UPLOAD_MAX_BYTES // (1024 * 1024)} MB; split it and upload the parts one by one."
            )
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"The file is not UTF-8 text (byte 0x{content[exc.start]:02X} at position {exc.start:,}); "
                'save it as "CSV UTF-8" or plain text and upload it again.'
            ) from None

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not (cleaned.get("codes") or "").strip(SEPARATORS + "\r\n") and not cleaned.get("file"):
            raise ValidationError("Paste some codes or choose a file.")
        return cleaned

    def text(self) -> str:
        return "\n".join(part for part in (self.cleaned_data["codes"], self.cleaned_data["file"]) if part)


@admin.register(CouponPool)
class CouponPoolAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "percent_off", "amount_off", "free_codes", "issued_codes")
    readonly_fields = ("free_codes", "issued_codes")
    change_form_template = "admin/activities/couponpool/change_form.html"

    def get_queryset(self, request):
        # Free as the issue_coupon step sees it: no enrollment has taken it.
        return (
            super()
            .get_queryset(request)
            .annotate(
                free_count=Count("coupons", filter=Q(coupons__enrollment__isnull=True)),
                issued_count=Count("coupons", filter=Q(coupons__enrollment__isnull=False)),
            )
        )

    @admin.display(description="free codes", ordering="free_count")
    def free_codes(self, pool):
        return getattr(pool, "free_count", 0) if pool.pk else 0

    @admin.display(description="issued codes", ordering="issued_count")
    def issued_codes(self, pool):
        return getattr(pool, "issued_count", 0) if pool.pk else 0

    def get_urls(self):
        return [
            path(
                "<path:object_id>/add-codes/",
                self.admin_site.admin_view(self.add_codes_view),
                name="activities_couponpool_add_codes",
            ),
            *super().get_urls(),
        ]

    def add_codes_view(self, request, object_id):
        """Paste or upload codes; the page answers with what was added, what was already there and what was refused."""
        pool = self.get_object(request, unquote(object_id))
        if pool is None:
            raise Http404(f"No coupon pool with id {object_id!r}.")
        # Giving a pool codes changes the pool: the pool's change permission, not one on coupons.
        if not self.has_change_permission(request, pool):
            raise PermissionDenied
        form = AddCodesForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            report = add_codes(pool, form.text())
            said = f"{report.added} code(s) added, {report.already_there} already there, {len(report.refused)} refused."
            self.log_change(request, pool, said)
            level = messages.SUCCESS if report.added and not report.refused else messages.WARNING
            self.message_user(request, said, level)
            if not report.refused and not report.already_there:
                return redirect(reverse("admin:activities_couponpool_change", args=[pool.pk]))
            form = AddCodesForm()
            pool = self.get_object(request, unquote(object_id))  # the counts after the insert
        return TemplateResponse(
            request,
            "admin/activities/couponpool/add_codes.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Add codes to {pool}",
                "opts": self.opts,
                "original": pool,
                "form": form,
                "report": report,
                "examples_shown": EXAMPLES_SHOWN,
            },
        )


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "pool", "customer", "enrollment", "percent_off", "amount_off", "issued_at")
    search_fields = ("code", "customer__email")
    list_filter = ("pool",)
