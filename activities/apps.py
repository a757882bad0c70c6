from django.apps import AppConfig


class ActivitiesConfig(AppConfig):
    name = "activities"
    verbose_name = "Dialog activities"

    def ready(self):
        from customers.signals import event_ready

        from .engine import evaluate_event_signal

        event_ready.connect(evaluate_event_signal, dispatch_uid="activities.evaluate_event")
