"""GCRA arithmetic, limit parsing, response headers and client-IP resolution."""

from __future__ import annotations

import pytest

from gateway.client_ip import client_ip, parse_networks
from gateway.config import GatewaySettings
from gateway.ratelimit.edge import EdgeLimits
from gateway.ratelimit.headers import rate_limit_headers
from gateway.ratelimit.limiter import LocalLimiter
from gateway.ratelimit.limits import Limit, gcra, parse_limit
from stubs.auth.v1 import auth_pb2
from stubs.portico.gateway.v1 import options_pb2


@pytest.mark.parametrize(
    ("spec", "count", "period"),
    [("100/minute", 100, 60), ("1000/hour", 1000, 3600), (" 10 / second ", 10, 1), ("5/day", 5, 86400)],
)
def test_parse(spec: str, count: int, period: int) -> None:
    assert parse_limit("ip", spec) == Limit("ip", count, period)


@pytest.mark.parametrize("spec", ["0/minute", "10/week", "ten/minute", "10", ""])
def test_parse_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_limit("ip", spec)


def test_gcra_allows_a_burst_of_count_then_one_per_interval() -> None:
    limit = Limit("ip", 5, 60)  # one every 12 s, bursts of 5
    tat, now = 0.0, 1000.0
    remaining = []
    for _ in range(5):
        decision, tat = gcra(limit, tat, now)
        assert decision.allowed
        remaining.append(decision.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    refused, unchanged = gcra(limit, tat, now)
    assert not refused.allowed
    assert unchanged == tat
    assert refused.retry_after == pytest.approx(12.0)
    later, _ = gcra(limit, tat, now + 12.0)
    assert later.allowed


def test_local_limiter_charges_all_limits_or_none() -> None:
    limiter = LocalLimiter()
    tight, loose = Limit("login", 1, 60), Limit("ip", 100, 60)
    first = limiter.check([(loose, "ip:a"), (tight, "login:x")])
    assert all(d.allowed for d in first)
    second = limiter.check([(loose, "ip:a"), (tight, "login:x")])
    assert [d.allowed for d in second] == [True, False]
    # The refused request was not charged to the IP: the next allowed one is only the second charge.
    third = limiter.check([(loose, "ip:a")])
    assert third[0].remaining == first[0].remaining - 1


def test_headers_legacy_and_ietf() -> None:
    limit_ip, limit_user = Limit("ip", 100, 60), Limit("user", 1000, 3600)
    ip, _ = gcra(limit_ip, 0.0, 10.0)
    user, _ = gcra(limit_user, 0.0, 10.0)
    headers = rate_limit_headers([ip, user])
    assert headers["X-RateLimit-Limit"] == "100"
    assert headers["X-RateLimit-Remaining"] == "99"
    assert int(headers["X-RateLimit-Reset"]) > 0
    assert headers["RateLimit-Policy"] == '"ip";q=100;w=60, "user";q=1000;w=3600'
    assert headers["RateLimit"].startswith('"ip";r=99;t=')
    assert "Retry-After" not in headers


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("203.0.113.9", None, "", "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "", "203.0.113.9"),  # untrusted peer: the header is ignored
        ("10.0.0.5", "1.2.3.4", "10.0.0.0/8", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.7", "10.0.0.0/8", "1.2.3.4"),  # right to left, skip proxies
        ("10.0.0.5", "not-an-ip", "10.0.0.0/8", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.6", "10.0.0.0/8", "10.0.0.5"),
    ],
)
def test_client_ip(peer: str, xff: str | None, trusted: str, expected: str) -> None:
    assert client_ip(peer, xff, parse_networks(trusted)) == expected


def _login_key(tenant_id: str, username: str) -> str:
    policy = options_pb2.RoutePolicy()
    policy.rate_limit.limit_class = options_pb2.RATE_LIMIT_CLASS_LOGIN
    policy.rate_limit.key_fields.extend(["tenant_id", "username"])
    request = auth_pb2.LoginRequest(tenant_id=tenant_id, username=username, password="x")  # noqa: S106
    keyed = EdgeLimits(GatewaySettings()).for_request(policy, "10.0.0.1", None, request)
    return next(key for limit, key in keyed if limit.name == "login")


def test_the_login_limit_is_keyed_by_identity_as_the_stores_are() -> None:
    # One budget per account, however its name is spelled: case, sharp s, fullwidth letters, spaces.
    assert _login_key("", "bob") == _login_key("default", "BOB") == "login:{default}:bob"
    assert _login_key("acme", "Stra\u00dfe") == _login_key("acme", " STRASSE ") == "login:{acme}:strasse"
    assert _login_key("acme", "\uff42\uff4f\uff42") == "login:{acme}:bob"
    assert _login_key("acme", "bob") != _login_key("acme", "rob")


def test_local_limiter_stays_bounded_and_keeps_limiting_a_refused_client_through_a_flood() -> None:
    """Redis away, 10 000 distinct client addresses: the fallback holds at most its bound of keys, and
    a client already over its limit (still trying) stays refused rather than being forgotten."""
    limiter = LocalLimiter(max_keys=1000)
    limit = Limit("ip", 5, 3600)
    hot = [(limit, "ip:203.0.113.66")]
    assert all(limiter.check(hot)[0].allowed for _ in range(5))
    refused_all_along = True
    for n in range(10_000):
        limiter.check([(limit, f"ip:10.{n // 65536}.{n // 256 % 256}.{n % 256}")])
        assert len(limiter) <= 1000
        if n % 50 == 0:
            refused_all_along &= not limiter.check(hot)[0].allowed
    assert refused_all_along


def test_local_limiter_drops_entries_whose_time_has_passed() -> None:
    limiter = LocalLimiter(max_keys=10)
    short = Limit("ip", 1000, 1)  # a TAT 1 ms ahead: in the past almost at once
    for n in range(100):
        limiter.check([(short, f"ip:{n}")])
    assert len(limiter) <= 10
