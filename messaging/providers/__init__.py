"""One home per provider, as django-anymail has one module per ESP.

Everything that knows a provider's words lives here, one module or package per
provider: how to send through it, how to authenticate and read what it reports
back, its status table and error codes, and the system checks of its settings.
What it hands the rest of messaging is in our words: a ``DeliveryError``
(messaging/exceptions.py) when sending fails, a ``status.StatusReport`` for what
it reports afterwards. Nothing outside this package names a provider, so adding
one means adding a home here and a dotted path in the settings.

* ``twilio/``: SMS through Twilio's Programmable Messaging.
* ``email.py``: e-mail through django-anymail (its normalised tracking events),
  with the quirks of particular ESPs in a module each (``postmark.py``).
"""
