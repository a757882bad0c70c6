"""Publishing tasks after the caller's transaction commits, without ever failing it.

The rows written in the transaction (events, messages) are the durable record of
work to do; the broker only carries a nudge. If the broker is unreachable, the
nudge is logged and lost, and the sweepers publish it again from the rows.
"""

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def publish(task, *args, **options) -> bool:
    """Send ``task(*args)`` to the broker now; return False instead of raising if it is down."""
    try:
        # retry=False: a storefront request must not hang on a dead broker.
        task.apply_async(args=args, retry=False, **options)
    except Exception as exc:  # kombu raises OperationalError, OSError, ChannelError...
        log.warning("broker unreachable, %s%r left for the sweeper: %s", task.name, args, exc)
        return False
    return True


def publish_on_commit(task, *args, on_failure=None, **options) -> None:
    """Publish ``task(*args)`` once the current transaction commits (at once in autocommit).

    ``on_failure`` is called with the same args if the broker cannot take the task.
    """

    def send():
        if not publish(task, *args, **options) and on_failure is not None:
            on_failure(*args)

    transaction.on_commit(send, robust=True)

