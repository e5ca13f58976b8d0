"""The offline gate: the repository's stacks pass; the gate sees what the engine records; config and
enforcement levels behave as under `pulumi preview --policy-pack`."""

import dataclasses
import json
import runpy
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest

from config.loader import STACKS_DIR, available_stacks, load_stack
from edumatrix_db.offline import gate
from edumatrix_db.offline.engine import Planner, RecordedResource
from policy import encryption, rds
from policy.base import INSTANCE, PackPolicy, StackPolicy, TypedResourcePolicy
from policy.pack import CONFIG_DIR, POLICIES
from tests.policy.fixtures import instance, resource, run

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner()


@pytest.mark.parametrize("stack", available_stacks())
def test_repository_stack_has_no_mandatory_violation(stack: str, planner: Planner) -> None:
    report = gate.check_stack(stack, planner)
    assert report.error is None
    assert [v for v in report.violations if v.mandatory] == []


def test_gate_reports_a_recorded_instance_made_public(planner: Planner) -> None:
    recording = planner.plan("prod")
    db = next(r for r in recording.of_type("aws:rds/instance:Instance") if "replicateSourceDb" not in r.inputs)
    public = dataclasses.replace(db, props={**db.props, "publiclyAccessible": True})
    mutated = dataclasses.replace(recording, resources=[public if r is db else r for r in recording.resources])
    report = gate.check_recording(mutated)
    assert [(v.policy, v.urn, v.enforcement) for v in report.violations if v.mandatory] == [
        ("rds-not-publicly-accessible", db.urn, "mandatory")]
    assert report.failed


def test_config_error_is_the_stacks_verdict(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    prod = stacks / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace("maxConnections: 1500", "maxConnections: 1500\n    multiAz: false"))
    report = gate.check_stack("prod", Planner(stacks))
    assert report.failed
    assert report.error is not None
    assert "multiAz" in report.error
    assert report.violations == []


def test_every_policy_carries_name_description_severity_remediation_and_controls() -> None:
    for policy in POLICIES:
        assert isinstance(policy, TypedResourcePolicy | StackPolicy), policy.name
        assert policy.description, policy.name
        assert policy.severity is not None, policy.name
        assert policy.remediation_steps, policy.name
        assert policy.enforcement_level is not None, policy.name
        assert policy.controls, policy.name
        assert policy.tags == list(policy.controls), policy.name


def test_policy_names_are_unique() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))


def test_no_policy_is_advisory_since_aws_backup_is_declared() -> None:
    """RDS.26 (rds-backup-plan-coverage) was the one advisory policy until issue 15 declared AWS Backup."""
    advisory = [p.name for p in POLICIES if p.enforcement_level is pulumi_policy.EnforcementLevel.ADVISORY]
    assert advisory == []


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.json")), ids=lambda p: p.name)
def test_policy_config_files_set_only_keys_the_schemas_declare(path: Path) -> None:
    config = gate.load_policy_config(path.stem)
    schemas = {p.name: p.config_schema for p in POLICIES}
    for name, entry in config.items():
        schema = schemas[name]
        declared = set(schema.properties) if schema else set()
        assert set(entry) - {"enforcementLevel"} <= declared, name


def test_every_environment_has_a_policy_config_file() -> None:
    from config.settings import Environment

    assert {p.stem for p in CONFIG_DIR.glob("*.json")} == {e.value for e in Environment}


def test_stack_policy_config_adds_region_and_connection_budget() -> None:
    config = gate.policy_config(load_stack("prod"))
    assert config["replica-kms-key-in-region"]["defaultRegion"] == "us-east-1"
    assert config["connection-budget"] == {"reservedConnections": 50, "maxConnections": 1500}
    assert config["rds-automated-backups"] == {"minimumRetentionDays": 30}


def test_enforcement_level_from_config_overrides_the_policy() -> None:
    inst = instance(multiAz=False)
    config = {"rds-multi-az": {"enforcementLevel": "advisory", "required": True}}
    found = [(v.policy, v.enforcement) for v in run([inst], config=config) if v.policy == "rds-multi-az"]
    assert found == [("rds-multi-az", "advisory")]


def test_disabled_policy_does_not_run() -> None:
    inst = instance(multiAz=False)
    assert "rds-multi-az" not in {v.policy for v in run([inst], config={"rds-multi-az": "disabled"})}


def test_schema_defaults_reach_the_validator_when_config_is_silent() -> None:
    policy = next(p for p in POLICIES if p.name == "rds-automated-backups")
    assert gate.config_of(policy, {}) == {"minimumRetentionDays": 7}
    assert gate.config_of(policy, {"rds-automated-backups": {"minimumRetentionDays": 30}}) == {
        "minimumRetentionDays": 30}


