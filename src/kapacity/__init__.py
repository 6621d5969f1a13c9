"""kapacity: a Kapacitor-compatible alerting engine with a first-class Kafka event handler."""

from kapacity.errors import KapacityError

__all__ = ["KapacityError", "__version__"]
__version__ = "0.1.0"
