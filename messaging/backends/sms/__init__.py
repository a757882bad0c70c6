"""SMS backends, shaped like django-anymail's: a base class, one module per provider.

``TRIGGERHUB_SMS_BACKEND`` names the class, e.g. ``messaging.backends.sms.console.SmsBackend``.
"""

from django.conf import settings
from django.utils.module_loading import import_string


def get_backend():
    return import_string(settings.TRIGGERHUB_SMS_BACKEND)()
