"""Record writing: per-replica spool -> sink -> writer actor -> storage (docs/storage.md)."""

from .sink import StorageSink, build_storage_sink
from .spool import Spool
from .writer import ActorWriter, RecordWriter, writer_actor

__all__ = ["ActorWriter", "RecordWriter", "Spool", "StorageSink", "build_storage_sink", "writer_actor"]
