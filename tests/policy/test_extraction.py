"""policy/extraction.py: an extraction target at least as secure as the shared instance, slot-lag alarms,
no replication left after the replicating phases, and subscriptions through the platform's replication login.
Recorded resources shaped as components/extraction.py declares them; each test weakens one thing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from config.access import PlatformRoleKind, platform_role_name
from config.extraction import publication_name, subscription_name
from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import evaluate
from policy import extraction
from tests.policy.fixtures import MISSING, REGION, STACK_URN, TAGS, instance, key_arn, parameter_group, resource, run

TARGET_ID = "edumatrix-test-feedback"
TARGET_KEY = key_arn(key="0b6c0f64-3f4e-4a53-9d1a-6d2f0ad9c9a1")
PREFIX = f"extraction target {TARGET_ID} is less secure than the shared instance: "
REPLICATOR = platform_role_name(PlatformRoleKind.EXTRACTION_REPLICATOR)


def target(phase: str = "replicate", **overrides: Any) -> RecordedResource:
    """The feedback service's target: the shared instance's settings, a key and parameter group of its own."""
    props: dict[str, Any] = {"identifier": TARGET_ID, "kmsKeyId": TARGET_KEY,
                             "parameterGroupName": "edumatrix-test-feedback-params",
                             "tags": {**TAGS, extraction.TARGET_TAG: "feedback", extraction.PHASE_TAG: phase}}
    props.update(overrides)
    return instance("edumatrix-test-feedback-db", **props)


def target_group(**parameters: Any) -> RecordedResource:
    group = parameter_group("edumatrix-test-feedback-group", **parameters)
    group.props["name"] = "edumatrix-test-feedback-params"
    return group


def problems(resources: Iterable[RecordedResource], config: dict[str, Any] | None = None) -> list[str]:
    """What extraction-target-as-secure says, without the common prefix (which every message must carry)."""
    messages = [v.message for v in run(resources, policies=[extraction.target_as_secure], config=config)]
    assert all(m.startswith(PREFIX) for m in messages), messages
    return [m.removeprefix(PREFIX) for m in messages]


def stack(target_: RecordedResource | None = None, source_group: RecordedResource | None = None,
          group: RecordedResource | None = None) -> list[RecordedResource]:
    return [instance(), source_group or parameter_group(), target_ or target(), group or target_group()]


def test_a_target_declared_like_the_shared_instance_passes() -> None:
    assert problems(stack()) == []


@pytest.mark.parametrize(("edit", "problem"), [
    ({"storageEncrypted": False}, "storage is not encrypted"),
    ({"kmsKeyId": MISSING}, "storage is not encrypted with a customer-managed key"),
    ({"kmsKeyId": "alias/aws/rds"}, "storage is not encrypted with a customer-managed key"),
    ({"kmsKeyId": key_arn()}, "it shares the shared instance's KMS key instead of a key of its own"),
    ({"publiclyAccessible": True}, "it is publicly accessible"),
    ({"deletionProtection": False}, "deletion protection is off while the shared instance has it"),
    ({"iamDatabaseAuthenticationEnabled": False},
     "IAM database authentication is off while the shared instance has it"),
    ({"performanceInsightsEnabled": False}, "Performance Insights is off while the shared instance has it"),
    ({"multiAz": False}, "it runs in one availability zone while the shared instance is Multi-AZ (the stack file may "
                         "say why: singleAzReason)"),
    ({"backupRetentionPeriod": 7}, "backups are kept 7 days, the shared instance's 30"),
    ({"backupRetentionPeriod": MISSING}, "backups are kept 0 days, the shared instance's 30"),
    ({"monitoringInterval": 0}, "enhanced monitoring every never s, the shared instance's every 60 s"),
    ({"monitoringInterval": MISSING}, "enhanced monitoring every never s, the shared instance's every 60 s"),
    ({"monitoringInterval": 120}, "enhanced monitoring every 120 s, the shared instance's every 60 s"),
    ({"enabledCloudwatchLogsExports": ["postgresql"]}, "it does not export the logs upgrade"),
    ({"enabledCloudwatchLogsExports": MISSING}, "it does not export the logs postgresql, upgrade"),
], ids=lambda v: str(v)[:40])
def test_a_target_weaker_than_the_shared_instance_is_refused_saying_how(edit: dict[str, Any], problem: str) -> None:
    assert problems(stack(target(**edit))) == [problem]


@pytest.mark.parametrize("setting", ["deletionProtection", "iamDatabaseAuthenticationEnabled",
                                     "performanceInsightsEnabled", "multiAz"])
def test_a_setting_the_shared_instance_lacks_is_not_asked_of_the_target(setting: str) -> None:
    off: dict[str, Any] = {setting: False}  # a prop, as the helpers' **overrides take (not their name or phase)
    shared = instance(**off)
    assert problems([shared, parameter_group(), target(**off), target_group()]) == []


def test_a_target_stronger_than_the_shared_instance_passes() -> None:
    stronger = target(backupRetentionPeriod=35, monitoringInterval=15,
                      enabledCloudwatchLogsExports=["postgresql", "upgrade", "iam-db-auth-error"])
    assert problems(stack(stronger, group=target_group(ssl_min_protocol_version="TLSv1.3"))) == []


def test_no_monitoring_on_the_shared_instance_asks_none_of_the_target() -> None:
    shared = instance(monitoringInterval=0)
    assert problems([shared, parameter_group(), target(monitoringInterval=0), target_group()]) == []


def test_a_target_keeping_no_backups_is_refused_when_the_shared_instance_keeps_one_day() -> None:
    shared = instance(backupRetentionPeriod=1)
    assert problems([shared, parameter_group(), target(backupRetentionPeriod=0), target_group()]) == [
        "backups are kept 0 days, the shared instance's 1"]


def test_no_backups_on_the_shared_instance_asks_none_of_the_target() -> None:
    shared = instance(backupRetentionPeriod=MISSING)
    assert problems([shared, parameter_group(), target(backupRetentionPeriod=0), target_group()]) == []


def test_a_single_az_target_the_stack_file_explains_passes() -> None:
    config = {"extraction-target-as-secure": {"singleAzTargets": {TARGET_ID: "a staging copy"}}}
    assert problems(stack(target(multiAz=False)), config=config) == []


def test_a_single_az_reason_for_another_target_does_not_excuse_this_one() -> None:
    config = {"extraction-target-as-secure": {"singleAzTargets": {"edumatrix-test-news": "a staging copy"}}}
    assert problems(stack(target(multiAz=False)), config=config) == [
        "it runs in one availability zone while the shared instance is Multi-AZ (the stack file may say why: "
        "singleAzReason)"]


def test_a_lower_tls_floor_in_the_targets_parameter_group_is_refused() -> None:
    assert problems(stack(group=target_group(ssl_min_protocol_version="TLSv1.1"))) == [
        "its TLS floor is TLSv1.1, the shared instance's TLSv1.2"]


def test_a_target_parameter_group_without_a_tls_floor_is_refused() -> None:
    assert problems(stack(group=target_group(ssl_min_protocol_version=MISSING))) == [
        "its TLS floor is unset, the shared instance's TLSv1.2"]


def test_a_tls_floor_the_policy_does_not_know_counts_as_none() -> None:
    resources = stack(source_group=parameter_group(ssl_min_protocol_version="TLSv1"),
                      group=target_group(ssl_min_protocol_version="TLSv9"))
    assert problems(resources) == ["its TLS floor is TLSv9, the shared instance's TLSv1"]


def test_a_tls_floor_is_read_in_any_case_as_postgresql_reads_it() -> None:
    resources = stack(source_group=parameter_group(ssl_min_protocol_version="TLSv1.2"),
                      group=target_group(ssl_min_protocol_version="tlsv1.3"))
    assert problems(resources) == []


def test_a_target_without_a_parameter_group_of_its_own_has_no_tls_floor() -> None:
    assert problems(stack(target(parameterGroupName="nowhere"))) == [
        "its TLS floor is unset, the shared instance's TLSv1.2"]


def test_a_target_that_does_not_force_tls_where_the_shared_instance_does_is_refused() -> None:
    resources = stack(source_group=parameter_group(**{"rds.force_ssl": "1"}),
                      group=target_group(**{"rds.force_ssl": "0"}))
    assert problems(resources) == ["rds.force_ssl is not 1 while the shared instance forces TLS"]


def test_forcing_tls_on_both_passes() -> None:
    resources = stack(source_group=parameter_group(**{"rds.force_ssl": "1"}),
                      group=target_group(**{"rds.force_ssl": "1"}))
    assert problems(resources) == []


def test_every_weakness_of_a_target_is_reported_not_only_the_first() -> None:
    weak = target(publiclyAccessible=True, deletionProtection=False, backupRetentionPeriod=1)
    assert problems(stack(weak)) == ["it is publicly accessible", "deletion protection is off while the shared "
                                     "instance has it", "backups are kept 1 days, the shared instance's 30"]


def test_the_violation_is_reported_on_the_target() -> None:
    violations = run(stack(target(publiclyAccessible=True)), policies=[extraction.target_as_secure])
    assert [v.urn for v in violations] == [target().urn]


def _not_applicable(resources: list[RecordedResource], policy: Any) -> dict[str, str]:
    _, idle = evaluate(resources, {}, region=REGION, stack_urn=STACK_URN, policies=[policy])
    return idle


def test_the_target_policy_says_so_when_a_stack_has_no_target() -> None:
    assert _not_applicable([instance(), parameter_group()], extraction.target_as_secure) == {
        "extraction-target-as-secure": "no extraction target in this stack"}


def test_the_target_policy_says_so_when_there_is_no_shared_instance_to_compare_with() -> None:
    assert _not_applicable([target(), target_group()], extraction.target_as_secure) == {
        "extraction-target-as-secure": "no shared instance to compare the extraction targets with"}


def test_a_replica_is_not_taken_for_the_shared_instance() -> None:
    replica = instance("edumatrix-test-replica", identifier="edumatrix-test-replica",
                       replicateSourceDb="edumatrix-test", publiclyAccessible=True)
    assert problems([replica, *stack(target(publiclyAccessible=True))]) == ["it is publicly accessible"]


# -- slot lag alarm ------------------------------------------------------------------------------------

def subscription(user: str = REPLICATOR, sslmode: str = "require", name: str | None = None) -> RecordedResource:
    return resource(extraction.SUBSCRIPTION, "feedback-subscription", {
        "name": name or subscription_name("feedback"), "database": "edumatrix",
        "publications": [publication_name("feedback")],
        "conninfo": f"host=edumatrix-test.example port=5432 dbname=edumatrix user={user} sslmode={sslmode}"})


def publication() -> RecordedResource:
    return resource(extraction.PUBLICATION, "feedback-publication", {"publication": publication_name("feedback")})


def slot_alarm(identifier: str = "edumatrix-test", actions: list[str] | None = None,
               metric: str = extraction.SLOT_LAG_METRIC) -> RecordedResource:
    return resource(extraction.METRIC_ALARM, "slot-lag", {
        "metricName": metric, "dimensions": {"DBInstanceIdentifier": identifier},
        "alarmActions": ["arn:aws:sns:us-east-1:123456789012:alarms"] if actions is None else actions})


def slot_messages(resources: list[RecordedResource]) -> list[str]:
    return [v.message for v in run(resources, policies=[extraction.slot_lag_alarm])]


UNWATCHED = ("2 replication resource(s) create a slot on edumatrix-test, but no alarm with actions watches its "
             "OldestReplicationSlotLag: a stalled subscriber would keep WAL until the disk fills")


def test_replication_watched_by_a_slot_lag_alarm_with_actions_passes() -> None:
    assert slot_messages([instance(), publication(), subscription(), slot_alarm()]) == []


def test_replication_without_a_slot_lag_alarm_is_refused() -> None:
    assert slot_messages([instance(), publication(), subscription()]) == [UNWATCHED]


def test_an_unwatched_slot_is_reported_on_the_instance_that_holds_it() -> None:
    shared = instance()
    found = [v.urn for v in run([shared, publication(), subscription()], policies=[extraction.slot_lag_alarm])]
    assert found == [shared.urn]


def test_a_slot_lag_alarm_without_actions_does_not_count() -> None:
    assert slot_messages([instance(), publication(), subscription(), slot_alarm(actions=[])]) == [UNWATCHED]


def test_an_alarm_on_another_metric_does_not_count() -> None:
    assert slot_messages([instance(), publication(), subscription(), slot_alarm(metric="CPUUtilization")]) == [
        UNWATCHED]


def test_a_slot_lag_alarm_on_another_instance_does_not_count() -> None:
    assert slot_messages([instance(), publication(), subscription(), slot_alarm("edumatrix-other")]) == [UNWATCHED]


def test_the_slot_lag_policy_is_not_applicable_without_replication() -> None:
    assert _not_applicable([instance()], extraction.slot_lag_alarm) == {
        "extraction-slot-lag-alarm": "no logical replication declared in this stack"}


# -- no replication left -------------------------------------------------------------------------------

def leftover_messages(phase: str) -> list[str]:
    resources = [instance(), target(phase), publication(), subscription()]
    return [v.message for v in run(resources, policies=[extraction.no_replication_left])]


@pytest.mark.parametrize("phase", ["replicate", "cutover"])
def test_replication_is_allowed_in_the_phases_that_replicate(phase: str) -> None:
    assert leftover_messages(phase) == []


def test_replication_left_after_the_service_moved_is_refused() -> None:
    assert leftover_messages("complete") == [
        "the extraction of feedback is in phase complete, which has no replication, but its subscription is still "
        "declared (its slot would hold WAL on the shared instance)",
        "the extraction of feedback is in phase complete, which has no replication, but its publication is still "
        "declared (its slot would hold WAL on the shared instance)"]


def test_a_target_with_an_unknown_phase_is_refused() -> None:
    assert leftover_messages("halfway") == [f"extraction target {TARGET_ID} has no valid extraction-phase tag"]


def test_replication_of_another_service_is_not_this_targets_leftover() -> None:
    resources = [instance(), target("complete"), subscription(name=subscription_name("news"))]
    assert run(resources, policies=[extraction.no_replication_left]) == []


# -- replication login ---------------------------------------------------------------------------------

def login_messages(sub: RecordedResource) -> list[str]:
    return [v.message for v in run([instance(), sub], policies=[extraction.replication_login])]


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_a_subscription_through_the_replication_login_over_tls_passes(sslmode: str) -> None:
    assert login_messages(subscription(sslmode=sslmode)) == []


def test_a_subscription_as_a_service_login_is_refused() -> None:
    name = subscription_name("feedback")
    assert login_messages(subscription(user="feedback_app")) == [
        f"subscription {name} connects as feedback_app, not the platform's replication login {REPLICATOR}: a login "
        "that may decode the whole database is a platform secret, never a service's"]


@pytest.mark.parametrize("sslmode", ["prefer", "allow", "disable"])
def test_a_subscription_that_does_not_require_tls_is_refused(sslmode: str) -> None:
    assert login_messages(subscription(sslmode=sslmode)) == [
        f"subscription {subscription_name('feedback')} does not require TLS (sslmode {sslmode})"]


def test_a_subscription_without_user_or_sslmode_names_both_as_missing() -> None:
    bare = resource(extraction.SUBSCRIPTION, "bare", {"name": "bare", "conninfo": "host=h dbname=edumatrix"})
    assert login_messages(bare) == [
        f"subscription bare connects as nobody, not the platform's replication login {REPLICATOR}: a login that may "
        "decode the whole database is a platform secret, never a service's",
        "subscription bare does not require TLS (sslmode unset)"]


def test_a_leftover_is_reported_on_the_leftover_resource() -> None:
    sub = subscription()
    violations = run([instance(), target("complete"), sub], policies=[extraction.no_replication_left])
    assert [v.urn for v in violations] == [sub.urn]


def test_a_target_with_an_unknown_phase_is_reported_on_the_target() -> None:
    bad = target("halfway")
    assert [v.urn for v in run([instance(), bad], policies=[extraction.no_replication_left])] == [bad.urn]


def test_each_target_is_judged_after_one_that_may_replicate() -> None:
    replicating = target("replicate")
    news = instance("edumatrix-test-news-db", identifier="edumatrix-test-news", kmsKeyId=TARGET_KEY,
                    tags={**TAGS, extraction.TARGET_TAG: "news", extraction.PHASE_TAG: "complete"})
    left = resource(extraction.SUBSCRIPTION, "news-subscription", {"name": subscription_name("news")})
    resources = [instance(), replicating, news, left]
    assert [v.urn for v in run(resources, policies=[extraction.no_replication_left])] == [left.urn]


def test_each_target_is_judged_after_one_with_an_unknown_phase() -> None:
    unknown = target("halfway")
    news = instance("edumatrix-test-news-db", identifier="edumatrix-test-news", kmsKeyId=TARGET_KEY,
                    tags={**TAGS, extraction.TARGET_TAG: "news", extraction.PHASE_TAG: "complete"})
    left = resource(extraction.SUBSCRIPTION, "news-subscription", {"name": subscription_name("news")})
    found = [v.urn for v in run([instance(), unknown, news, left], policies=[extraction.no_replication_left])]
    assert found == [unknown.urn, left.urn]


def test_the_leftover_policy_says_so_when_a_stack_has_no_target() -> None:
    assert _not_applicable([instance()], extraction.no_replication_left) == {
        "extraction-no-replication-left": "no extraction target in this stack"}


def test_the_login_policy_says_so_when_a_stack_has_no_subscription() -> None:
    assert _not_applicable([instance()], extraction.replication_login) == {
        "extraction-replication-login": "no subscription in this stack"}


def test_a_login_violation_is_reported_on_the_subscription() -> None:
    sub = subscription(user="feedback_app", sslmode="disable")
    violations = run([instance(), sub], policies=[extraction.replication_login])
    assert [v.urn for v in violations] == [sub.urn, sub.urn]


def test_a_conninfo_value_holding_an_equals_sign_is_read_whole() -> None:
    sub = resource(extraction.SUBSCRIPTION, "s", {"name": "s", "conninfo": (
        f"user={REPLICATOR}=x sslmode=require application_name=cdc=feedback")})
    assert login_messages(sub) == [
        f"subscription s connects as {REPLICATOR}=x, not the platform's replication login {REPLICATOR}: a login "
        "that may decode the whole database is a platform secret, never a service's"]
