from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from messaging import views as messaging_views
from messaging import webhooks

from . import views
from .api import api

admin.site.site_header = "TriggerHub"
admin.site.site_title = "TriggerHub"
admin.site.index_title = "Dialog marketing console"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("webhooks/twilio/status/", webhooks.twilio_status, name="twilio-status-webhook"),
    path("unsubscribe/<str:token>/", messaging_views.unsubscribe_page, name="unsubscribe"),
    path("anymail/", include("anymail.urls")),
]
if settings.TRIGGERHUB_EXAMPLE_SHOP:
    urlpatterns.append(path("", include("storefront.urls")))
else:
    # No shop in production: the site's root is the console (302, so a shop put there later is not cached away).
    urlpatterns.append(path("", RedirectView.as_view(pattern_name="admin:index"), name="home"))
