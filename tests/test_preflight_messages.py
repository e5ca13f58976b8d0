"""The exact words of config/preflight.py: what RDS would refuse of the instance settings and the master password,
as a person reads it in CI (key, message, fix), one row per rule. Each row breaks one setting of a valid dev stack
and calls the rule itself (tests/stack_settings.py), so the table runs in milliseconds."""

from __future__ import annotations

from typing import Any, TypeAlias

import pytest

from config.errors import Problem
from config.preflight import instance_problems, preflight_problems, storage_problems
from tests.stack_settings import SOURCE, local_settings, stack_settings

NS = "edumatrix-db"
# storage_problems' arguments: (storage type, allocated GiB, IOPS, throughput in MiB/s).
Storage: TypeAlias = tuple[str, int, int | None, int | None]
RETIRED = "(RDS retired the other retention periods with the Performance Insights console)"
TLS13 = ('TLSv1.3 is not offered by RDS for postgres15 (AWS: "RDS for PostgreSQL 16 and later supports TLS version '
         '1.3")')
TLS13_FIX = ("use TLSv1.2 (the default), or engineVersion 16 for TLSv1.3; clients such as Prisma cannot connect to a "
             "TLS-1.3-only server (prisma/orm#24943)")


def said(problems: list[Problem]) -> list[tuple[str, str, str]]:
    assert all(p.source == SOURCE for p in problems), problems
    return [(p.key, p.message, p.fix) for p in problems]


