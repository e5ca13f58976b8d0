"""Renderer 1 (pulumi-postgresql resources, run under the SDK's mocks) says exactly what the access model
says, which is what renderer 2 (edumatrix_db.database.sql) applies: every role, setting, membership, grant and
default privilege of one has its exact counterpart in the other."""

from __future__ import annotations

from typing import Any

import pytest

from components.platform_roles import declare_platform_roles
from components.providers import postgres_provider
from components.service_schema import SecretStore, canonical_from_resources, declare_service_schemas
from config.access import model_for_settings
from config.catalog import load_catalog
from config.loader import load_stack
from edumatrix_db.offline.engine import Recording, run_program


class RecordingMocks:
    """What a program declared, as (type, name, inputs as the engine sees them), from the one engine."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.resources: list[tuple[str, str, dict[str, Any]]] = [(r.type, r.name, r.inputs)
                                                                  for r in recording.resources]

    def of_type(self, suffix: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [r for r in self.resources if r[0].endswith(suffix)]


def record(stack: str, *, secrets: bool) -> RecordingMocks:
    settings = load_stack(stack)

    def program() -> None:
        provider = postgres_provider(
            "pg",
            host="db.example.internal",
            port=5432,
            username="edumatrix_admin",
            password="mock",
            database=settings.instance.database_name,
            sslrootcert="/etc/ssl/rds-global-bundle.pem",
        )
        store = (
            SecretStore(
                kms_key_id="arn:aws:kms:us-east-1:123456789012:key/mock",
                host="db.example.internal",
                port=5432,
                stack_prefix=f"edumatrix-{stack}",
            )
            if secrets
            else None
        )
        schemas = declare_service_schemas(settings, provider, store)
        declare_platform_roles(settings, provider, store, after=list(schemas.values()))

    return RecordingMocks(run_program(stack, {}, settings=settings, program=program))


@pytest.fixture(scope="module")
def local_stack() -> RecordingMocks:
    return record("local", secrets=False)


@pytest.fixture(scope="module")
def dev_stack() -> RecordingMocks:
    return record("dev", secrets=True)


def _diff(a: frozenset[tuple[object, ...]], b: frozenset[tuple[object, ...]]) -> str:
    only_a = "\n  ".join(map(str, sorted(a - b, key=str)))
    only_b = "\n  ".join(map(str, sorted(b - a, key=str)))
    return f"only in pulumi resources:\n  {only_a}\nonly in the access model (SQL renderer):\n  {only_b}"


@pytest.mark.slow  # its fixture, chosen by name, runs the program (tests/conftest.py cannot see that)
@pytest.mark.parametrize("stack", ["local", "dev"])
def test_pulumi_resources_state_exactly_the_access_model(stack: str, request: pytest.FixtureRequest) -> None:
    mocks: RecordingMocks = request.getfixturevalue(f"{stack}_stack")
    declared = canonical_from_resources([(t, i) for t, _, i in mocks.resources])
    model = model_for_settings(load_stack(stack)).canonical()
    assert declared == model, _diff(declared, model)


def test_stack_overrides_reach_the_roles_connection_limits(dev_stack: RecordingMocks) -> None:
    app = next(i for _, _, i in dev_stack.of_type(":Role") if i["name"] == "students_platform_app")
    assert int(app["connectionLimit"]) == 10  # dev overrides poolSize to 10 (catalog: 60)


def test_no_role_lists_memberships_itself_memberships_are_grant_roles(local_stack: RecordingMocks) -> None:
    roles = local_stack.of_type(":Role")
    assert roles
    assert all(not i.get("roles") for _, _, i in roles)
    assert {(i["role"], i["grantRole"]) for _, _, i in local_stack.of_type(":GrantRole")} >= {
        ("feedback_migrator", "feedback_owner")
    }


def test_the_local_stack_declares_no_aws_resources(local_stack: RecordingMocks) -> None:
    assert [t for t, _, _ in local_stack.resources if t.startswith("aws:")] == []


def test_every_login_role_gets_a_secret_encrypted_with_the_cmk(dev_stack: RecordingMocks) -> None:
    secrets = dev_stack.of_type("secretsmanager/secret:Secret")
    personal = sum(1 for s in load_catalog() if s.holds_personal_data)
    logins = 9 * 3 + personal + 4  # three logins per service, the gdpr login, four platform logins
    assert len(secrets) == logins
    assert all(i["kmsKeyId"].startswith("arn:aws:kms:") for _, _, i in secrets)
    assert {"edumatrix-dev/db/feedback/app", "edumatrix-dev/db/platform/ops"} <= {i["name"] for _, _, i in secrets}
    assert len(dev_stack.of_type("secretsmanager/secretVersion:SecretVersion")) == logins


def test_child_names_derive_from_the_component_name(local_stack: RecordingMocks) -> None:
    names = {n for t, n, _ in local_stack.resources if t.startswith("postgresql:") and ":Provider" not in t}
    prefixes = ("edumatrix-db-baseline", "edumatrix-db-platform-",
                *(f"{s}-" for s in load_stack("local").catalog().names))
    assert all(n.startswith(prefixes) for n in names), sorted(n for n in names if not n.startswith(prefixes))


def test_the_provider_is_not_a_superuser_and_verifies_the_server_certificate(
    local_stack: RecordingMocks,
) -> None:
    ((_, _, inputs),) = [r for r in local_stack.resources if r[0] == "pulumi:providers:postgresql"]
    assert inputs["sslmode"] == "verify-full"
    assert inputs["superuser"] in (False, "false")
    assert inputs["sslrootcert"] == "/etc/ssl/rds-global-bundle.pem"


def test_service_schema_components_use_the_type_token(local_stack: RecordingMocks) -> None:
    tokens = {t for t, _, _ in local_stack.resources if t.startswith("edumatrix:")}
    assert tokens == {"edumatrix:database:ServiceSchema", "edumatrix:database:DatabaseBaseline",
                      "edumatrix:database:PlatformRoles"}


def test_every_postgresql_resource_goes_through_the_tls_verifying_provider(local_stack: RecordingMocks) -> None:
    """No resource falls back to a default provider (which would read ambient PG* settings, without TLS)."""
    (provider,) = local_stack.recording.of_type("pulumi:providers:postgresql")
    resources = [r for r in local_stack.recording.resources if r.type.startswith("postgresql:")]
    assert len(resources) > 9 * 4
    assert {r.provider.rsplit("::", 1)[0] if r.provider else None for r in resources} == {provider.urn}
