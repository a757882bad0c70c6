"""The admin of the third-party apps, with permissions on their actions.

django-celery-beat and django-axes ship admin actions that any staff user who may only
view the model can run. Here they are registered again, each action asking for the
permission of what it does. ``triggerhub`` is the last installed app, so its admin module
is imported after theirs (admin autodiscovery follows INSTALLED_APPS).
"""

from axes import admin as axes_admin
from axes.models import AccessAttempt
from django.contrib import admin
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import PeriodicTask

admin.site.unregister(PeriodicTask)
admin.site.unregister(AccessAttempt)

BeatAdmin = beat_admin.PeriodicTaskAdmin


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatAdmin):
    """Beat's schedules run the sweepers and the activities' clock: changing them, or running
    one now, needs the change permission of periodic tasks."""

    @admin.action(permissions=["change"], description=BeatAdmin.enable_tasks.short_description)
    def enable_tasks(self, request, queryset):
        return super().enable_tasks(request, queryset)

    @admin.action(permissions=["change"], description=BeatAdmin.disable_tasks.short_description)
    def disable_tasks(self, request, queryset):
        return super().disable_tasks(request, queryset)

    @admin.action(permissions=["change"], description=BeatAdmin.toggle_tasks.short_description)
    def toggle_tasks(self, request, queryset):
        return super().toggle_tasks(request, queryset)

    @admin.action(permissions=["change"], description=BeatAdmin.run_tasks.short_description)
    def run_tasks(self, request, queryset):
        return super().run_tasks(request, queryset)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """Failed logins (and the locks they make); deleting a row unlocks that username and address."""

    @admin.action(
        permissions=["delete"],
        description=axes_admin.AccessAttemptAdmin.cleanup_expired_attempts.short_description,
    )
    def cleanup_expired_attempts(self, request, queryset):
        # axes measures the cool-off from the login request it normally runs in; this is none,
        # and None means "from now" (without it the action fails with an AttributeError).
        request.axes_attempt_time = None
        return super().cleanup_expired_attempts(request, queryset)
