"""Alert handlers: where alerts go (Kafka, log file, HTTP POST, TCP, exec).

Each handler lives in its own module; :mod:`kapacity.handlers.base` is the interface they
share. Nothing is imported here so that loading one handler does not load the others'
clients.
"""
