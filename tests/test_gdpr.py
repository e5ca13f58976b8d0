"""GDPR without a database: the catalog's marks, the ledger stores (SQLite; DynamoDB through botocore's Stubber),
the stack's credentials, the erasure ledger as the program declares it, and its policies (docs/gdpr.md).
The real-server behaviour is in tests/pg/test_gdpr.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from components.secrets import service_secret_name
from config.catalog import load_catalog, parse_catalog
from config.errors import ConfigError
from edumatrix_db.offline.engine import Recording
from edumatrix_db.ops import gdpr, ledger
from edumatrix_db.ops.ledger import DynamoLedger, FileLedger
from policy import gdpr as gdpr_policy
from tests.policy.fixtures import by_policy, key_arn, ledger_table_props, resource, run

TABLE = gdpr_policy.TABLE
SUBJECT = "3f0c5d7e-2b1a-4c9d-8e7f-6a5b4c3d2e1f"


def test_the_catalog_marks_which_services_hold_personal_data() -> None:
    holding = {s.name for s in load_catalog() if s.holds_personal_data}
    assert holding == {"students_platform", "edu_matrix_hub", "courses_platform", "freelancing", "jobs_portal",
                       "community_rooms", "feedback"}


def test_a_personal_table_must_follow_the_services_naming_convention() -> None:
    entry = {"name": "feedback", "title": "F", "pool_size": 1, "readonly_pool_size": 1, "statement_timeout_ms": 100,
             "owner_team": "t", "data_classification": "internal", "personal_tables": ["students_platform_student"]}
    with pytest.raises(ConfigError, match=r"services\[feedback\]\.personal_tables.*feedback_<entity>"):
        parse_catalog({"services": [entry]}, "services.yaml")


def test_the_contract_function_names_follow_the_spec() -> None:
    assert load_catalog().get("feedback").contract_functions == ("feedback_fn_erase_subject",
                                                                 "feedback_fn_export_subject")


def test_a_file_ledger_resumes_the_open_erasure_and_forgets_completed_ones(tmp_path: Path) -> None:
    store = FileLedger(tmp_path / "ledger.sqlite")
    request = ledger.new_request(store, ledger.ERASE, SUBJECT, ["a", "b"], "tester")
    ledger.confirmed(store, request, "a", {"t": 1})
    assert ledger.open_erasure(store, SUBJECT) == ledger.requests(store)[0]
    assert ledger.open_erasure(store, SUBJECT).remaining == ("b",)  # type: ignore[union-attr]
    ledger.confirmed(store, request, "b", {"t": 0})
    assert ledger.open_erasure(store, SUBJECT) is None


def test_a_ledger_record_cannot_be_written_twice(tmp_path: Path) -> None:
    store = FileLedger(tmp_path / "ledger.sqlite")
    request = ledger.new_request(store, ledger.ERASE, SUBJECT, ["a"], "tester")
    ledger.confirmed(store, request, "a", {})
    with pytest.raises(Exception, match="UNIQUE"):
        ledger.confirmed(store, request, "a", {})


def test_the_dynamodb_ledger_appends_with_a_condition_and_reads_every_page() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    item = {"request_id": {"S": "r1"}, "record": {"S": "REQUEST"},
            "body": {"S": json.dumps({"action": "erase", "subject": SUBJECT, "services": ["a"],
                                      "requested_at": "t", "requested_by": "me"})}}
    with Stubber(client) as stub:
        stub.add_response("put_item", {}, {"TableName": "ledger", "Item": ANY,
                                           "ConditionExpression": "attribute_not_exists(request_id)"})
        stub.add_response("scan", {"Items": [item], "LastEvaluatedKey": {"request_id": {"S": "r1"}}},
                          {"TableName": "ledger", "ConsistentRead": True})
        stub.add_response("scan", {"Items": []}, {"TableName": "ledger", "ConsistentRead": True,
                                                  "ExclusiveStartKey": {"request_id": {"S": "r1"}}})
        store = DynamoLedger("ledger", client)
        store.append("r0", "REQUEST", {"x": 1})
        (found,) = ledger.requests(store)
        stub.assert_no_pending_responses()
    assert (found.subject, found.services) == (SUBJECT, ("a",))


def test_stack_credentials_come_from_each_gdpr_logins_secret_with_tls_verified() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    secret = {"username": "feedback_gdpr", "password": "pw", "host": "db.example", "port": 5432,
              "dbname": "edumatrix"}
    name = service_secret_name("edumatrix-prod", "feedback", "gdpr")
    with Stubber(client) as stub:
        stub.add_response("get_secret_value", {"SecretString": json.dumps(secret)}, {"SecretId": name})
        targets = gdpr.stack_targets("edumatrix-prod", ["feedback"], client, "/ca.pem")
    assert "sslmode=verify-full" in targets["feedback"]
    assert "sslrootcert=/ca.pem" in targets["feedback"]
    assert "user=feedback_gdpr" in targets["feedback"]


def test_the_orchestrator_refuses_a_service_without_personal_data() -> None:
    from config.access import build_access_model

    with pytest.raises(gdpr.GdprError, match="statistics hold no personal data"):
        gdpr.personal_services(build_access_model(load_catalog()), ["statistics"])


def _ledger_table(prod: Recording) -> dict[str, Any]:
    (table,) = prod.of_type(TABLE)
    return table.props


def test_prod_declares_the_erasure_ledger_under_the_cmk_with_a_replica_per_region(prod: Recording) -> None:
    table = _ledger_table(prod)
    assert table["name"] == "edumatrix-prod-gdpr-erasure-ledger"
    assert table["serverSideEncryption"]["kmsKeyArn"].startswith("arn:aws:kms:")
    assert (table["pointInTimeRecovery"]["enabled"], table["deletionProtectionEnabled"]) == (True, True)
    assert [r["regionName"] for r in table["replicas"]] == ["eu-west-1"]
    assert prod.outputs["erasureLedgerTable"] == table["name"]


def test_the_ledger_is_append_only_by_its_resource_policy(prod: Recording) -> None:
    (policy,) = prod.of_type("aws:dynamodb/resourcePolicy:ResourcePolicy")
    (statement,) = json.loads(policy.props["policy"])["Statement"]
    assert (statement["Effect"], statement["Principal"]) == ("Deny", "*")
    assert set(statement["Action"]) == {"dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:DeleteTable"}


def test_prod_counts_personal_data_reads_per_service_from_its_postgresql_log(prod: Recording) -> None:
    filters = prod.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    reads = {f.props["metricTransformation"]["name"]: f.props for f in filters
             if f.props["metricTransformation"]["name"].startswith("PersonalDataReads.")}
    holding = sorted(s.name for s in load_catalog() if s.holds_personal_data)
    assert sorted(reads) == [f"PersonalDataReads.{s}" for s in holding]
    feedback = reads["PersonalDataReads.feedback"]
    assert feedback["logGroupName"] == "/aws/rds/instance/edumatrix-prod/postgresql"
    assert {r["metricTransformation"]["namespace"] for r in reads.values()} == {"EduMatrix/Database/edumatrix-prod"}
    assert feedback["pattern"] == '"AUDIT: OBJECT," ",READ," ",feedback_schema."'


def test_the_ledger_table_as_declared_passes() -> None:
    assert run([resource(TABLE, "ledger", ledger_table_props())], policies=gdpr_policy.POLICIES) == []


@pytest.mark.parametrize("broken", [
    {"serverSideEncryption": {"enabled": True}},
    {"pointInTimeRecovery": {"enabled": False}},
    {"deletionProtectionEnabled": False},
    {"streamEnabled": None},
    {"replicas": [{"regionName": "eu-west-1", "kmsKeyArn": key_arn(), "pointInTimeRecovery": True,
                   "deletionProtectionEnabled": True}]},
], ids=["aws-owned-key", "no-pitr", "deletable", "replicas-without-streams", "replica-key-of-another-region"])
def test_an_unprotected_ledger_table_is_refused(broken: dict[str, Any]) -> None:
    violations = run([resource(TABLE, "ledger", ledger_table_props(**broken))], policies=gdpr_policy.POLICIES)
    assert list(by_policy(violations)) == ["dynamodb-table-protected"]


def test_personal_data_without_a_ledger_is_refused_on_aws() -> None:
    login = resource("postgresql:index/role:Role", "feedback-gdpr", {"name": "feedback_gdpr", "login": True})
    key = resource("aws:kms/key:Key", "key", {"enableKeyRotation": True})
    violations = run([login, key], policies=gdpr_policy.POLICIES)
    assert list(by_policy(violations)) == ["gdpr-erasure-ledger-declared"]


def test_a_region_stack_uses_its_primarys_ledger_and_credentials() -> None:
    from config.loader import load_stack

    region = load_stack("prod-eu-west-1")
    assert (region.erasure_ledger_table, region.credentials_prefix) == ("edumatrix-prod-gdpr-erasure-ledger",
                                                                        "edumatrix-prod")
