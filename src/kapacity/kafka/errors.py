"""Errors of kapacity's Kafka plumbing, and how librdkafka's error codes map onto them.

::

    KafkaError                  (root of this module; a KapacityError)
     ├── KafkaConnectionError   retriable: brokers unreachable, metadata not available yet
     ├── KafkaAuthError         not retriable: SASL login or TLS verification failed
     ├── KafkaTimeoutError      retriable: not acknowledged within the configured timeout
     ├── KafkaSetupError        not retriable: the installed client cannot serve the cluster
                                as configured (e.g. GSSAPI without Kerberos support)
     └── KafkaDeliveryError     a message was rejected; ``retriable`` says if sending it
                                again may succeed (e.g. not for MSG_SIZE_TOO_LARGE)

:func:`classify` turns a librdkafka error into one of these, so retry code reads
``error.retriable`` instead of knowing librdkafka's codes.
"""

from __future__ import annotations

from typing import Final

from confluent_kafka import KafkaError as _RdError

from kapacity.errors import KapacityError


class KafkaError(KapacityError):
    """Something went wrong talking to a Kafka cluster; ``reason`` is librdkafka's text."""

    def __init__(self, message: str, *, code: int | None = None, retriable: bool | None = None) -> None:
        super().__init__(message)
        self.code = code
        if retriable is not None:
            self.retriable = retriable


class KafkaConnectionError(KafkaError):
    """The brokers could not be reached (yet): retrying may help."""

    retriable = True


class KafkaAuthError(KafkaError):
    """The cluster refused us: a SASL login or TLS certificate check failed.

    Retrying with the same configuration cannot succeed, so messages are failed fast.
    """

    retriable = False


class KafkaTimeoutError(KafkaError):
    """The broker did not acknowledge within the configured timeout."""

    retriable = True


class KafkaSetupError(KafkaError):
    """The client cannot be created for this cluster; the message says what to change."""

    retriable = False


class KafkaDeliveryError(KafkaError):
    """A message was not delivered; ``retriable`` is set from librdkafka's verdict."""


#: librdkafka codes meaning the cluster rejected our identity. They are reported through
#: the error callback (not per message) and repeat on every reconnect, so they are the
#: reason a queued message will never be acknowledged.
AUTH_ERROR_CODES: Final[frozenset[int]] = frozenset({
    _RdError._AUTHENTICATION,
    _RdError._SSL,
    _RdError.SASL_AUTHENTICATION_FAILED,
    _RdError.ILLEGAL_SASL_STATE,
    _RdError.UNSUPPORTED_SASL_MECHANISM,
    _RdError.TOPIC_AUTHORIZATION_FAILED,
    _RdError.CLUSTER_AUTHORIZATION_FAILED,
})

#: Local librdkafka codes that are transient although ``KafkaError.retriable()`` says no
#: (it only flags broker-side retriable codes).
_LOCAL_RETRIABLE: Final[frozenset[int]] = frozenset({
    _RdError._MSG_TIMED_OUT,
    _RdError._TIMED_OUT,
    _RdError._TRANSPORT,
    _RdError._ALL_BROKERS_DOWN,
    _RdError._UNKNOWN_PARTITION,
    _RdError._UNKNOWN_TOPIC,
    _RdError.UNKNOWN_TOPIC_OR_PART,
    _RdError.LEADER_NOT_AVAILABLE,
    _RdError.NOT_LEADER_FOR_PARTITION,
    _RdError.NOT_ENOUGH_REPLICAS,
    _RdError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    _RdError.REQUEST_TIMED_OUT,
    _RdError._RESOLVE,
})


def is_auth_error(code: int) -> bool:
    """True for codes that mean "the cluster will not accept this client as configured"."""
    return code in AUTH_ERROR_CODES


def is_retriable(err: _RdError) -> bool:
    """Whether sending the message again may succeed (auth failures and rejects: no)."""
    code = err.code()
    if code in AUTH_ERROR_CODES or err.fatal():
        return False
    return bool(err.retriable()) or code in _LOCAL_RETRIABLE


def classify(err: _RdError, context: str = "") -> KafkaError:
    """Wrap a librdkafka error in the matching :class:`KafkaError` subclass."""
    code = err.code()
    text = f"{context}: {err.str()}" if context else err.str()
    if code in AUTH_ERROR_CODES:
        return KafkaAuthError(text, code=code)
    if code in (_RdError._MSG_TIMED_OUT, _RdError._TIMED_OUT, _RdError.REQUEST_TIMED_OUT):
        return KafkaTimeoutError(text, code=code)
    if code in (_RdError._TRANSPORT, _RdError._ALL_BROKERS_DOWN, _RdError._RESOLVE):
        return KafkaConnectionError(text, code=code)
    return KafkaDeliveryError(text, code=code, retriable=is_retriable(err))
