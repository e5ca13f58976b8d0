"""policy/gdpr.py: the erasure ledger's DynamoDB table and its resource policy. A table declared as
components/erasure_ledger.py declares it passes; each test breaks one thing and reads the exact message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import evaluate
from policy import gdpr
from tests.policy.fixtures import MISSING, REGION, STACK_URN, key_arn, ledger_table_props, resource, run

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/edumatrix-test-gdpr-erasure-ledger"


def table_messages(**overrides: Any) -> list[str]:
    table = resource(gdpr.TABLE, "ledger", ledger_table_props(**overrides))
    return [v.message for v in run([table], policies=[gdpr.dynamodb_table_protected])]


def replica(**overrides: Any) -> dict[str, Any]:
    return {"regionName": "eu-west-1", "kmsKeyArn": key_arn("eu-west-1"), "pointInTimeRecovery": True,
            "deletionProtectionEnabled": True, **overrides}


def test_the_ledger_as_declared_passes() -> None:
    assert table_messages() == []


NOT_CMK = "the table is not encrypted with a customer-managed key (serverSideEncryption.kmsKeyArn)"


@pytest.mark.parametrize("sse", [{"enabled": False, "kmsKeyArn": key_arn()}, {"enabled": True},
                                 {"enabled": True, "kmsKeyArn": "alias/aws/dynamodb"}, MISSING])
def test_a_table_without_a_customer_managed_key_is_refused(sse: Any) -> None:
    assert table_messages(serverSideEncryption=sse) == [NOT_CMK]


@pytest.mark.parametrize("pitr", [{"enabled": False}, MISSING])
def test_a_table_without_point_in_time_recovery_is_refused(pitr: Any) -> None:
    assert table_messages(pointInTimeRecovery=pitr) == [
        "point-in-time recovery is off (pointInTimeRecovery.enabled)"]


def test_a_table_without_deletion_protection_is_refused() -> None:
    assert table_messages(deletionProtectionEnabled=False) == ["deletion protection is off (deletionProtectionEnabled)"]


STREAMS = ("a table with replicas needs streamEnabled: true and streamViewType NEW_AND_OLD_IMAGES (AWS turns the "
           "streams on; hashicorp/terraform-provider-aws#43625)")


@pytest.mark.parametrize("edit", [{"streamEnabled": False}, {"streamViewType": "KEYS_ONLY"}])
def test_replicas_need_streams_of_both_images(edit: dict[str, Any]) -> None:
    assert table_messages(**edit) == [STREAMS]


def test_a_table_without_replicas_needs_no_streams() -> None:
    assert table_messages(replicas=[], streamEnabled=False) == []


@pytest.mark.parametrize("key", [MISSING, "alias/aws/dynamodb"])
def test_a_replica_without_a_customer_managed_key_is_refused(key: Any) -> None:
    edit = replica(kmsKeyArn=key) if key is not MISSING else {k: v for k, v in replica().items() if k != "kmsKeyArn"}
    assert table_messages(replicas=[edit]) == ["the replica in eu-west-1 has no customer-managed key (kmsKeyArn)"]


def test_a_replica_under_another_regions_key_is_refused() -> None:
    assert table_messages(replicas=[replica(kmsKeyArn=key_arn("us-east-1"))]) == [
        "the replica in eu-west-1 names a key of us-east-1: KMS keys are regional"]


def test_a_replica_key_named_without_an_arn_is_not_judged_by_region() -> None:
    assert table_messages(replicas=[replica(kmsKeyArn="mrk-0123456789abcdef0123456789abcdef")]) == []


@pytest.mark.parametrize("edit", [{"pointInTimeRecovery": False}, {"deletionProtectionEnabled": False},
                                  {"pointInTimeRecovery": MISSING}])
def test_a_replica_without_recovery_or_protection_is_refused(edit: dict[str, Any]) -> None:
    changed = {k: v for k, v in replica(**edit).items() if v is not MISSING}
    assert table_messages(replicas=[changed]) == [
        "the replica in eu-west-1 lacks point-in-time recovery or deletion protection"]


@pytest.mark.parametrize(("arn", "region"), [
    (key_arn("eu-west-1"), "eu-west-1"), ("arn:aws:kms:eu-west-1", None), ("mrk-1:a:b:c:d", None),
    (None, None), ("", None)])
def test_the_region_of_an_arn_is_its_fourth_field(arn: Any, region: str | None) -> None:
    assert gdpr._region_of(arn) == region


# -- the ledger's resource policy ---------------------------------------------------------------------

def policy_messages(document: Any, arn: str = TABLE_ARN) -> list[str]:
    text = document if isinstance(document, str) else json.dumps(document)
    res = resource(gdpr.RESOURCE_POLICY, "ledger-policy", {"resourceArn": arn, "policy": text})
    return [v.message for v in run([res], policies=[gdpr.dynamodb_resource_policy_scoped])]


def statement(resource_: Any, sid: str | None = "AppendOnly") -> dict[str, Any]:
    out = {"Effect": "Deny", "Principal": "*", "Action": "dynamodb:DeleteItem", "Resource": resource_}
    return {**out, "Sid": sid} if sid else out


def test_a_policy_naming_its_table_its_indexes_and_stream_passes() -> None:
    document = {"Statement": [statement([TABLE_ARN, f"{TABLE_ARN}/index/by_service"]),
                              statement(f"{TABLE_ARN}/stream/2026")]}
    assert policy_messages(document) == []


def test_a_single_statement_not_in_a_list_is_read_too() -> None:
    assert policy_messages({"Statement": statement("arn:aws:dynamodb:us-east-1:1:table/other")}) == [
        f"statement AppendOnly names arn:aws:dynamodb:us-east-1:1:table/other: a table's resource policy may only "
        f"name the table ({TABLE_ARN}) and its indexes and streams"]


def test_a_table_whose_name_only_starts_like_this_one_is_another_table() -> None:
    other = f"{TABLE_ARN}-copy"
    assert policy_messages({"Statement": [statement(other, sid=None)]}) == [
        f"statement ? names {other}: a table's resource policy may only name the table ({TABLE_ARN}) and its "
        "indexes and streams"]


def test_a_policy_over_twenty_kilobytes_is_refused() -> None:
    document = {"Statement": [statement(TABLE_ARN)], "Padding": "x" * (gdpr.MAX_RESOURCE_POLICY_BYTES)}
    size = len(json.dumps(document).encode())
    assert policy_messages(document) == [f"the policy is {size} bytes: DynamoDB takes at most 20 KB"]


def test_a_policy_of_exactly_twenty_kilobytes_passes() -> None:
    document = {"Statement": [statement(TABLE_ARN)], "Padding": ""}
    document["Padding"] = "x" * (gdpr.MAX_RESOURCE_POLICY_BYTES - len(json.dumps(document).encode()))
    assert len(json.dumps(document).encode()) == gdpr.MAX_RESOURCE_POLICY_BYTES
    assert policy_messages(document) == []


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_a_policy_that_is_not_a_json_document_is_refused(text: str) -> None:
    assert policy_messages(text) == ["the policy is not a JSON policy document"]


def test_a_policy_not_known_before_the_table_exists_is_left_alone() -> None:
    res = resource(gdpr.RESOURCE_POLICY, "ledger-policy", {"resourceArn": TABLE_ARN})
    assert run([res], policies=[gdpr.dynamodb_resource_policy_scoped]) == []


def test_a_policy_of_a_table_whose_arn_is_unknown_names_nothing_as_its_own() -> None:
    assert len(policy_messages({"Statement": [statement("XXXX")]}, arn="")) == 1


# -- a ledger wherever personal data lives ------------------------------------------------------------------

def ledger_verdict(*resources: RecordedResource) -> tuple[list[str], dict[str, str]]:
    violations, idle = evaluate(list(resources), {}, region=REGION, stack_urn=STACK_URN,
                                policies=[gdpr.erasure_ledger_declared])
    return [v.message for v in violations], idle


def gdpr_login(name: str = "feedback_gdpr", login: bool = True) -> RecordedResource:
    return resource(gdpr.PG_ROLE, name, {"name": name, "login": login})


AWS_THING = resource("aws:kms/key:Key", "key", {})


def test_personal_data_without_a_ledger_is_refused_naming_its_logins() -> None:
    assert ledger_verdict(gdpr_login("news_gdpr"), gdpr_login(), AWS_THING)[0] == [
        "services hold personal data (feedback_gdpr, news_gdpr) but no erasure ledger is declared: a restore would "
        "bring erased people back"]


def test_personal_data_with_the_ledger_passes() -> None:
    ledger = resource(gdpr.TABLE, "ledger", ledger_table_props())
    assert ledger_verdict(gdpr_login(), ledger) == ([], {})


def test_a_table_for_something_else_is_not_the_ledger() -> None:
    other = resource(gdpr.TABLE, "other", ledger_table_props(tags={"purpose": "sessions"}))
    assert len(ledger_verdict(gdpr_login(), other)[0]) == 1


def test_a_stack_without_gdpr_logins_has_nothing_to_check() -> None:
    assert ledger_verdict(gdpr_login("feedback_app"), gdpr_login("feedback_gdpr", login=False), AWS_THING) == (
        [], {"gdpr-erasure-ledger-declared": "no service holds personal data in this stack (no <service>_gdpr "
                                             "login)"})


def test_a_local_stack_keeps_its_ledger_in_a_file() -> None:
    assert ledger_verdict(gdpr_login()) == (
        [], {"gdpr-erasure-ledger-declared": "a stack without AWS resources (local): the ledger is a file "
                                             "(docs/gdpr.md)"})
