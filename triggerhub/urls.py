from django.conf import settings
from django.contrib import admin
from django.urls import include, path

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
# The example shop, in development and the demo only: in production nothing is served at /.
if settings.TRIGGERHUB_EXAMPLE_SHOP:
    urlpatterns.append(path("", include("examples.storefront.urls")))
