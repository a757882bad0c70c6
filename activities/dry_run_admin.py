"""The admin page that tries an activity on one customer: /admin/activities/activity/<id>/try/.

A form picks the customer (by e-mail, external id or phone; a choice when several
match) and the start moment (in the customer's own zone or in UTC, as the marketer
says); ``dry_run.try_on`` makes the timeline, shown below it. The page changes nothing,
so the form is a GET and its address can be shared. It needs the activity's view
permission and the customers' (it shows a customer's data in the messages).
"""

import zoneinfo
from datetime import datetime, time

from django import forms
from django.conf import settings
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone

from customers.models import Customer

from . import dry_run

#: The years a start may be in: the dry run looks up to five years ahead of it, on a calendar that ends in 9999.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2500
#: At most this many customers are offered when several match.
MAX_MATCHES = 20

ZONE_CHOICES = [("customer", "in the customer's own time zone"), ("utc", "in UTC")]


class DryRunForm(forms.Form):
    customer = forms.CharField(
        label="Customer",
        max_length=254,
        help_text="Their e-mail address, external id or phone number (e.g. +61412345678).",
    )
    which = forms.TypedChoiceField(label="Which one", coerce=int, required=False, choices=())
    start_date = forms.DateField(
        label="Start date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date such as 2027-03-01."},
        help_text="Empty: now. For a date trigger, the dry run starts at its next moment on or after this.",
    )
    start_time = forms.TimeField(
        label="Start time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": "Enter a time such as 09:30."},
        help_text="Empty: midnight of the start date.",
    )
    zone = forms.ChoiceField(
        label="The date and time are",
        choices=ZONE_CHOICES,
        initial="customer",
        widget=forms.RadioSelect,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        text = str(self.data.get("customer", "")).strip() if self.is_bound else ""
        # Looked up before validation, so that "which" can be validated against the matches.
        self.matches = _matching_customers(text) if text and len(text) <= 254 and "\x00" not in text else []
        if len(self.matches) > 1:
            self.fields["which"].choices = [("", "---------")] + [
                (match.pk, _label(match)) for match in self.matches[:MAX_MATCHES]
            ]

    def clean(self):
        cleaned = super().clean()
        customer = self._customer(cleaned)
        if customer is not None:
            cleaned["customer_object"] = customer
            cleaned["start"] = self._start(cleaned, customer)
        return cleaned

    def _customer(self, cleaned) -> Customer | None:
        text = cleaned.get("customer")
        if not text:
            return None
        matches = self.matches
        if not matches:
            self.add_error("customer", f"No customer has the e-mail address, external id or phone number {text!r}.")
            return None
        if len(matches) == 1:
            return matches[0]
        chosen = next((match for match in matches if match.pk == cleaned.get("which")), None)
        if chosen is None:
            more = f"{MAX_MATCHES} or more" if len(matches) > MAX_MATCHES else str(len(matches))
            self.add_error("which", f"{more} customers match {text!r}: pick one.")
        return chosen

    def _start(self, cleaned, customer) -> datetime | None:
        day, clock = cleaned.get("start_date"), cleaned.get("start_time")
        if day is None:
            if clock is not None:
                self.add_error("start_date", "Give the date of the start too, or leave the time empty for now.")
            elif "start_date" not in self.errors:
                return timezone.now()
            return None
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            self.add_error("start_date", f"Pick a date between the years {EARLIEST_YEAR} and {LATEST_YEAR}.")
            return None
        zone = customer_zone(customer) if cleaned.get("zone", "customer") != "utc" else "UTC"
        return datetime.combine(day, clock or time(0, 0), tzinfo=zoneinfo.ZoneInfo(zone))


def _matching_customers(text) -> list[Customer]:
    return list(
        Customer.objects.filter(Q(email__iexact=text) | Q(external_id=text) | Q(phone=text)).order_by("pk")[
            : MAX_MATCHES + 1
        ]
    )


def customer_zone(customer) -> str:
    """The zone a customer's dates come round in (the site's when nothing is known), as the dry run uses."""
    return customer.local_zone or settings.TRIGGERHUB_DEFAULT_TIMEZONE


def _label(customer) -> str:
    parts = [
        customer.full_name,
        customer.email,
        customer.phone,
        f"external id {customer.external_id}" if customer.external_id else "",
        customer.country,
    ]
    return " · ".join(part for part in parts if part) or str(customer)


def dry_run_view(model_admin, request, object_id):
    """The form and, once it is valid, the timeline of ``dry_run.try_on``."""
    activity = model_admin.get_object(request, unquote(object_id))
    if activity is None:
        raise Http404(f"No activity with id {object_id!r}.")
    if not model_admin.has_view_permission(request, activity) or not request.user.has_perm("customers.view_customer"):
        raise PermissionDenied
    form = DryRunForm(request.GET if "customer" in request.GET else None)
    timeline = None
    if form.is_bound and form.is_valid():
        timeline = dry_run.try_on(activity, form.cleaned_data["customer_object"], form.cleaned_data["start"])
    return TemplateResponse(
        request,
        "admin/activities/activity/dry_run.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": f"Try “{activity}” on a customer",
            "opts": model_admin.opts,
            "original": activity,
            "form": form,
            "timeline": timeline,
            "customer_zone": customer_zone(timeline.customer) if timeline else "",
        },
    )
