"""The exact words of the loader's errors: what a person reads when a stack file is wrong (the key, what is
wrong, the fix). Each test breaks one key of a valid dev stack and reads the one problem it gets back."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator

from config.aws_names import IDENTIFIER_FIX
from config.errors import ConfigError
from config.loader import _range_fix, _translate, load_stack
from tests.dev_stack import DEV
from tests.region_support import add_secret_replica_region, edit_stack, region_stack_from_template
from tests.region_support import write_stack as write_text

WriteStack = Callable[[str, dict], Path]  # tests/conftest.py's write_stack fixture

NO_NAMESPACE = "a configuration key without a namespace: nothing reads it"
NAMESPACE_NOTE = " (Pulumi configuration keys are namespace:key)"
UNREAD = "nothing reads this key, so the setting would be silently ignored"
NAMESPACES = "namespaces: edumatrix-db (this project), aws, postgresql, random (its providers), pulumi"


def problem(write_stack: WriteStack, stacks_dir: Path, config: dict[str, Any],
            name: str = "broken") -> tuple[str, str, str]:
    write_stack(name, config)
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks_dir)
    assert len(caught.value.problems) == 1, caught.value.problems
    found = caught.value.problems[0]
    assert found.source.endswith(f"stacks/Pulumi.{name}.yaml")
    return found.key, found.message, found.fix


def dev(**keys: Any) -> dict[str, Any]:
    config = copy.deepcopy(DEV)
    config.update(keys)
    return config


def network(**keys: Any) -> dict[str, Any]:
    return {**DEV["edumatrix-db:network"], **keys}


def test_a_section_written_without_the_namespace_is_told_its_full_name(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(instance={})) == (
        "instance", NO_NAMESPACE, "write it as 'edumatrix-db:instance'" + NAMESPACE_NOTE)


def test_a_key_two_namespaces_read_offers_both(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(region="us-east-1")) == (
        "region", NO_NAMESPACE, "write it as 'edumatrix-db:region' or 'aws:region'" + NAMESPACE_NOTE)


def test_a_misspelt_key_without_a_namespace_is_told_the_key_it_resembles(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(instanse={})) == (
        "instanse", NO_NAMESPACE, "write it as 'edumatrix-db:instance'" + NAMESPACE_NOTE)


def test_a_key_without_a_namespace_like_two_keys_is_told_only_the_closest(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    """`extraction` also resembles `extractionPooler`: one suggestion, the best."""
    assert problem(write_stack, stacks_dir, dev(extraction={})) == (
        "extraction", NO_NAMESPACE, "write it as 'edumatrix-db:extractions'" + NAMESPACE_NOTE)


def test_a_key_without_a_namespace_only_loosely_like_a_key_is_told_the_form_of_a_key(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    """`serv` is 0.67 like `services`: below the 0.7 a suggestion needs."""
    assert problem(write_stack, stacks_dir, dev(serv={})) == (
        "serv", NO_NAMESPACE, "write it as 'edumatrix-db:<key>'" + NAMESPACE_NOTE)


def test_an_unknown_key_without_a_namespace_is_told_the_form_of_a_key(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(zzzqqq=1)) == (
        "zzzqqq", NO_NAMESPACE, "write it as 'edumatrix-db:<key>'" + NAMESPACE_NOTE)


def test_a_misspelt_namespace_is_told_the_namespace_it_resembles(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrx:environment": "dev"})) == (
        "edumatrx:environment", f"unknown namespace 'edumatrx': {UNREAD}",
        f"did you mean 'edumatrix-db:environment'? {NAMESPACES}")


def test_an_unknown_namespace_lists_the_namespaces(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"qqqq:thing": 1})) == (
        "qqqq:thing", f"unknown namespace 'qqqq': {UNREAD}", f"remove it or fix the namespace; {NAMESPACES}")


def test_a_misspelt_provider_setting_is_told_the_setting_it_resembles(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    key, message, fix = problem(write_stack, stacks_dir, dev(**{"aws:regoin": "us-east-1"}))
    assert (key, message) == ("aws:regoin", "the aws provider has no setting 'regoin'")
    assert fix.startswith("did you mean 'aws:region'? see the provider's configuration reference (")
    assert fix.endswith(" keys, e.g. accessKey, allowedAccountIds, assumeRoleWithWebIdentity, assumeRoles, "
                        "customCaBundle)")


def test_a_provider_setting_like_none_of_its_settings_is_told_the_reference(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    key, message, fix = problem(write_stack, stacks_dir, dev(**{"aws:zzzqqqxx": "x"}))
    assert (key, message) == ("aws:zzzqqqxx", "the aws provider has no setting 'zzzqqqxx'")
    assert fix.startswith("see the provider's configuration reference (")


def test_a_renamed_key_is_told_its_new_name(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:replicas.lagThresholdMs": 100})) == (
        "edumatrix-db:replicas.lagThresholdMs", "this key was renamed",
        "rename it to 'edumatrix-db:replicas.lagThresholdSeconds'")


def test_a_key_with_two_colons_is_a_key_of_the_first_namespace(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:owner:x": "a"})) == (
        "edumatrix-db:owner:x", "unknown key", f"did you mean 'edumatrix-db:owner'? allowed: {TOP_LEVEL}")


def test_a_setting_of_a_provider_that_reads_none_is_to_be_removed(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"random:thing": "x"})) == (
        "random:thing", "the random provider reads no configuration", "remove the key")


def test_a_missing_environment_says_how_to_write_it_and_its_values(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev()
    del config["edumatrix-db:environment"]
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:environment", "required key is missing",
        "add `edumatrix-db:environment: dev` (one of: local, dev, staging, prod)")


def test_a_missing_nested_key_is_named_in_full(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:network": {k: v for k, v in network().items() if k != "vpcId"}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:network.vpcId", "required key is missing", "add edumatrix-db:network.vpcId")


def test_promote_in_the_stack_that_holds_the_primary_says_where_promotion_belongs(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:region": {"promote": True}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:region.promote", "`promote` applies to a region stack (one whose region.primaryStack names "
        "the stack it replicates); this stack holds the primary instance itself",
        "remove edumatrix-db:region from this file; to fail over, set promote: true in the region stack that "
        "replicates this one (docs/failover-runbook.md)")


def test_promote_in_a_primary_with_region_stacks_names_them(write_stack: WriteStack, stacks_dir: Path) -> None:
    prod = yaml.safe_load((stacks_dir / "Pulumi.prod.yaml").read_text())["config"]
    prod["edumatrix-db:region"] = {"promote": True}
    key, _, fix = problem(write_stack, stacks_dir, prod, name="prod")
    assert key == "edumatrix-db:region.promote"
    assert fix.endswith("replicates this one (here: stacks/Pulumi.prod-eu-west-1.yaml) (docs/failover-runbook.md)")


def test_a_key_of_a_section_written_at_the_top_level_is_told_its_section(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:promote": True})) == (
        "edumatrix-db:promote", "unknown key",
        "did you mean 'edumatrix-db:region.promote'? (a key of that section, indented below it)")


def test_a_value_above_an_inclusive_range_gives_the_range(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:instance": {"backupRetentionDays": 99}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:instance.backupRetentionDays", "Input should be less than or equal to 35 (got 99)",
        "use a value from 1 to 35")


def test_a_value_below_an_inclusive_range_gives_the_range(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:instance": {"backupRetentionDays": 0}})
    assert problem(write_stack, stacks_dir, config)[2] == "use a value from 1 to 35"


def test_exclusive_bounds_are_said_to_exclude_their_value(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:alarms": {"memoryUsedPercent": 0}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:alarms.memoryUsedPercent", "Input should be greater than 0 (got 0)",
        "use a value above 0 and below 100")


def test_the_upper_exclusive_bound_gives_the_same_range(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:alarms": {"memoryUsedPercent": 100}})
    assert problem(write_stack, stacks_dir, config)[2] == "use a value above 0 and below 100"


def test_mixed_bounds_say_which_end_is_included(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:alarms": {"cpuPercent": 101}})
    assert problem(write_stack, stacks_dir, config)[2] == "use a value above 0 and at most 100"


def test_a_word_for_a_whole_number_is_shown_the_default_as_an_example(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:instance": {"maxConnections": "many"}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:instance.maxConnections", "expected a whole number (got 'many')",
        "write a whole number without quotes, e.g. 1000")


def test_a_word_for_a_number_is_shown_the_default_as_an_example(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:alarms": {"cpuPercent": "high"}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:alarms.cpuPercent", "expected a number (got 'high')", "write a number without quotes, e.g. 70")


def test_a_yaml_1_1_boolean_is_told_to_write_true_or_false(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:instance": {"multiAz": "yes"}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:instance.multiAz", "expected true or false (got 'yes')",
        "write true or false, without quotes (yes/no, on/off and y/n are YAML 1.1 spellings that YAML readers "
        "disagree on)")


def test_a_number_where_text_is_expected_is_told_to_quote_it(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:instance": {"instanceClass": 5}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:instance.instanceClass", "expected text (got 5)",
        "quote the value so it stays text, e.g. '15' or '15.10' (unquoted, YAML reads 15.10 as the number 15.1)")


def test_an_empty_section_is_told_to_give_its_keys_or_go(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:instance": None})) == (
        "edumatrix-db:instance", "expected a mapping of keys (got null)",
        "give the section its keys, indented below it, or remove the line")


def test_a_scalar_for_a_section_is_told_to_write_a_mapping(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:instance": 5})) == (
        "edumatrix-db:instance", "expected a mapping of keys (got 5)",
        "write a mapping: `key: value` lines indented below the key")


def test_a_scalar_for_a_list_is_told_to_write_a_list(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:network": network(subnetIds="subnet-0c1b2c3d4e5f60001")})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:network.subnetIds", "expected a list (got 'subnet-0c1b2c3d4e5f60001')",
        "write a list: one `- item` per line, indented below the key")


def test_too_few_items_say_what_the_list_is_for(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:network": network(subnetIds=["subnet-0c1b2c3d4e5f60001"])})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:network.subnetIds", "Tuple should have at least 2 items after validation, not 1: private "
        "subnets in at least two availability zones", "list more items")


def test_a_key_of_two_sections_written_at_the_top_level_is_told_both(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:timeouts": {}})) == (
        "edumatrix-db:timeouts", "unknown key", "did you mean 'edumatrix-db:instance.timeouts' or "
        "'edumatrix-db:region.timeouts'? (a key of that section, indented below it)")


def test_a_key_written_at_the_top_level_is_told_only_the_closest_key_of_its_section(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    """`allocatedStorageGb` also resembles `maxAllocatedStorageGb`: one suggestion per section, the best."""
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:allocatedStorageGb": 100})) == (
        "edumatrix-db:allocatedStorageGb", "unknown key",
        "did you mean 'edumatrix-db:instance.allocatedStorageGb'? (a key of that section, indented below it)")


def test_a_top_level_key_only_loosely_like_a_sections_key_is_not_sent_there(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    """`promotion` is 0.75 like `region.promote`: below the 0.85 a section's key needs, so every key is listed."""
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:promotion": True})) == (
        "edumatrix-db:promotion", "unknown key", f"allowed: {TOP_LEVEL}")


