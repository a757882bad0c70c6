"""API keys for the events API: shown once, stored as SHA-256, revocable.

Keys are 32 random bytes, so a fast hash is enough: there is nothing to guess.
"""

import hashlib
import secrets

from django.utils import timezone

from .models import ApiKey

PREFIX = "th_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def fill_new_key(api_key: ApiKey) -> str:
    """Give ``api_key`` a new secret; return the secret, which is never stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    api_key.prefix = key[:10]
    api_key.key_hash = hash_key(key)
    return key


def create(name: str, **fields) -> tuple[ApiKey, str]:
    api_key = ApiKey(name=name, **fields)
    key = fill_new_key(api_key)
    api_key.save()
    return api_key, key


def authenticate(key: str) -> ApiKey | None:
    """The active key matching ``key``, or None."""
    if not key or not key.startswith(PREFIX):
        return None
    return ApiKey.objects.filter(key_hash=hash_key(key), revoked_at__isnull=True).first()


def revoke(queryset) -> int:
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
