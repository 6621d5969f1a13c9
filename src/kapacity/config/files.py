"""Checks that touch the filesystem: certificate, key, keytab and krb5.conf files.

Kept apart from the pure models: validating a model never reads a file. Run by
``kapacity config check`` and at server start.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from kapacity.config.base import Issue
from kapacity.config.errors import ConfigProblem
from kapacity.config.loader import locate_issues
from kapacity.config.model import Config

__all__ = ["check_files", "file_issues"]


def check_files(config: Config) -> list[ConfigProblem]:
    """Located problems with the files enabled clusters name (empty when all load)."""
    return locate_issues(file_issues(config), config.source)


def file_issues(config: Config) -> list[Issue]:
    out: list[Issue] = []
    for i, c in enumerate(config.kafka):
        if not c.enabled:
            continue
        at = ("kafka", i)
        if c.use_ssl:
            if c.ssl_ca:
                msg = _unreadable(c.ssl_ca) or _load_ca(c.ssl_ca)
                if msg:
                    out.append((at + ("ssl-ca",), msg))
            if c.ssl_cert and c.ssl_key:
                cert_msg = _unreadable(c.ssl_cert)
                key_msg = _unreadable(c.ssl_key)
                if cert_msg:
                    out.append((at + ("ssl-cert",), cert_msg))
                if key_msg:
                    out.append((at + ("ssl-key",), key_msg))
                if not cert_msg and not key_msg:
                    msg = _load_pair(c.ssl_cert, c.ssl_key)
                    if msg:
                        out.append((at + ("ssl-cert",), msg))
        if c.effective_sasl_mechanism == "GSSAPI":
            if c.gssapi_auth_type == "KRB5_KEYTAB_AUTH" and c.sasl_gssapi_key_tab_path:
                msg = _unreadable(c.sasl_gssapi_key_tab_path)
                if msg:
                    out.append((at + ("sasl-gssapi-key-tab-path",), msg))
            if c.sasl_gssapi_kerberos_config_path:
                msg = _unreadable(c.sasl_gssapi_kerberos_config_path)
                if msg:
                    out.append((at + ("sasl-gssapi-kerberos-config-path",), msg))
    return out


def _unreadable(name: str) -> str:
    path = Path(name)
    if not path.exists():
        return f'file "{name}" does not exist'
    if not path.is_file():
        return f'"{name}" is not a file'
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f'cannot read "{name}": {exc.strerror or exc}'
    return ""


def _load_ca(name: str) -> str:
    try:
        ssl.create_default_context(cafile=name)
    except (ssl.SSLError, ValueError) as exc:
        return f'cannot load CA certificates from "{name}": {_ssl_reason(exc)}'
    return ""


def _load_pair(cert: str, key: str) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except (ssl.SSLError, ValueError, TypeError) as exc:
        return (
            f'cannot load the certificate "{cert}" with the key "{key}": {_ssl_reason(exc)} '
            "(both must be PEM, the key unencrypted and matching the certificate)"
        )
    return ""


def _no_password() -> str:
    # Kapacitor has no key-password option: an encrypted key must fail, not prompt.
    raise ValueError("the private key is encrypted")


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(exc) or type(exc).__name__
