"""SCRAM-SHA-256 verifiers: what PostgreSQL stores for a password, computed here so that no plain
password is ever sent to the server (where a failing or slow statement would be logged with it).

Both renderers use this: the SQL renderer when it sets a password, the pulumi-postgresql renderer for
`Role.password`. The salt is random, as PostgreSQL's own is (RFC 5802 asks for a per-user random salt), and
never derived from the password: a verifier then reveals nothing about whether two roles share a password.
The pulumi-postgresql renderer keeps its salt stable in state (a `RandomId` per login role), so the same
password keeps the same verifier and `pulumi up` shows no change; the SQL renderer sets a password once, with a
fresh salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` string PostgreSQL accepts as a password.

    Without `salt`, a fresh random one."""
    salt = new_salt() if salt is None else salt
    if len(salt) < SALT_BYTES:
        raise ValueError(f"a SCRAM salt has at least {SALT_BYTES} bytes, got {len(salt)}")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def verifier_matches(verifier: str, password: str) -> bool:
    """Whether a stored verifier (PostgreSQL's `rolpassword`) is one of `password`: recomputed with its own
    iterations and salt, since salts are random."""
    try:
        head, _keys = verifier.split("$", 1)[1].split("$")
        iterations, salt = head.split(":")
        expected = scram_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    except (IndexError, ValueError):
        return False
    return hmac.compare_digest(expected, verifier)
