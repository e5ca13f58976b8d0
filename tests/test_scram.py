"""Passwords reach PostgreSQL only as SCRAM verifiers, salted at random (never from the password), with the
salt kept stable in state by the pulumi-postgresql renderer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.catalog import load_catalog
from config.scram import SALT_BYTES, scram_verifier, verifier_matches
from edumatrix_db.offline.engine import Recording


def _client_proof_checks(verifier: str, password: str) -> bool:
    """Recompute StoredKey from the password the way a SCRAM client/server does (RFC 5802)."""
    head, keys = verifier.split("$", 1)[1].split("$")
    iterations, salt = head.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def _salt(verifier: str) -> bytes:
    return base64.b64decode(verifier.split("$")[1].split(":")[1])


@given(st.text(min_size=1, max_size=40))
def test_a_verifier_authenticates_its_password_and_no_other(password: str) -> None:
    verifier = scram_verifier(password)
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert _client_proof_checks(verifier, password)
    assert not _client_proof_checks(verifier, password + "x")


# Passwords long enough that they cannot occur in a verifier's base64 by chance (12 of 62 characters).
@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=40))
def test_a_verifier_contains_neither_its_password_nor_its_password_in_base64(password: str) -> None:
    verifier = scram_verifier(password)
    assert password not in verifier
    assert base64.b64encode(password.encode()).decode().rstrip("=")[:16] not in verifier


def test_the_same_password_gets_a_new_random_salt_each_time() -> None:
    first, second = scram_verifier("pw"), scram_verifier("pw")
    assert _salt(first) != _salt(second)
    assert len(_salt(first)) == SALT_BYTES


def test_a_given_salt_makes_the_verifier_reproducible() -> None:
    salt = bytes(range(SALT_BYTES))
    assert scram_verifier("pw", salt=salt) == scram_verifier("pw", salt=salt)
    assert _salt(scram_verifier("pw", salt=salt)) == salt


def test_pulumi_roles_carry_a_verifier_of_their_generated_password_salted_by_their_own_random_id(
        prod: Recording) -> None:
    passwords = {r.name: r.props["result"] for r in prod.of_type("random:index/randomPassword:RandomPassword")}
    salts = {r.name: bytes.fromhex(r.props["hex"]) for r in prod.of_type("random:index/randomId:RandomId")}
    roles = [r for r in prod.of_type("postgresql:index/role:Role") if r.props.get("login")]
    personal = sum(1 for s in load_catalog() if s.holds_personal_data)
    assert len(roles) == 27 + personal + 4  # three logins per service, the GDPR logins, four platform logins
    for role in roles:
        generated, salt = passwords[f"{role.name}-password"], salts[f"{role.name}-scram-salt"]
        assert role.inputs["password"] == "[secret]"
        assert role.props["password"] == scram_verifier(generated, salt=salt)
        assert generated not in role.props["password"]
    assert len({_salt(r.props["password"]) for r in roles}) == len(roles)


# A verifier PostgreSQL 15 itself stored (`CREATE ROLE vector LOGIN PASSWORD '...'` with scram-sha-256, read
# from pg_authid): ours must recognise the server's own format, salt and iterations, not only its own output.
SERVER_VERIFIER = ("SCRAM-SHA-256$4096:0PrSSfrYKYaqUSBKfexewQ==$fnJBWjlqnqADLw8tkVIKTvuB3eZiP+Pqo4hUdTL6MCE=:"
                   "/Hv1kHjGcidEToODpdFazRW/hGXE+/VYLRqH8KQcV/A=")
SERVER_PASSWORD = "correct horse battery staple"


def test_a_verifier_postgresql_stored_matches_its_password() -> None:
    assert verifier_matches(SERVER_VERIFIER, SERVER_PASSWORD)


def test_a_verifier_postgresql_stored_does_not_match_another_password() -> None:
    assert not verifier_matches(SERVER_VERIFIER, SERVER_PASSWORD + " ")


def test_our_verifier_of_the_servers_salt_is_the_servers_verifier() -> None:
    assert scram_verifier(SERVER_PASSWORD, salt=_salt(SERVER_VERIFIER)) == SERVER_VERIFIER


def test_a_verifier_made_with_other_iterations_matches_with_its_own() -> None:
    assert verifier_matches(scram_verifier("pw", iterations=10000), "pw")


@pytest.mark.parametrize("stored", [
    "", "md5" + "0" * 32, "SCRAM-SHA-256$4096:c2FsdA==", "SCRAM-SHA-256$many:0PrSSfrYKYaqUSBKfexewQ==$a:b",
    "SCRAM-SHA-256$4096$a:b", "SCRAM-SHA-256$4096:***$a:b", SERVER_VERIFIER + "$extra",
])
def test_something_that_is_not_a_scram_verifier_matches_no_password(stored: str) -> None:
    assert not verifier_matches(stored, SERVER_PASSWORD)


def test_a_salt_shorter_than_postgresqls_is_refused() -> None:
    with pytest.raises(ValueError, match=f"a SCRAM salt has at least {SALT_BYTES} bytes, got 8"):
        scram_verifier("pw", salt=bytes(8))
