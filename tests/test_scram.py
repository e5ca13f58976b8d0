"""Passwords reach PostgreSQL only as SCRAM verifiers, stable for a given role and password."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from config.scram import scram_verifier
from edumatrix_db.offline.engine import Recording


def _client_proof_checks(verifier: str, password: str) -> bool:
    """Recompute StoredKey from the password the way a SCRAM client/server does (RFC 5802)."""
    head, keys = verifier.split("$", 1)[1].split("$")
    iterations, salt = head.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


@given(st.text(min_size=1, max_size=40), st.from_regex(r"[a-z_]{1,20}", fullmatch=True))
def test_a_verifier_authenticates_its_password_and_does_not_contain_it(password, role):
    verifier = scram_verifier(role, password)
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert _client_proof_checks(verifier, password)
    assert not _client_proof_checks(verifier, password + "x")


def test_the_same_role_and_password_always_give_the_same_verifier():
    assert scram_verifier("feedback_app", "pw") == scram_verifier("feedback_app", "pw")


def test_another_role_or_password_gets_another_salt():
    salts = {scram_verifier(role, pw).split("$")[1] for role, pw in
             [("feedback_app", "pw"), ("feedback_readonly", "pw"), ("feedback_app", "pw2")]}
    assert len(salts) == 3


def test_pulumi_roles_carry_a_verifier_of_their_generated_password_never_the_password(prod: Recording):
    passwords = {r.name: r.props["result"] for r in prod.of_type("random:index/randomPassword:RandomPassword")}
    roles = [r for r in prod.of_type("postgresql:index/role:Role") if r.props.get("login")]
    assert len(roles) == 27 + 4  # three logins per service, four platform logins
    for role in roles:
        generated = passwords[f"{role.name}-password"]
        assert role.inputs["password"] == "[secret]"
        assert role.props["password"] == scram_verifier(role.props["name"], generated)
        assert generated not in role.props["password"]
