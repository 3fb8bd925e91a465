from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from raid.errors import ErrorCode, RaidError
from server.tokens import DEFAULT_SECRET, TokenClaims, check_secret, issue_token, verify_token

SECRET = "s3cret"
NOW = 1_800_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload_part: str, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), payload_part.encode(), hashlib.sha256).digest()
    return f"{payload_part}.{b64(mac)}"


def rejected(token: str, now: float = NOW) -> str:
    with pytest.raises(RaidError) as caught:
        verify_token(SECRET, token, now)
    assert caught.value.code is ErrorCode.UNAUTHENTICATED
    return caught.value.message


def test_round_trip() -> None:
    token = issue_token(SECRET, "alice", "admin", 60, NOW)
    assert verify_token(SECRET, token, NOW + 59) == TokenClaims("alice", "admin", NOW + 60)
    assert "=" not in token and token.count(".") == 1


def test_matches_the_documented_format() -> None:
    payload = b64(json.dumps({"sub": "bob", "role": "player", "exp": NOW + 5}).encode())
    assert verify_token(SECRET, signed(payload), NOW) == TokenClaims("bob", "player", NOW + 5)


def test_expired() -> None:
    token = issue_token(SECRET, "alice", "player", 60, NOW)
    assert "expired" in rejected(token, now=NOW + 60)


def test_forged_signature() -> None:
    token = issue_token(SECRET, "alice", "player", 60, NOW)
    assert "signature" in rejected(signed(token.split(".")[0], secret="other"))
    payload, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert "signature" in rejected(f"{payload}.{flipped}")


def test_tampered_payload() -> None:
    token = issue_token(SECRET, "alice", "player", 60, NOW)
    _, mac = token.split(".")
    admin = b64(json.dumps({"sub": "alice", "role": "admin", "exp": NOW + 60}).encode())
    assert "signature" in rejected(f"{admin}.{mac}")


@pytest.mark.parametrize("token", ["", ".", "abc", "a.b.c", "a b.c", "a+b.c/d", "é.x"])
def test_malformed(token: str) -> None:
    rejected(token)


def test_padding_is_refused() -> None:
    token = issue_token(SECRET, "al", "player", 60, NOW)
    payload, mac = token.split(".")
    padded_mac = mac + "=" * (-len(mac) % 4 or 4)
    rejected(f"{payload}.{padded_mac}")
    padded_payload = payload + "=="
    rejected(signed(padded_payload))


def test_signed_but_bad_base64_payload() -> None:
    assert "malformed" in rejected(signed("A"))  # one base64 char cannot encode a byte


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"role": "player", "exp": NOW + 5},
        {"sub": "", "role": "player", "exp": NOW + 5},
        {"sub": "x" * 65, "role": "player", "exp": NOW + 5},
        {"sub": "bob", "role": "root", "exp": NOW + 5},
        {"sub": "bob", "exp": NOW + 5},
        {"sub": "bob", "role": "player"},
        {"sub": "bob", "role": "player", "exp": True},
        {"sub": "bob", "role": "player", "exp": "soon"},
    ],
)
def test_signed_but_invalid_claims(payload: object) -> None:
    rejected(signed(b64(json.dumps(payload).encode())))


def test_signed_but_not_json() -> None:
    assert "malformed" in rejected(signed(b64(b"\xff\xfe not json")))


def test_issue_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        issue_token(SECRET, "alice", "root", 60, NOW)
    with pytest.raises(ValueError):
        issue_token(SECRET, "", "player", 60, NOW)
    with pytest.raises(ValueError):
        issue_token("", "alice", "player", 60, NOW)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_demo_allows_a_weak_secret_on_loopback(host: str) -> None:
    check_secret(DEFAULT_SECRET, True, host)
    check_secret("short", True, host)
    check_secret(DEFAULT_SECRET, True)  # `token --demo`: no listening host


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "raid.example.com"])
def test_demo_refuses_a_weak_secret_beyond_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="only on a loopback host"):
        check_secret(DEFAULT_SECRET, True, host)
    with pytest.raises(ValueError, match="secret of 5 characters"):
        check_secret("short", True, host)
    check_secret("a-strong-secret-0123456789", True, host)
