from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers and events"

    def ready(self):
        from . import receivers  # noqa: F401  (connects the signal wrappers over emit())
