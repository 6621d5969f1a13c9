"""Filesystem checks: CA, certificate/key pair, keytab and krb5.conf files, located."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kapacity.config import parse_config
from kapacity.config.files import check_files
from tests.support.tls import TlsFiles, make_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def conf(body: str) -> str:
    return f'[[kafka]]\nenabled = true\nid = "x"\nbrokers = ["k:9092"]\n{body}'


def test_good_files_pass(pki: TlsFiles) -> None:
    cfg = parse_config(
        conf(
            f'use-ssl = true\nssl-ca = "{pki.ca}"\n'
            f'ssl-cert = "{pki.server_cert}"\nssl-key = "{pki.server_key}"\n'
        )
    )
    assert check_files(cfg) == []


def test_missing_and_garbage_files_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    cfg = parse_config(
        conf(
            f'use-ssl = true\nssl-ca = "{garbage}"\n'
            f'ssl-cert = "{tmp_path / "nope.pem"}"\nssl-key = "{tmp_path}"\n'
        ),
        source_name="k.conf",
    )
    got = [str(p) for p in check_files(cfg)]
    at = 'kafka[0] (id "x")'
    assert got[0].startswith(f'k.conf:6:1: {at}: ssl-ca: cannot load CA certificates from "{garbage}"')
    assert got[1] == f'k.conf:7:1: {at}: ssl-cert: file "{tmp_path / "nope.pem"}" does not exist'
    assert got[2] == f'k.conf:8:1: kafka[0] (id "x"): ssl-key: "{tmp_path}" is not a file'


def test_key_not_matching_certificate(pki: TlsFiles, tmp_path: Path) -> None:
    other = tmp_path / "other-key.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cfg = parse_config(
        conf(f'use-ssl = true\nssl-cert = "{pki.server_cert}"\nssl-key = "{other}"\n')
    )
    (problem,) = check_files(cfg)
    assert problem.path == ("kafka", 0, "ssl-cert")
    assert f'"{pki.server_cert}" with the key "{other}"' in problem.message


def test_encrypted_key_fails_instead_of_prompting(pki: TlsFiles, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
    enc = tmp_path / "enc-key.pem"
    enc.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    cfg = parse_config(conf(f'use-ssl = true\nssl-cert = "{pki.server_cert}"\nssl-key = "{enc}"\n'))
    (problem,) = check_files(cfg)
    assert "cannot load the certificate" in problem.message


def test_files_not_checked_without_use_ssl_or_when_disabled(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert check_files(parse_config(conf(f'ssl-ca = "{missing}"\n'))) == []
    enabled = conf(f'use-ssl = true\nssl-ca = "{missing}"\n')
    disabled = enabled.replace("enabled = true", "enabled = false")
    assert check_files(parse_config(disabled)) == []


def test_gssapi_keytab_and_krb5_conf(tmp_path: Path) -> None:
    cfg = parse_config(
        conf(
            'sasl-mechanism = "GSSAPI"\nsasl-username = "svc"\n'
            'sasl-gssapi-auth-type = "KRB5_KEYTAB_AUTH"\n'
            f'sasl-gssapi-key-tab-path = "{tmp_path / "svc.keytab"}"\n'
            f'sasl-gssapi-kerberos-config-path = "{tmp_path / "krb5.conf"}"\n'
        )
    )
    assert [p.path[-1] for p in check_files(cfg)] == [
        "sasl-gssapi-key-tab-path",
        "sasl-gssapi-kerberos-config-path",
    ]
    (tmp_path / "svc.keytab").write_bytes(b"\x05\x02")
    (tmp_path / "krb5.conf").write_text("[libdefaults]\n")
    assert check_files(cfg) == []
