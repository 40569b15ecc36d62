"""`SecretUrl`: a URL that may carry credentials (`redis://user:password@host/0`, `?token=...`).

A pydantic `SecretStr` whose `repr`/`str` keep what an operator needs to read a config (scheme,
host, port, path, query keys) and mask the rest: the password (or a lone user part, which some
services use as the token) and every query value. JSON dumps give `**********` like any
SecretStr. Code that connects reads `.get_secret_value()` explicitly. A leaf module: imported by
config models in serve_app and deployments alike.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import SecretStr

MASK = "***"


def masked_url(url: str) -> str:
    """`url` with its credentials and query values replaced by `***`."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user, sep, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{host}" if sep else f"{MASK}@{host}"
        query = "&".join(f"{pair.partition('=')[0]}={MASK}" for pair in parts.query.split("&") if pair)
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except ValueError:  # unparsable (e.g. a bad IPv6 literal): show nothing of it
        return "**********"


class SecretUrl(SecretStr):
    def _display(self) -> str:
        value = self.get_secret_value()
        return masked_url(value) if value else ""
