"""kapacity's persistent state: one embedded SQLite store in the data directory."""

from kapacity.state.errors import StoreError
from kapacity.state.store import SCHEMA_VERSION, Store, TaskRecord

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "TaskRecord"]
