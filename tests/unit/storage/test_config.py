"""storage.url: allowed schemes, SQLite paths made absolute, passwords masked everywhere."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr, ValidationError

from serve_app.config import ConfigError, parse_config
from serve_app.storage import StorageConfig, masked_url


def test_default_is_a_sqlite_file_under_the_working_directory() -> None:
    cfg = parse_config({}).storage
    assert cfg.backend == "sqlite"
    assert cfg.sqlite_path == os.path.join(os.getcwd(), "raygate.db")


def test_relative_sqlite_path_is_made_absolute() -> None:
    cfg = StorageConfig(url="sqlite:///data/x.db")
    assert cfg.url.get_secret_value() == f"sqlite:///{os.getcwd()}/data/x.db"


@pytest.mark.parametrize("url", ["postgresql://u:p@db:5432/raygate", "postgres://u@db/raygate"])
def test_postgres_schemes(url: str) -> None:
    cfg = StorageConfig(url=url)
    assert cfg.backend == "postgresql" and cfg.sqlite_path is None


@pytest.mark.parametrize("url, reason", [
    ("mysql://u:p@h/x", "unsupported URL scheme 'mysql'"),
    ("raygate.db", "the URL has no scheme"),
    ("sqlite:///:memory:", "needs a file path"),
    ("postgresql://u@h:5432", "needs a database name"),
])
def test_bad_urls_name_the_key_and_what_is_allowed(url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"storage": {"url": url}}, "gw.yaml")
    msg = str(err.value)
    assert msg.startswith("gw.yaml: storage.url: ") and reason in msg
    if "scheme" in reason:
        assert "sqlite:///" in msg and "postgresql://" in msg


def test_unknown_storage_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        StorageConfig(url="sqlite:///x.db", batchsize=3)


def test_masked_url_hides_the_password() -> None:
    assert masked_url("postgresql://u:s3cret@127.0.0.1:5432/x") == "postgresql://u:***@127.0.0.1:5432/x"
    assert masked_url(SecretStr("postgres://u:s3cret@h/x")) == "postgres://u:***@h/x"
    assert masked_url("postgresql://u@h/x") == "postgresql://u@h/x"
    assert "s3cret" not in masked_url("postgresql://u:s3cret@[bad")


def test_config_repr_and_key_never_show_the_password() -> None:
    a = StorageConfig(url="postgresql://u:s3cret@h:5432/x")
    b = StorageConfig(url="postgresql://u:other@h:5432/x")
    assert "s3cret" not in repr(a) and "s3cret" not in a.masked
    assert a.key == b.key  # a password change keeps the writer actor and the spool directory
    assert a.key != StorageConfig(url="postgresql://u:s3cret@h:5432/y").key
    assert a.resolved_spool_dir().endswith(os.path.join("raygate-spool", a.key))
