from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "TriggerHub"
admin.site.site_title = "TriggerHub"
admin.site.index_title = "Dialog marketing console"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("storefront.urls")),
]