def test_a_value_outside_a_choice_lists_the_choices(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:environment": "prd"})) == (
        "edumatrix-db:environment", "'prd' is not allowed", "use one of: local, dev, staging, prod")


def test_a_misspelt_nested_key_is_told_the_key_and_every_allowed_one(write_stack: WriteStack, stacks_dir: Path) -> None:
    key, message, fix = problem(write_stack, stacks_dir, dev(**{"edumatrix-db:instance": {"mutliAz": True}}))
    assert (key, message) == ("edumatrix-db:instance.mutliAz", "unknown key")
    assert fix.startswith("did you mean 'multiAz'? allowed: allocatedStorageGb, applyImmediately, ")


def test_an_unknown_nested_key_lists_the_allowed_ones(write_stack: WriteStack, stacks_dir: Path) -> None:
    key, message, fix = problem(write_stack, stacks_dir, dev(**{"edumatrix-db:instance": {"qqqqqq": True}}))
    assert (key, message) == ("edumatrix-db:instance.qqqqqq", "unknown key")
    assert fix.startswith("allowed: allocatedStorageGb, applyImmediately, ")


def test_promote_names_region_stacks_found_in_the_stacks_directory_read(stacks_dir: Path) -> None:
    """The region stacks are looked for where the stack file was read, not in the repository."""
    write_text(stacks_dir, "prod-ap-southeast-2", region_stack_from_template("ap-southeast-2"))
    add_secret_replica_region(stacks_dir, "ap-southeast-2")
    edit_stack(stacks_dir, "prod", "edumatrix-db:environment: prod",
               "edumatrix-db:environment: prod\n  edumatrix-db:region:\n    promote: true")
    with pytest.raises(ConfigError) as caught:
        load_stack("prod", stacks_dir)
    assert "(here: stacks/Pulumi.prod-ap-southeast-2.yaml, stacks/Pulumi.prod-eu-west-1.yaml)" in str(caught.value)


