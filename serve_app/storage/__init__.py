"""Durable storage shared by every feature that keeps records (docs/storage.md).

`StorageConfig` is the `storage:` setting, `Storage` the database (schema at start-up, record
writes and reads). The record-writing machinery (spool, writer actor, per-replica sink) lives in
deployments/records/.
"""

from .config import StorageConfig, masked_url
from .store import Storage, StorageError, prepare_storage

__all__ = ["Storage", "StorageConfig", "StorageError", "masked_url", "prepare_storage"]
