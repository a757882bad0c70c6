from django.apps import AppConfig
from django.core import checks


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self):
        from .checks import check_backends_deliver, check_public_base_url, check_send_rules, check_sms_backend

        checks.register(check_sms_backend, "triggerhub")
        checks.register(check_backends_deliver, "triggerhub")
        checks.register(check_send_rules, "triggerhub")
        checks.register(check_public_base_url, "triggerhub")

        from anymail.signals import tracking

        from .webhooks import on_tracking_event

        tracking.connect(on_tracking_event, dispatch_uid="messaging.webhooks.on_tracking_event")
