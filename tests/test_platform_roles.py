"""The platform's roles as the prod program declares them (pulumi-postgresql under mocks): the ops login's
secret is exported for the ops runner, every secret is under the CMK, replication is rds_replication."""

from __future__ import annotations

from edumatrix_db.offline.engine import Recording

PLATFORM = "edumatrix:database:PlatformRoles"


def children(prod: Recording, type_token: str) -> list[dict]:
    return [r.props for r in prod.of_type(type_token) if PLATFORM in r.urn]


def test_the_ops_logins_secret_is_a_stack_output_for_the_ops_runner(prod: Recording) -> None:
    (secret,) = [r for r in prod.of_type("aws:secretsmanager/secret:Secret")
                 if r.props["name"] == "edumatrix-prod/db/platform/ops"]
    assert prod.outputs["opsSecretArn"] == secret.props["arn"]
    assert secret.props["kmsKeyId"].startswith("arn:aws:kms:")


def test_every_platform_login_has_a_secret_under_the_cmk_and_a_scram_verifier(prod: Recording) -> None:
    roles = [r for r in children(prod, "postgresql:index/role:Role") if r.get("login")]
    assert sorted(r["name"] for r in roles) == ["edumatrix_cdc_replicator", "edumatrix_data_mover",
                                                "edumatrix_extraction_replicator", "edumatrix_ops"]
    assert all(r["password"].startswith("SCRAM-SHA-256$") for r in roles)
    # each secret is a CredentialSecret's child (components/secrets.py): found by its name
    secrets = {r.props["name"] for r in prod.of_type("aws:secretsmanager/secret:Secret")
               if r.props["name"].startswith("edumatrix-prod/db/platform/")}
    assert secrets == {f"edumatrix-prod/db/platform/{k}"
                       for k in ("ops", "data_mover", "extraction_replicator", "cdc_replicator")}


def test_on_rds_the_replicators_join_rds_replication_instead_of_holding_the_attribute(prod: Recording) -> None:
    roles = {r["name"]: r for r in children(prod, "postgresql:index/role:Role")}
    memberships = {(g["role"], g["grantRole"]) for g in children(prod, "postgresql:index/grantRole:GrantRole")}
    assert not any(r.get("replication") for r in roles.values())
    assert roles["edumatrix_data_mover"]["bypassRowLevelSecurity"] is True
    assert memberships == {
        ("edumatrix_ops", "pg_monitor"),
        ("edumatrix_data_mover", "pg_read_all_data"),
        ("edumatrix_data_mover", "pg_write_all_data"),
        ("edumatrix_extraction_replicator", "rds_replication"),
        ("edumatrix_extraction_replicator", "pg_read_all_data"),
        ("edumatrix_cdc_replicator", "rds_replication"),
    }


def test_the_parameter_group_gives_the_lock_table_headroom_at_the_next_reboot(prod: Recording) -> None:
    (group,) = prod.of_type("aws:rds/parameterGroup:ParameterGroup")[:1]
    params = {p["name"]: p for p in group.props["parameters"]}
    assert params["max_locks_per_transaction"] == {"name": "max_locks_per_transaction", "value": "256",
                                                   "applyMethod": "pending-reboot"}
