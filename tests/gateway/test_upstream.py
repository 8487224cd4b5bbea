"""The upstream policy shared by the proxies: user name form, allowlist, client TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from mailvault.errors import GatewayError
from mailvault.gateway.upstream import UpstreamPolicy, UpstreamTarget, parse_login


def test_login_parts() -> None:
    assert parse_login("alice@example.com%smtp.example.com%mb1") == UpstreamTarget(
        "alice@example.com", "smtp.example.com", None, "mb1")


def test_login_with_port_and_percent_in_remote_user() -> None:
    target = parse_login("a%b%SMTP.Example.COM.:587%mb1")
    assert target == UpstreamTarget("a%b", "smtp.example.com", 587, "mb1")
    assert target.where(465) == "smtp.example.com:587"


def test_login_ipv6() -> None:
    assert parse_login("u%[::1]:465%m").host == "::1"
    assert parse_login("u%[::1]:465%m").port == 465
    assert parse_login("u%[::1]%m").where(587) == "[::1]:587"


@pytest.mark.parametrize("name", [
    "alice", "alice%server", "%server%mb", "alice%%mb", "alice%server%",
    "alice%server:0%mb", "alice%server:99999%mb", "alice%server:x%mb", "a%se rver%mb",
    "a%[::1%mb", "a%[nonsense]%mb", "a%:25%mb", "a" * 2000 + "%s%m",
])
def test_malformed_logins_are_refused(name: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_login(name)
    assert name not in str(caught.value)


def test_empty_allowlist_allows_nothing() -> None:
    policy = UpstreamPolicy(())
    assert not policy.permits("smtp.example.com", 587)
    assert not policy.permits("127.0.0.1", 25)
    with pytest.raises(GatewayError, match="upstream_allow"):
        policy.check(parse_login("u%smtp.example.com%m"), 465)


def test_names_patterns_and_ports() -> None:
    policy = UpstreamPolicy(("smtp.example.com", "*.mail.example.org", "127.0.0.1:10587",
                             "[::1]:465"))
    assert policy.permits("SMTP.example.com.", 465)
    assert policy.permits("eu.mail.example.org", 587)
    assert not policy.permits("mail.example.org", 587)
    assert not policy.permits("smtp.example.com.evil.net", 587)
    assert not policy.permits("xsmtp.example.com", 587)
    assert policy.permits("127.0.0.1", 10587)
    assert not policy.permits("127.0.0.1", 25)
    assert policy.permits("::1", 465)
    assert not policy.permits("::1", 587)
    policy.check(parse_login("u%eu.mail.example.org:2525%m"), 465)


def test_tls_context_verifies_and_needs_tls12() -> None:
    context = UpstreamPolicy(()).tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_unreadable_ca_file(tmp_path: Path) -> None:
    with pytest.raises(GatewayError, match="ca_file"):
        UpstreamPolicy((), ca_file=str(tmp_path / "missing.pem")).tls_context()