TOP_LEVEL = ("alarms, backups, connections, dataClassification, environment, events, extractionPooler, extractions, "
             "instance, local, network, opsRunner, owner, region, replicas, secrets, services, tags")


def test_a_misspelt_top_level_key_is_told_the_key_and_every_top_level_key(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:instanse": {}})) == (
        "edumatrix-db:instanse", "unknown key", f"did you mean 'edumatrix-db:instance'? allowed: {TOP_LEVEL}")


def test_an_unknown_top_level_key_is_told_every_top_level_key(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:zzzzqqq": 1})) == (
        "edumatrix-db:zzzzqqq", "unknown key", f"allowed: {TOP_LEVEL}")


def test_a_value_outside_an_optional_choice_lists_the_choices_as_written(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problem(write_stack, stacks_dir, dev(**{"edumatrix-db:connections": {"proxy": "pgbouncer"}})) == (
        "edumatrix-db:connections.proxy", "'pgbouncer' is not allowed", "use one of: shared, per-service, none")


def test_a_pattern_without_a_description_is_shown_as_the_form_it_takes(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    key, message, _ = problem(write_stack, stacks_dir,
                              dev(**{"edumatrix-db:secrets": {"rotationApplicationVersion": "1.2"}}))
    assert (key, message) == ("edumatrix-db:secrets.rotationApplicationVersion",
                              "'1.2' is not in the form ^\\d+\\.\\d+\\.\\d+$")


QUOTE = "quote the value so it stays text, e.g. '15' or '15.10' (unquoted, YAML reads 15.10 as the number 15.1)"
MAPPING = "write a mapping: `key: value` lines indented below the key"
A_LIST = "write a list: one `- item` per line, indented below the key"
SUBNET_FIX = ("AWS writes it subnet- and 8 or 17 lowercase hex digits, e.g. subnet-0a1b2c3d4e5f60001 (copy it from the "
              "console or `aws ec2 describe-...`)")
TOO_FEW_SUBNETS = ("edumatrix-db:network.subnetIds", "Tuple should have at least 2 items after validation, not 0: "
                   "private subnets in at least two availability zones", "list more items")


def instance(**keys: Any) -> dict[str, Any]:
    return {**DEV.get("edumatrix-db:instance", {}), **keys}


def subscription(**keys: Any) -> dict[str, Any]:
    return {"edumatrix-db:alarms": {"subscriptions": [{"protocol": "email", "endpoint": "dba@edumatrix.example",
                                                        **keys}]}}


@pytest.mark.parametrize(("keys", "expected"), [
    pytest.param({"edumatrix-db:instance": instance(maxConnections=1.5)},
                 ("edumatrix-db:instance.maxConnections", "expected a whole number (got 1.5)",
                  "write a whole number without quotes, e.g. 1000"), id="fraction-for-a-whole-number"),
    pytest.param({"edumatrix-db:instance": instance(maxConnections=True)},
                 ("edumatrix-db:instance.maxConnections", "expected a whole number (got true)",
                  "write a whole number without quotes, e.g. 1000"), id="boolean-for-a-whole-number"),
    pytest.param({"edumatrix-db:alarms": {"cpuPercent": True}},
                 ("edumatrix-db:alarms.cpuPercent", "expected a number (got true)",
                  "write a number without quotes, e.g. 70"), id="boolean-for-a-number"),
    pytest.param({"edumatrix-db:alarms": {"instanceMemoryGb": "lots"}},
                 ("edumatrix-db:alarms.instanceMemoryGb", "expected a number (got 'lots')",
                  "write a number without quotes"), id="word-for-a-number-without-default"),
    pytest.param({"edumatrix-db:instance": instance(instanceClass=True)},
                 ("edumatrix-db:instance.instanceClass", "expected text (got true)", "write text, e.g. db.r6g.large"),
                 id="boolean-for-text-shows-an-example"),
    pytest.param({"edumatrix-db:owner": ["platform"]},
                 ("edumatrix-db:owner", 'expected text (got ["platform"])', "write text, e.g. platform-team"),
                 id="list-for-text-shows-the-default"),
    pytest.param({"edumatrix-db:instance": instance(parameters={"work_mem": [1]})},
                 ("edumatrix-db:instance.parameters.work_mem", "expected text (got [1])", "write text"),
                 id="list-for-a-parameter-value"),
    pytest.param({"edumatrix-db:instance": instance(parameters={"work_mem": 1.5})},
                 ("edumatrix-db:instance.parameters.work_mem", "expected text (got 1.5)", QUOTE),
                 id="number-for-a-parameter-value-is-told-to-quote-it"),
    pytest.param({"aws:region": 5}, ("aws:region", "expected text (got 5)", QUOTE), id="number-for-the-aws-region"),
    pytest.param({"edumatrix-db:tags": 5}, ("edumatrix-db:tags", "expected a mapping of keys (got 5)", MAPPING),
                 id="scalar-for-a-mapping"),
    pytest.param({"edumatrix-db:network": [1]}, ("edumatrix-db:network", "expected a mapping of keys (got [1])",
                                                 MAPPING), id="list-for-a-section"),
    pytest.param({"edumatrix-db:services": {"feedback": 5}},
                 ("edumatrix-db:services.feedback", "expected a mapping of keys (got 5)", MAPPING),
                 id="scalar-for-a-service-override"),
    pytest.param({"edumatrix-db:secrets": {"replicaRegions": "eu-west-1"}},
                 ("edumatrix-db:secrets.replicaRegions", "expected a list (got 'eu-west-1')", A_LIST),
                 id="scalar-for-a-list"),
    pytest.param(subscription(endpoint="a@"),
                 ("edumatrix-db:alarms.subscriptions[0].endpoint", "String should have at least 3 characters",
                  "write at least 3 characters"), id="text-too-short"),
    pytest.param(subscription(endpoint="a" * 2049),
                 ("edumatrix-db:alarms.subscriptions[0].endpoint", "String should have at most 2048 characters",
                  "write at most 2048 characters"), id="text-too-long"),
    pytest.param({"edumatrix-db:connections": {"dnsZone": "a" * 201}},
                 ("edumatrix-db:connections.dnsZone", "String should have at most 200 characters",
                  "write at most 200 characters"), id="optional-text-too-long"),
    pytest.param(subscription(protocol="pager"),
                 ("edumatrix-db:alarms.subscriptions[0].protocol", "'pager' is not allowed",
                  "use one of: email, sms, https, sqs, lambda"), id="value-outside-a-literal"),
    pytest.param({"edumatrix-db:environment": 5}, ("edumatrix-db:environment", "5 is not allowed",
                                                   "use one of: local, dev, staging, prod"), id="number-for-a-choice"),
    pytest.param({"edumatrix-db:alarms": {"instanceMemoryGb": 0}},
                 ("edumatrix-db:alarms.instanceMemoryGb", "Input should be greater than 0 (got 0)",
                  "use a value above 0 and at most 4096"), id="optional-number-out-of-range"),
    pytest.param({"edumatrix-db:instance": instance(identifier="Edu")},
                 ("edumatrix-db:instance.identifier", "'Edu' is not an RDS identifier: lowercase letters, digits and "
                  "hyphens, starting with a letter", IDENTIFIER_FIX), id="optional-name-that-aws-refuses"),
    pytest.param({"edumatrix-db:network": network(subnetIds=["x"])},
                 ("edumatrix-db:network.subnetIds[0]", "'x' is not a subnet id", SUBNET_FIX),
                 id="bad-item-says-why-instead-of-too-few-items"),
])
def test_a_value_of_the_wrong_kind_or_size_is_told_in_these_words(
        write_stack: WriteStack, stacks_dir: Path, keys: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert problem(write_stack, stacks_dir, dev(**keys)) == expected


def problems(write_stack: WriteStack, stacks_dir: Path, config: dict[str, Any]) -> list[tuple[str, str, str]]:
    write_stack("broken", config)
    with pytest.raises(ConfigError) as caught:
        load_stack("broken", stacks_dir)
    return [(p.key, p.message, p.fix) for p in caught.value.problems]


def test_a_bad_list_item_is_told_and_the_keys_after_it_still_are(write_stack: WriteStack, stacks_dir: Path) -> None:
    """The list's own "too few items" is left out (its item says why), not the problems after it."""
    config = dev(**{"edumatrix-db:network": network(subnetIds=["x"], allowedCidrs=5)})
    assert problems(write_stack, stacks_dir, config) == [
        ("edumatrix-db:network.subnetIds[0]", "'x' is not a subnet id", SUBNET_FIX),
        ("edumatrix-db:network.allowedCidrs", "expected a list (got 5)", A_LIST)]


def test_an_empty_list_is_told_too_few_items_beside_another_keys_problem(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:network": network(subnetIds=[], vpcId=5)})
    assert problems(write_stack, stacks_dir, config) == [
        ("edumatrix-db:network.vpcId", "expected text (got 5)", QUOTE), TOO_FEW_SUBNETS]


def test_a_missing_key_with_a_description_is_told_what_it_is_for(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:network": {k: v for k, v in network().items() if k != "subnetIds"}})
    assert problem(write_stack, stacks_dir, config) == (
        "edumatrix-db:network.subnetIds", "required key is missing",
        "add edumatrix-db:network.subnetIds (private subnets in at least two availability zones)")


def test_promote_in_a_primary_does_not_change_what_another_missing_key_is_told(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    config = dev(**{"edumatrix-db:region": {"promote": True},
                    "edumatrix-db:network": {k: v for k, v in network().items() if k != "vpcId"}})
    assert [(key, message) for key, message, _ in problems(write_stack, stacks_dir, config)] == [
        ("edumatrix-db:network.vpcId", "required key is missing"),
        ("edumatrix-db:region.promote", "`promote` applies to a region stack (one whose region.primaryStack names "
         "the stack it replicates); this stack holds the primary instance itself")]


# Errors no key of today's StackSettings produces, which the loader still words for the key that will: a validator
# raising a plain ValueError, a tuple too long, a list, lax-mode parsing, a literal it cannot find the field of,
# and union members named in the error's location.
class _PlainValueError(BaseModel):
    owner: str

    @field_validator("owner")
    @classmethod
    def _refuse(cls, value: str) -> str:
        raise ValueError("no such team")


class _SectionValueError(BaseModel):
    @model_validator(mode="after")
    def _refuse(self) -> _SectionValueError:
        raise ValueError("inconsistent")


class _Unused(BaseModel):
    zzz: Literal["a", "b"] = "a"
    xs: tuple[int, ...] = Field(default=(), max_length=1)
    items: list[int] = []
    n: int = 0
    f: float = 0
    v: int | str = 0
    w: Annotated[str, AfterValidator(str.strip)] | int = 0
    when: datetime.date = datetime.date(2026, 1, 1)


class _Subnets(BaseModel):
    subnetIds: datetime.date  # a field the stack's network section describes


class _Network(BaseModel):
    network: _Subnets


@pytest.mark.parametrize(("model", "data", "expected"), [
    pytest.param(_PlainValueError, {"owner": "x"}, [(
        "edumatrix-db:owner", "no such team", "see the validator of owner in config/settings.py for what it accepts")],
        id="plain-value-error"),
    pytest.param(_SectionValueError, {}, [(
        "", "inconsistent", "see the validator of this section in config/settings.py for what it accepts")],
        id="plain-value-error-of-a-section"),
    pytest.param(_Unused, {"zzz": "c"}, [("edumatrix-db:zzz", "'c' is not allowed", "use one of: 'a' or 'b'")],
                 id="literal-of-an-unknown-field"),
    pytest.param(_Unused, {"xs": (1, 2)}, [(
        "edumatrix-db:xs", "Tuple should have at most 1 item after validation, not 2", "list fewer items")],
        id="too-many-items"),
    pytest.param(_Unused, {"items": 5}, [("edumatrix-db:items", "expected a list (got 5)", A_LIST)], id="list"),
    pytest.param(_Unused, {"n": "abc"}, [(
        "edumatrix-db:n", "Input should be a valid integer, unable to parse string as an integer (got 'abc')",
        "write a whole number without quotes")], id="lax-whole-number"),
    pytest.param(_Unused, {"n": 1.5}, [(
        "edumatrix-db:n", "expected a whole number (got 1.5)", "write a whole number without quotes")],
        id="lax-fraction-for-a-whole-number"),
    pytest.param(_Unused, {"when": "soon"}, [(
        "edumatrix-db:when", "Input should be a valid date or datetime, input is too short (got 'soon')",
        "see the key in config/settings.py for what it accepts")], id="type-without-its-own-fix"),
    pytest.param(_Network, {"network": {"subnetIds": "soon"}}, [(
        "edumatrix-db:network.subnetIds", "Input should be a valid date or datetime, input is too short (got 'soon')",
        "see private subnets in at least two availability zones in config/settings.py for what it accepts")],
        id="type-without-its-own-fix-of-a-described-key"),
    pytest.param(_Unused, {"f": "abc"}, [(
        "edumatrix-db:f", "Input should be a valid number, unable to parse string as a number (got 'abc')",
        "write a number without quotes")], id="lax-number"),
    pytest.param(_Unused, {"v": [1]}, [
        ("edumatrix-db:v", "expected a whole number (got [1])", "write a whole number without quotes"),
        ("edumatrix-db:v", "expected text (got [1])", "write text")], id="union-members-int-and-str"),
    pytest.param(_Unused, {"w": [1]}, [
        ("edumatrix-db:w", "expected text (got [1])", "write text"),
        ("edumatrix-db:w", "expected a whole number (got [1])", "write a whole number without quotes")],
        id="union-member-with-a-validator"),
])
def test_errors_no_stack_key_makes_today_are_worded_for_their_key(
        model: type[BaseModel], data: dict[str, Any], expected: list[tuple[str, str, str]], tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert [(p.key, p.message, p.fix) for p in _translate(caught.value, "src.yaml", {}, tmp_path)] == expected


@pytest.mark.parametrize(("bounds", "fix"), [
    ({"ge": 5}, "use a value at least 5"),
    ({"lt": 3}, "use a value below 3"),
    ({"gt": 0.5, "le": 1.0}, "use a value above 0.5 and at most 1"),
])
def test_a_range_with_bounds_no_stack_key_has_today_is_worded_too(bounds: dict[str, float], fix: str) -> None:
    assert _range_fix(None, bounds) == fix


# -- cross checks (config/loader.py cross_checks): rules that span sections, each message in full ----------------
SERVICES = ("students_platform, edu_matrix_hub, courses_platform, freelancing, jobs_portal, news_system, "
            "community_rooms, statistics, feedback")
ONLY_DEV = "remove the key (the default is true); only dev may turn it off"


def local(**keys: Any) -> dict[str, Any]:
    return {"edumatrix-db:environment": "local", **keys}


def prod_config(stacks_dir: Path, **keys: Any) -> dict[str, Any]:
    config = yaml.safe_load((stacks_dir / "Pulumi.prod.yaml").read_text())["config"]
    for key, value in keys.items():
        section = key.partition(".")[0]
        if section != key:  # "edumatrix-db:instance.multiAz": one key of a section the file already has
            config[section] = {**config.get(section, {}), key.partition(".")[2]: value}
        else:
            config[key] = value
    return config


@pytest.mark.parametrize(("config", "expected"), [
    pytest.param(dev(**{"edumatrix-db:services": {"feedbak": {}}}), [
        ("edumatrix-db:services.feedbak", "unknown service", f"did you mean 'feedback'? services: {SERVICES}")],
        id="misspelt-service-is-told-the-closest-and-every-service"),
    pytest.param(dev(**{"edumatrix-db:services": {"zzqq": {}}}), [
        ("edumatrix-db:services.zzqq", "unknown service", f"services: {SERVICES}")],
        id="unknown-service-is-told-every-service"),
    pytest.param(local(**{"edumatrix-db:replicas": {"count": 1}}), [
        ("edumatrix-db:replicas.count", "the local stack has no RDS instance to replicate", "remove the key")],
        id="replicas-in-the-local-stack"),
    pytest.param(local(**{"edumatrix-db:opsRunner": {"enabled": True}}), [
        ("edumatrix-db:opsRunner", "only a primary AWS stack runs the ops runner",
         "remove the key (the runner of the primary stack covers this database)")],
        id="ops-runner-in-the-local-stack"),
    pytest.param(local(**{"edumatrix-db:backups": {"enabled": True}}), [
        ("edumatrix-db:backups", "only a primary AWS stack declares AWS Backup",
         "remove the key (the primary stack's plan covers this database and copies its daily backups into this "
         "region)")],
        id="backups-in-the-local-stack"),
    pytest.param({k: v for k, v in DEV.items() if k != "aws:region"}, [
        ("aws:region", "required for an AWS stack", "add `aws:region: us-east-1`")],
        id="aws-stack-without-a-region"),
    pytest.param({k: v for k, v in DEV.items() if k != "edumatrix-db:network"}, [
        ("edumatrix-db:network", "required for an AWS stack",
         "add vpcId, subnetIds and allowedSecurityGroupIds/allowedCidrs")],
        id="aws-stack-without-a-network"),
])
def test_a_rule_across_sections_is_told_in_these_words(
        write_stack: WriteStack, stacks_dir: Path, config: dict[str, Any],
        expected: list[tuple[str, str, str]]) -> None:
    assert problems(write_stack, stacks_dir, config) == expected


@pytest.mark.parametrize(("key", "value", "expected"), [
    *[pytest.param(f"edumatrix-db:instance.{key}", False,
                   (f"edumatrix-db:instance.{key}", "cannot be false in prod", ONLY_DEV), id=f"{key}-off")
      for key in ("multiAz", "deletionProtection", "finalSnapshot", "iamAuth")],
    pytest.param("edumatrix-db:instance.monitoringIntervalSeconds", 0,
                 ("edumatrix-db:instance.monitoringIntervalSeconds", "enhanced monitoring cannot be off in prod",
                  "use 60 or less"), id="enhanced-monitoring-off"),
    pytest.param("edumatrix-db:opsRunner.enabled", False,
                 ("edumatrix-db:opsRunner.enabled", "the isolation audit cannot be off in prod", ONLY_DEV),
                 id="ops-runner-off"),
    pytest.param("edumatrix-db:backups.enabled", False,
                 ("edumatrix-db:backups.enabled", "AWS Backup cannot be off in prod (spec 6.A, Security Hub RDS.26)",
                  "remove the key (the default is true)"), id="aws-backup-off"),
])
def test_a_secure_default_turned_off_in_prod_is_told_in_these_words(
        write_stack: WriteStack, stacks_dir: Path, key: str, value: object, expected: tuple[str, str, str]) -> None:
    assert problems(write_stack, stacks_dir, prod_config(stacks_dir, **{key: value})) == [expected]


# -- the RDS backup window against AWS Backup's daily job at 00:00 UTC (backup_window_problems) ------------------
WINDOW_KEY = "edumatrix-db:instance.backupWindow"
LATE_MAINTENANCE = "sun:10:00-sun:11:00"  # out of the way of every window below that runs past 02:00


def expires(window: str, start_window: int, end_by: str, after: str) -> list[tuple[str, str, str]]:
    return [(WINDOW_KEY,
             f"the RDS backup window {window} runs into AWS Backup's daily job (00:00 UTC, start window "
             f"{start_window} minutes): its last retry would find the instance still backing up, and the job would "
             "expire",
             f"end the RDS window by {end_by} UTC, or move it after {after}, or raise "
             "edumatrix-db:backups.startWindowMinutes")]


def windows(backup_window: str, start_window: int = 60) -> dict[str, Any]:
    config = dev(**{"edumatrix-db:instance": instance(backupWindow=backup_window,
                                                      maintenanceWindow=LATE_MAINTENANCE)})
    if start_window != 60:
        config["edumatrix-db:backups"] = {"startWindowMinutes": start_window,
                                          "completionWindowMinutes": start_window + 70}
    return config


@pytest.mark.parametrize(("window", "start_window", "expected"), [
    pytest.param("00:20-00:55", 60, expires("00:20-00:55", 60, "00:50", "01:00"), id="starts-inside-ends-too-late"),
    pytest.param("23:30-00:55", 60, expires("23:30-00:55", 60, "00:50", "01:00"),
                 id="over-midnight-ends-too-late"),
    pytest.param("01:30-02:15", 130, expires("01:30-02:15", 130, "02:00", "02:10"),
                 id="longer-start-window-hours-and-minutes-of-the-fix"),
    pytest.param("00:30-00:00", 60, expires("00:30-00:00", 60, "00:50", "01:00"),
                 id="starts-inside-and-ends-at-midnight"),
])
def test_an_rds_backup_window_that_would_expire_the_daily_job_is_told_how_to_move(
        write_stack: WriteStack, stacks_dir: Path, window: str, start_window: int,
        expected: list[tuple[str, str, str]]) -> None:
    config = windows(window, start_window)
    if window == "00:30-00:00":  # 23.5 hours long: the maintenance window fits only in the half hour left
        config["edumatrix-db:instance"]["maintenanceWindow"] = "sun:00:00-sun:00:30"
    assert problems(write_stack, stacks_dir, config) == expected


@pytest.mark.parametrize(("window", "start_window"), [
    pytest.param("05:00-05:30", 60, id="after-the-start-window"),
    pytest.param("01:00-01:30", 60, id="starts-as-the-start-window-closes"),
    pytest.param("00:20-00:50", 60, id="ends-one-retry-before-the-start-window-closes"),
    pytest.param("01:30-02:00", 130, id="ends-one-retry-before-a-longer-start-window-closes"),
    pytest.param("23:00-00:00", 60, id="ends-at-midnight"),
    pytest.param("23:30-00:20", 60, id="over-midnight-ends-well-before-the-last-retry"),
    pytest.param("23:30-00:45", 60, id="over-midnight-ends-just-before-the-last-retry"),
])
def test_an_rds_backup_window_that_leaves_the_daily_job_its_last_retry_is_accepted(
        write_stack: WriteStack, stacks_dir: Path, window: str, start_window: int) -> None:
    write_stack("ok", windows(window, start_window))
    assert load_stack("ok", stacks_dir).instance.backup_window == window


@pytest.mark.parametrize("config", [
    pytest.param(dev(**{"edumatrix-db:instance": instance(backupWindow="00:20-00:55"),
                        "edumatrix-db:backups": {"enabled": False}}), id="dev-without-aws-backup"),
    pytest.param(local(**{"edumatrix-db:instance": {"backupWindow": "00:20-00:55"}}), id="local-stack"),
])
def test_a_stack_without_aws_backup_may_back_up_at_any_time(
        write_stack: WriteStack, stacks_dir: Path, config: dict[str, Any]) -> None:
    write_stack("ok", config)
    assert load_stack("ok", stacks_dir).instance.backup_window == "00:20-00:55"


# -- the stack file itself (read_stack_config): before any key is read ------------------------------------------
def file_problems(stacks_dir: Path, name: str) -> list[tuple[str, str, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks_dir)
    return [(Path(p.source).name, p.key, p.message, p.fix) for p in caught.value.problems]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("- a\n", ("config", "a stack file is a mapping with a `config:` key",
                           "start the file with `config:` and indent `namespace:key: value` lines below it"),
                 id="a-list"),
    pytest.param("config: {}\nencryptionsalt: x\nzeta: 1\nalpha: 2\n",
                 ("alpha", "unknown top-level key", "put settings under `config:`"), id="keys-beside-config"),
    pytest.param("config: [a]\n", ("config", "must be a mapping of `namespace:key: value`",
                                   "indent the settings below `config:`, one `namespace:key: value` per line"),
                 id="config-a-list"),
    pytest.param("config:\n  edumatrix-db:owner: a\n  edumatrix-db:owner: b\n", (
        "edumatrix-db:owner", "given twice (lines 2 and 3); YAML readers keep only one of them, Pulumi the last",
        "delete one of the two lines (or merge them)"), id="keys-below-config-are-named-without-it"),
    pytest.param("config: 1\nconfig: 2\n", (
        "config", "given twice (lines 1 and 2); YAML readers keep only one of them, Pulumi the last",
        "delete one of the two lines (or merge them)"), id="config-itself-is-named-config"),
])
def test_a_stack_file_of_the_wrong_shape_is_told_in_these_words(
        stacks_dir: Path, text: str, expected: tuple[str, str, str]) -> None:
    (stacks_dir / "Pulumi.broken.yaml").write_text(text)
    assert file_problems(stacks_dir, "broken") == [("Pulumi.broken.yaml", *expected)]


@pytest.mark.parametrize("text", ["", "config:\n", "encryptionsalt: x\n", "encryptedkey: x\n",
                                  "secretsprovider: awskms://alias/x\n"])
def test_a_stack_file_without_settings_is_read_as_no_settings(stacks_dir: Path, text: str) -> None:
    (stacks_dir / "Pulumi.empty.yaml").write_text(text)
    assert file_problems(stacks_dir, "empty") == [
        ("Pulumi.empty.yaml", "edumatrix-db:environment", "required key is missing",
         "add `edumatrix-db:environment: dev` (one of: local, dev, staging, prod)")]


@pytest.mark.parametrize(("name", "fix"), [
    pytest.param("prdo", "did you mean 'prod'? known stacks: dev, local, prod, prod-eu-west-1, staging",
                 id="misspelt"),
    pytest.param("zzzz", "known stacks: dev, local, prod, prod-eu-west-1, staging", id="unknown"),
])
def test_a_stack_that_does_not_exist_is_told_the_stacks_that_do(stacks_dir: Path, name: str, fix: str) -> None:
    assert file_problems(stacks_dir, name) == [(f"Pulumi.{name}.yaml", "", f"no stack named {name!r}", fix)]


def test_a_stacks_directory_without_stacks_says_so(tmp_path: Path) -> None:
    assert file_problems(tmp_path, "dev") == [("Pulumi.dev.yaml", "", "no stack named 'dev'", "known stacks: none")]
