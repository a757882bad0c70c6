"""Twilio, for SMS: everything TriggerHub knows about it, in one place.

* ``backend.py``: sending (``SmsBackend``, the class ``TRIGGERHUB_SMS_BACKEND`` names) and
  looking a message up (``find``, for the check of an unknown message).
* ``webhooks.py``: the status callback, its signature check, and its parameters as a
  ``status.StatusReport``.
* ``statuses.py``: Twilio's message statuses in ours, and what its error codes mean.
* ``checks.py``: ``manage.py check`` of the ``TRIGGERHUB_TWILIO_*`` settings.
"""
