"""Signed session tokens (PROTOCOL.md, "Session").

``base64url(json payload) + "." + base64url(HMAC-SHA256(secret, payload part))``, both
parts unpadded; the MAC covers the payload part exactly as it appears in the token. The
signature is checked before the payload is parsed, so only signed bytes reach ``json``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import math
import re
from dataclasses import dataclass

from raid.errors import ErrorCode, RaidError
from raid.limits import MAX_ID_LEN

ROLES = frozenset({"player", "admin"})
MAX_USER_ID_LEN = MAX_ID_LEN  # a token's subject becomes the user_id
_B64URL = re.compile(r"[A-Za-z0-9_-]+")  # unpadded base64url, nothing else


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    role: str  # "player" or "admin"
    exp: float  # unix seconds


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url: any padding or foreign character is malformed."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload_part: str) -> str:
    digest = hmac.new(secret.encode(), payload_part.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(digest)


def _unauthenticated(reason: str) -> RaidError:
    return RaidError(ErrorCode.UNAUTHENTICATED, reason)


def _check_secret(secret: str) -> None:
    if not secret:
        raise ValueError("the token secret must not be empty")


def issue_token(secret: str, user_id: str, role: str, ttl_s: float, now: float) -> str:
    """A token for ``user_id`` with ``role``, valid until ``now + ttl_s``."""
    _check_secret(secret)
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}")
    if not 1 <= len(user_id) <= MAX_USER_ID_LEN:
        raise ValueError(f"user_id must have 1-{MAX_USER_ID_LEN} characters")
    payload = json.dumps({"sub": user_id, "role": role, "exp": now + ttl_s}, separators=(",", ":"))
    payload_part = _b64encode(payload.encode())
    return f"{payload_part}.{_mac(secret, payload_part)}"


def verify_token(secret: str, token: str, now: float) -> TokenClaims:
    """The claims of a valid, unexpired token, else ``RaidError(unauthenticated)``."""
    _check_secret(secret)
    payload_part, dot, mac_part = token.partition(".")
    if not dot or not _B64URL.fullmatch(payload_part) or not _B64URL.fullmatch(mac_part):
        raise _unauthenticated("malformed token")
    if not hmac.compare_digest(_mac(secret, payload_part), mac_part):
        raise _unauthenticated("bad token signature")
    try:
        payload = json.loads(_b64decode(payload_part))
    except (ValueError, binascii.Error):
        raise _unauthenticated("malformed token payload") from None
    if not isinstance(payload, dict):
        raise _unauthenticated("malformed token payload")
    user_id, role, exp = payload.get("sub"), payload.get("role"), payload.get("exp")
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= MAX_USER_ID_LEN:
        raise _unauthenticated("token has no valid subject")
    if role not in ROLES:
        raise _unauthenticated("token has an unknown role")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        raise _unauthenticated("token has no valid expiry")
    if exp <= now:
        raise _unauthenticated("token expired")
    return TokenClaims(user_id=user_id, role=str(role), exp=float(exp))


DEFAULT_SECRET = "change-me"
"""The shipped ``[server] secret``: fine for ``--demo``, refused anywhere else."""

MIN_SECRET_LEN = 16


def check_secret(secret: str, demo: bool, host: str | None = None) -> None:
    """Refuse the default or a short secret outside ``--demo`` (one rule for serve and token),
    and under ``--demo`` too when the server listens on ``host`` beyond loopback: anyone
    who can reach it could sign an operator token with the published default.

    Raises ``ValueError`` with the line that explains how to set one.
    """
    if demo and (host is None or is_loopback(host)):
        return
    how = (
        f"set RAID_SECRET (or [server] secret in the config) to a random string of at least "
        f"{MIN_SECRET_LEN} characters, e.g. RAID_SECRET=$(openssl rand -hex 32)"
    )
    if demo:
        how = f"--demo allows a weak secret only on a loopback host (127.0.0.1, ::1): {how}"
        where = f" on --host {host or '(all interfaces)'}"
    else:
        how += ", or use --demo"
        where = ""
    if secret == DEFAULT_SECRET:
        raise ValueError(f"refusing the default secret {DEFAULT_SECRET!r}{where}: {how}")
    if len(secret) < MIN_SECRET_LEN:
        raise ValueError(f"refusing a secret of {len(secret)} characters{where}: {how}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to any interface
        return False
