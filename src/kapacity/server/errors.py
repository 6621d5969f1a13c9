"""Errors the HTTP API answers with: each carries the status code Kapacitor uses.

::

    KapacityError
     └── APIError              status 500 unless a subclass says otherwise
          ├── BadRequest       400: invalid JSON, TICKscript, handler spec, query parameter
          ├── NotFound         404: unknown task, topic, event, handler, service test
          └── Unavailable      503: the server is shutting down or its write queue is full
"""

from __future__ import annotations

from kapacity.errors import KapacityError


class APIError(KapacityError):
    status: int = 500


class BadRequest(APIError):
    status = 400


class NotFound(APIError):
    status = 404


class Unavailable(APIError):
    status = 503
    retriable = True
    #: Seconds a client should wait before retrying (sent as ``Retry-After``): the write
    #: queue drains in well under a second at the engine's rate, so one second is enough.
    retry_after_s = 1
