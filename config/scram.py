"""SCRAM-SHA-256 verifiers: what PostgreSQL stores for a password, computed here so that no plain
password is ever sent to the server (where a failing or slow statement would be logged with it).

Both renderers use this: the SQL renderer when it sets a password, the pulumi-postgresql renderer for
`Role.password`. The salt is derived from the role and the password, so the same password always gives
the same verifier (no perpetual diff in `pulumi up`), and a new password gives a new salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def derived_salt(role: str, password: str) -> bytes:
    """16 bytes, stable for (role, password), different for any other pair."""
    message = b"edumatrix-db scram salt:" + role.encode("utf-8")
    return hmac.new(password.encode("utf-8"), message, "sha256").digest()[:16]


def scram_verifier(role: str, password: str, *, iterations: int = ITERATIONS) -> str:
    """The `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` string PostgreSQL accepts as a password."""
    salt = derived_salt(role, password)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"
