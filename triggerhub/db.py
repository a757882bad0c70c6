"""Database helpers shared by the apps."""

from django.db import IntegrityError, transaction


def insert_or_get_existing(instance, **unique_lookup):
    """Insert ``instance``; if a row with ``unique_lookup`` already exists, return that one.

    Returns ``(row, created)``. One INSERT when the row is new — no look-up first,
    since new rows are the common case. Inside a transaction the INSERT runs in a
    savepoint, so losing to a twin leaves the caller's transaction usable.
    """
    model = type(instance)
    using = instance._state.db or "default"
    try:
        if transaction.get_connection(using).in_atomic_block:
            with transaction.atomic(using=using):
                instance.save(force_insert=True, using=using)
        else:
            instance.save(force_insert=True, using=using)
    except IntegrityError:
        existing = model._default_manager.using(using).filter(**unique_lookup).first()
        if existing is None:
            raise  # another constraint failed: the caller's data is wrong
        return existing, False
    return instance, True
