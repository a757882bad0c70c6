from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "examples.storefront"
    # The label it had as the top-level package: its tables (storefront_*), migrations and URL names keep it.
    label = "storefront"
    verbose_name = "Example storefront"