@pytest.mark.parametrize(("sections", "expected"), [
    pytest.param({"instance": {"masterPassword": "rds-managed"}, "replicas": {"count": 1}}, [(
        f"{NS}:instance.masterPassword",
        'RDS cannot create read replicas of an instance whose master password it manages ("Creating read replicas '
        'for source instance ... where ManageMasterUserPassword is enabled is not supported")',
        "remove masterPassword (the default, platform, keeps the password in a secret of the platform's)")],
        id="rds-managed-password-with-read-replicas"),
    pytest.param({"instance": {"masterPassword": "rds-managed"}, "secrets": {"replicaRegions": ["eu-west-1"]}}, [(
        f"{NS}:instance.masterPassword",
        "region stacks replicate an instance whose master password RDS manages: RDS refuses that",
        "remove masterPassword (default platform)")], id="rds-managed-password-with-region-stacks"),
    pytest.param({"instance": {"performanceInsightsRetentionDays": 465}}, [(
        f"{NS}:instance.performanceInsightsRetentionDays",
        f"Database Insights standard mode keeps 7 days, not 465 {RETIRED}", "set databaseInsightsMode: advanced")],
        id="advanced-retention-in-standard-mode-is-told-the-mode"),
    pytest.param({"instance": {"databaseInsightsMode": "advanced"}}, [(
        f"{NS}:instance.performanceInsightsRetentionDays",
        f"Database Insights advanced mode keeps 465 days, not 7 {RETIRED}", "set databaseInsightsMode: standard")],
        id="standard-retention-in-advanced-mode-is-told-the-mode"),
    pytest.param({"instance": {"performanceInsightsRetentionDays": 31}}, [(
        f"{NS}:instance.performanceInsightsRetentionDays",
        f"Database Insights standard mode keeps 7 days, not 31 {RETIRED}", "remove the key (default 7)")],
        id="retired-retention-period-is-told-to-go"),
    pytest.param({"instance": {"engineVersion": "17"}}, [(
        f"{NS}:instance.engineVersion",
        "no parameter table for postgres17 is checked in (postgres15, postgres16 are); build one with "
        "scripts/rds_parameter_table.py --major 17", "use engineVersion 15 or 16, or check in that family's table")],
        id="engine-version-without-a-parameter-table"),
    pytest.param({"instance": {"parameters": {"shared_bufers": "1"}}}, [(
        f"{NS}:instance.parameters.shared_bufers", "'shared_bufers' is not a postgres15 parameter on RDS",
        "see config/rds_parameters/postgres15.json for the names RDS accepts")], id="parameter-the-family-lacks"),
    pytest.param({"instance": {"parameters": {"log_statement": "loud"}}}, [(
        f"{NS}:instance.parameters.log_statement", "log_statement takes one of none, ddl, mod, all, not 'loud'",
        "use an allowed value")], id="parameter-value-rds-refuses"),
    pytest.param({"instance": {"sslMinProtocolVersion": "TLSv1.3"}}, [(
        f"{NS}:instance.sslMinProtocolVersion", TLS13, TLS13_FIX)], id="tls-1.3-on-postgresql-15"),
])
def test_preflight_tells_what_rds_refuses_in_these_words(
        sections: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert said(preflight_problems(stack_settings(**sections))) == expected


def test_the_local_stack_is_told_it_keeps_no_secrets_in_aws() -> None:
    settings = local_settings(secrets={"replicaRegions": ["eu-west-1"]})
    assert said(preflight_problems(settings)) == [
        (f"{NS}:secrets.replicaRegions", "the local stack keeps no secrets in AWS", "remove the key")]


@pytest.mark.parametrize("sections", [
    pytest.param({"instance": {"masterPassword": "rds-managed"}}, id="rds-managed-password-without-replicas"),
    pytest.param({"instance": {"sslMinProtocolVersion": "TLSv1.3", "engineVersion": "16"}},
                 id="tls-1.3-on-postgresql-16"),
    pytest.param({"instance": {"databaseInsightsMode": "advanced", "performanceInsightsRetentionDays": 465}},
                 id="advanced-mode-with-its-retention"),
])
def test_preflight_accepts_what_rds_takes(sections: dict[str, Any]) -> None:
    assert preflight_problems(stack_settings(**sections)) == []


def test_the_local_stack_may_ask_for_tls_1_3_on_postgresql_15() -> None:
    """The local server is not RDS: its TLS floor is its own."""
    assert preflight_problems(local_settings(instance={"sslMinProtocolVersion": "TLSv1.3"})) == []


def test_a_parameter_set_to_its_rds_default_is_told_to_be_left_out() -> None:
    """Today every parameter with a known RDS default is one the platform sets (the settings refuse it in
    `parameters`); the rule still words it for the next such row of the table, so the instance is built past that
    validator."""
    settings = stack_settings().instance.model_copy(update={"parameters": {"rds.force_ssl": "1"}})
    assert said(instance_problems(SOURCE, settings, local=False)) == [(
        f"{NS}:instance.parameters.rds.force_ssl",
        "rds.force_ssl=1 is the postgres15 default on RDS: the provider never reads it back, so every preview shows "
        "a change (hashicorp/terraform-provider-aws#23335); leave it out", "remove rds.force_ssl from parameters")]


GP3_FIXED = ("gp3 below 400 GiB has a fixed baseline (3,000 IOPS, 125 MiB/s); RDS refuses it (\"You can't specify "
             "IOPS or storage throughput for engine postgres and a storage size less than 400\")")


def iops_ratio(iops: int, ratio: str) -> str:
    return (f"{iops} IOPS is {ratio} per GiB; RDS refuses it (\"Invalid iops to max storage (GB) ratio for engine name "
            "postgres and storage type io1\")")


@pytest.mark.parametrize(("storage", "expected"), [
    pytest.param(("io1", 100, None, None), [(
        "storageType", "storageType io1 needs provisioned IOPS; RDS refuses it without",
        f"set {NS}:instance.iops between 50 and 5000 (0.5-50 per GiB of 100 GiB), or use gp3")],
        id="provisioned-iops-storage-without-iops"),
    pytest.param(("io1", 100, 49, None), [("iops", iops_ratio(49, "0.49"), "use 50-5000 for 100 GiB")],
                 id="below-half-an-iops-per-gib"),
    pytest.param(("io1", 100, 5001, None), [("iops", iops_ratio(5001, "50.01"), "use 50-5000 for 100 GiB")],
                 id="above-50-iops-per-gib"),
    pytest.param(("io2", 50, 1000, None), [
        ("allocatedStorageGb", "io2 starts at 100 GiB", "set allocatedStorageGb >= 100, or storageType gp3")],
        id="provisioned-iops-storage-below-100-gib"),
    pytest.param(("io1", 100, 1000, 125), [
        ("storageThroughputMibps", "throughput is set only for gp3, not io1", "remove storageThroughputMibps")],
        id="throughput-of-provisioned-iops-storage"),
    pytest.param(("gp3", 399, 3000, 125), [
        ("iops", GP3_FIXED, "remove iops, or raise allocatedStorageGb to 400 or more"),
        ("storageThroughputMibps", GP3_FIXED, "remove storageThroughputMibps, or raise allocatedStorageGb to 400 or "
         "more")], id="gp3-iops-and-throughput-below-400-gib"),
    pytest.param(("gp3", 400, 11999, 499), [
        ("iops", "11999 is below gp3's baseline of 12000 IOPS from 400 GiB", "remove iops or use 12000 or more"),
        ("storageThroughputMibps", "499 MiB/s is below gp3's baseline of 500 from 400 GiB",
         "remove it or use 500 or more")], id="gp3-below-its-baseline-from-400-gib"),
])
def test_storage_rds_refuses_is_told_in_these_words(
        storage: Storage, expected: list[tuple[str, str, str]]) -> None:
    assert storage_problems(*storage) == expected


@pytest.mark.parametrize("storage", [
    pytest.param(("io1", 2000, 1000, None), id="half-an-iops-per-gib"),
    pytest.param(("io1", 100, 5000, None), id="50-iops-per-gib"),
    pytest.param(("gp3", 400, 12000, 500), id="gp3-at-its-baseline-from-400-gib"),
    pytest.param(("gp3", 20, None, None), id="gp3-without-iops-or-throughput"),
])
def test_storage_at_the_limits_rds_takes_is_accepted(storage: Storage) -> None:
    assert storage_problems(*storage) == []