def test_policy_main_only_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:
        built.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == "edumatrix-db"
    assert [p.name for p in built["policies"]] == [p.name for p in POLICIES]
    assert built["enforcement_level"] is pulumi_policy.EnforcementLevel.MANDATORY


def test_pulumi_policy_yaml_declares_a_python_pack() -> None:
    import yaml

    data = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert data["runtime"]["name"] == "python"
    assert (POLICY_DIR / "requirements.txt").read_text().count("pulumi-policy") == 1


# -- policies that check nothing are reported, never counted as passed -------------------------------------

def _never_applies(args: pulumi_policy.StackValidationArgs, report: pulumi_policy.ReportViolation) -> None:
    args.not_applicable("nothing here is ever in scope")


NEVER_APPLIES = StackPolicy("never-applies", "A policy that is not applicable to any stack.", types=[INSTANCE],
                            validate=_never_applies, severity=pulumi_policy.Severity.LOW, remediation="-",
                            controls=["test"])


def _report(stack: str, resources: list[RecordedResource], policies: Sequence[PackPolicy],
            config: dict[str, Any] | None = None) -> gate.StackReport:
    violations, not_applicable = gate.evaluate(resources, config or {}, policies=policies)
    return gate.StackReport(stack, len(resources), violations, not_applicable, frozenset(r.type for r in resources))


def test_a_policy_not_applicable_on_every_stack_shows_n_a_and_is_listed_as_checking_nothing() -> None:
    policies: list[PackPolicy] = [NEVER_APPLIES, rds.multi_az]
    reports = [_report("one", [instance()], policies), _report("two", [instance(multiAz=False)], policies)]
    table = gate.render_table(reports, policies)
    assert next(line for line in table.splitlines() if line.startswith("never-applies")).split()[1:] == ["n/a",
                                                                                                          "n/a"]
    assert "never-applies: not applicable: nothing here is ever in scope (one, two)" in table
    assert "2 policies: 1 checked something, 1 checked nothing" in table
    assert gate.idle_everywhere(reports, policies) == {
        "never-applies": {"not applicable: nothing here is ever in scope": ["one", "two"]}}


def test_a_policy_whose_resource_types_no_stack_declares_is_listed_as_checking_nothing() -> None:
    reports = [_report("one", [instance()], [rds.multi_az, encryption.proxy_require_tls])]
    assert gate.idle_everywhere(reports, [rds.multi_az, encryption.proxy_require_tls]) == {
        "rds-proxy-require-tls": {"no aws:rds/proxy:Proxy declared": ["one"]}}


def test_a_policy_that_checks_one_stack_of_the_run_is_not_idle() -> None:
    policies = [encryption.proxy_require_tls]
    proxy = resource("aws:rds/proxy:Proxy", "p", {"requireTls": True})
    reports = [_report("without", [instance()], policies), _report("with", [proxy], policies)]
    assert gate.idle_everywhere(reports, policies) == {}
    assert reports[0].idle(policies) == {"rds-proxy-require-tls": "no aws:rds/proxy:Proxy declared"}


def test_a_disabled_policy_is_reported_as_checking_nothing() -> None:
    report = _report("one", [instance(multiAz=False)], [rds.multi_az], {"rds-multi-az": "disabled"})
    assert report.idle([rds.multi_az]) == {"rds-multi-az": f"not applicable: {gate.DISABLED}"}


def test_not_applicable_to_one_resource_still_checks_the_others() -> None:
    def _only_the_second(args: pulumi_policy.ResourceValidationArgs, report: pulumi_policy.ReportViolation) -> None:
        if args.name == "first":
            args.not_applicable("not this one")
        report("checked", None)

    policy = TypedResourcePolicy("per-resource", "-", types=[INSTANCE], validate=_only_the_second,
                                 severity=pulumi_policy.Severity.LOW, remediation="-", controls=["test"])
    report = _report("one", [instance("first"), instance("second")], [policy])
    assert [v.urn for v in report.violations] == [instance("second").urn]
    assert report.idle([policy]) == {}


def test_check_json_lists_the_policies_that_checked_nothing() -> None:
    policies: list[PackPolicy] = [NEVER_APPLIES, rds.multi_az]
    data = json.loads(gate.render_json([_report("one", [instance()], policies)], policies))
    assert data["stacks"]["one"]["idle"]["never-applies"] == "not applicable: nothing here is ever in scope"
    assert "rds-multi-az" not in data["stacks"]["one"]["idle"]
    assert "never-applies" in data["idle"]
