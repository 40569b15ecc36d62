"""Gateway keys: clients send `Authorization: Bearer <key>`; compared in constant time.

Keys are stored by their SHA-256 digest, so the lookup is a dict probe on a digest (timing
reveals nothing about the key) and the confirming comparison is `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from .errors import GatewayError, unauthorized


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyStore:
    def __init__(self, entries: list[Any]) -> None:
        self._by_digest = {_digest(e.key.get_secret_value()): e.id for e in entries}

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def identify(self, authorization: str | None) -> str | None:
        """The key id for an Authorization header value, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = _digest(token.strip())
        for known, key_id in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return key_id
        return None


class Auth:
    """Client keys for /v1/*, admin keys for /v1/admin/*."""

    def __init__(self, gateway_section: Any) -> None:
        self.clients = KeyStore(gateway_section.api_keys)
        self.admins = KeyStore(gateway_section.admin_keys)

    def client(self, authorization: str | None) -> str | None:
        """The calling key's id; None when auth is off. Raises 401 for a missing or wrong key."""
        if not self.clients.enabled:
            return None
        key_id = self.clients.identify(authorization)
        if key_id is None:
            raise unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>'"
                               if authorization else "missing API key: send 'Authorization: Bearer <key>'")
        return key_id

    def admin(self, authorization: str | None) -> str:
        key_id = self.admins.identify(authorization)
        if key_id is None:
            if not self.admins.enabled:
                raise GatewayError(403, "admin API is disabled: no gateway.admin_keys are configured",
                                   code="admin_disabled")
            raise unauthorized("missing or invalid admin key")
        return key_id
