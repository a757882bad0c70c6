"""Pages the recipients of our messages open: the unsubscribe page.

``/unsubscribe/<token>/``: GET shows what would be unsubscribed and a button, and
changes nothing (mail scanners open every link); POST unsubscribes, whether from that
button or from a mail client's one-click unsubscribe (RFC 8058). The rules are in
``messaging/unsubscribe.py``.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import unsubscribe


# One-click POSTs come from mail providers' servers, with no CSRF cookie or token; the
# signed token in the address is what proves the request comes from the recipient.
@csrf_exempt
@login_not_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_page(request, token):
    try:
        if request.method == "POST":
            subscription = unsubscribe.unsubscribe(
                token,
                ip=request.META.get("REMOTE_ADDR"),
                user_agent=request.headers.get("User-Agent", ""),
                one_click=request.POST.get("List-Unsubscribe") == "One-Click",
            )
        else:
            subscription = unsubscribe.read(token)
    except unsubscribe.InvalidLink as exc:
        return _page(request, status=400, problem=str(exc))
    return _page(request, subscription=subscription, unsubscribed=subscription.is_unsubscribed())


def _page(request, *, status=200, **context):
    response = render(
        request,
        "messaging/unsubscribe.html",
        {"site_name": settings.TRIGGERHUB_SITE_NAME, **context},
        status=status,
    )
    response["X-Robots-Tag"] = "noindex"
    return response
