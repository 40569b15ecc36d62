"""The `storage:` setting: one database URL (SQLite file or PostgreSQL) plus the record-writing knobs.

Validated once at config load. A relative SQLite path is made absolute against the working
directory of the process that loads the config (the `raygate serve` command), so every Ray
process that later opens it means the same file whatever its own working directory is.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# URL scheme -> backend name (serve_app/storage/store.py maps backend -> SQLAlchemy driver).
SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
ALLOWED = "sqlite:///path/to/file.db, postgresql://user:password@host:5432/db (or postgres://)"
DEFAULT_URL = "sqlite:///./raygate.db"


def masked_url(url: str | SecretStr | URL) -> str:
    """The URL with its password replaced by `***` (safe for logs and error messages)."""
    if isinstance(url, SecretStr):
        url = url.get_secret_value()
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # unparseable: mask anything between "user:" and "@"
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def parse_url(url: str) -> tuple[str, URL]:
    """(backend, parsed URL) for an allowed storage URL; ValueError naming what is allowed otherwise."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    backend = SCHEMES.get(scheme)
    if backend is None:
        # never echo the value: without a scheme, its start may be a user and password
        where = f"unsupported URL scheme {scheme!r}" if scheme else "the URL has no scheme"
        raise ValueError(f"{where}; use one of: {ALLOWED}")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"cannot parse the URL ({exc}); use one of: {ALLOWED}") from None
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("a SQLite URL needs a file path, e.g. sqlite:///./raygate.db")
    if backend == "postgresql" and not parsed.database:
        raise ValueError("a PostgreSQL URL needs a database name, e.g. postgresql://user@host:5432/raygate")
    return backend, parsed


class StorageConfig(BaseModel):
    """`storage:` in the gateway config."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Store finished request records (false: metrics only).")
    url: SecretStr = Field(SecretStr(DEFAULT_URL), validate_default=True,
                           description="sqlite:///path (default ./raygate.db) or postgresql://user@host:5432/db.")
    spool_dir: str | None = Field(None, description=(
        "Directory of each ingress replica's record spool on its node. Default: "
        "<system temp dir>/raygate-spool/<hash of the URL>, which exists on every node; point it at a "
        "persistent disk to keep unwritten records across a machine reboot."))
    batch_size: int = Field(500, ge=1, le=10_000)
    flush_interval_s: float = Field(0.2, gt=0, le=60)
    max_spool_bytes: int = Field(1 << 30, ge=1 << 20, description=(
        "Per replica; beyond it records are dropped and counted (raygate_records_dropped_total)."))
    fsync: bool = Field(False, description="fsync every spooled record (survives a machine crash; slower).")
    pool_size: int = Field(5, ge=1, le=100, description="PostgreSQL connections of the writer.")
    connect_timeout_s: float = Field(10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value().strip()
        backend, parsed = parse_url(raw)
        if backend == "sqlite" and not os.path.isabs(parsed.database):
            parsed = parsed.set(database=os.path.abspath(parsed.database))
            raw = parsed.render_as_string(hide_password=False)
        return SecretStr(raw)

    @property
    def backend(self) -> str:
        return parse_url(self.url.get_secret_value())[0]

    @property
    def sqlite_path(self) -> str | None:
        """The database file for SQLite (its writer must run on the node that has it), else None."""
        backend, parsed = parse_url(self.url.get_secret_value())
        return parsed.database if backend == "sqlite" else None

    @property
    def masked(self) -> str:
        return masked_url(self.url)

    @property
    def key(self) -> str:
        """Short stable id of the database (no password): names the writer actor and the spool dir."""
        return hashlib.sha256(self.masked.encode()).hexdigest()[:12]

    def resolved_spool_dir(self) -> str:
        """Evaluated on the replica's node (temp dirs differ between nodes)."""
        if self.spool_dir:
            return os.path.abspath(self.spool_dir)
        return os.path.join(tempfile.gettempdir(), "raygate-spool", self.key)

    def __repr_args__(self) -> Any:
        return [(k, v) if k != "url" else ("url", self.masked) for k, v in super().__repr_args__()]
