"""What can go wrong when handing a message to a provider, and whether trying again helps."""


class DeliveryError(Exception):
    """A provider did not take the message. ``code`` is the provider's own error code."""

    retryable = False

    def __init__(self, message: str, *, code: str = "", payload: dict | None = None):
        super().__init__(message)
        self.code = str(code or "")
        self.payload = payload or {}


class TransientDeliveryError(DeliveryError):
    """A timeout, a 5xx, a rate limit: the same message may go through later."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """The provider refused this message for good (invalid number, unsubscribed...)."""


class RecipientOptedOut(PermanentDeliveryError):
    """The recipient unsubscribed at the carrier or provider (e.g. replied STOP to Twilio).

    Nothing more may be sent until they opt in again, so delivery revokes their
    consent on the channel, with the carrier as the source.
    """


class OutcomeUnknown(DeliveryError):
    """The provider may or may not have taken the message (it did not answer in time).

    Retrying could send it twice, so the message is marked unknown for ops to check.
    """
