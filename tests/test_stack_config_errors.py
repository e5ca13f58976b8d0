"""Bad stack files get one clear error naming the file, the key and the fix, before anything runs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from config import loader
from config.access import SUPERUSER_RESERVED_CONNECTIONS, Target, platform_access, platform_connection_demand
from config.catalog import load_catalog
from config.errors import ConfigError
from config.loader import load_stack
from config.settings import InstanceSettings, Model, StackSettings, _optional, _windows_overlap, duration_seconds
from tests.dev_stack import DEV

WriteStack = Callable[[str, dict], Path]  # tests/conftest.py's write_stack fixture


def error_for(write_stack: WriteStack, stacks_dir: Path, config: dict[str, Any], name: str = "broken") -> str:
    write_stack(name, config)
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks_dir)
    return str(caught.value)


def with_(base: dict[str, Any], **sections: object) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for key, value in sections.items():
        config[f"edumatrix-db:{key}"] = value
    return config


def test_a_minimal_dev_stack_is_valid(write_stack: WriteStack, stacks_dir: Path) -> None:
    write_stack("ok", DEV)
    assert load_stack("ok", stacks_dir).environment.value == "dev"


def test_every_settings_model_is_a_strict_model() -> None:
    """Every section model reachable from StackSettings derives from config.settings.Model (frozen, unknown keys
    rejected): a plain pydantic model among them would silently ignore a misspelt key."""
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [StackSettings]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo.extend(m for f in model.model_fields.values() if (m := loader._unwrap_model(f.annotation)))
    assert len(seen) > 10
    assert [m.__name__ for m in seen if not issubclass(m, Model)] == []


def test_a_typo_in_a_top_level_key_names_the_file_the_key_and_the_right_key(write_stack: WriteStack,
                                                                            stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instanse={}))
    assert "stacks/Pulumi.broken.yaml: edumatrix-db:instanse: unknown key" in message
    assert "did you mean 'edumatrix-db:instance'?" in message


def test_a_typo_in_a_nested_key_suggests_the_nested_key(write_stack: WriteStack, stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instance={"mutliAz": False}))
    assert "edumatrix-db:instance.mutliAz: unknown key" in message
    assert "did you mean 'multiAz'?" in message


@pytest.mark.parametrize("derived", ["awsRegion", "stack", "source", "primary"])
def test_fields_the_program_derives_cannot_be_set_in_the_namespace(write_stack: WriteStack, stacks_dir: Path,
                                                                   derived: str) -> None:
    """The region comes from `aws:region` only: a second spelling would let program and provider disagree."""
    message = error_for(write_stack, stacks_dir, with_(DEV, **{derived: "eu-west-1"}))
    assert f"edumatrix-db:{derived}: unknown key" in message


def test_a_wrong_type_names_the_key_and_the_value(write_stack: WriteStack, stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instance={"allocatedStorageGb": "lots"}))
    assert "edumatrix-db:instance.allocatedStorageGb" in message
    assert "'lots'" in message


def test_an_unknown_environment_lists_the_allowed_ones(write_stack: WriteStack, stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, environment="production"))
    assert "edumatrix-db:environment" in message
    assert "local, dev, staging, prod" in message


def test_an_unknown_service_suggests_the_catalog_name(write_stack: WriteStack, stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, services={"student_platform": {"poolSize": 5}}))
    assert "edumatrix-db:services.student_platform: unknown service" in message
    assert "did you mean 'students_platform'?" in message


@pytest.mark.parametrize("bad", ['edu"matrix', "edumatrix; drop database x", "d" * 64])
def test_a_database_name_that_is_not_a_plain_identifier_is_rejected(write_stack: WriteStack, stacks_dir: Path,
                                                                    bad: str) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instance={"databaseName": bad}))
    assert "edumatrix-db:instance.databaseName" in message


def test_a_default_admin_name_is_rejected(write_stack: WriteStack, stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instance={"masterUsername": "postgres"}))
    assert "edumatrix-db:instance.masterUsername" in message
    assert "default admin name" in message


@pytest.mark.parametrize("key", ["multiAz", "deletionProtection", "finalSnapshot", "iamAuth"])
def test_prod_cannot_turn_off_its_safety_settings(write_stack: WriteStack, stacks_dir: Path, key: str) -> None:
    config = with_(DEV, environment="prod", instance={key: False})
    message = error_for(write_stack, stacks_dir, config)
    assert f"edumatrix-db:instance.{key}: cannot be false in prod" in message


def test_dev_may_turn_off_multi_az_and_deletion_protection_explicitly(write_stack: WriteStack,
                                                                      stacks_dir: Path) -> None:
    write_stack("cheap", with_(DEV, instance={"multiAz": False, "deletionProtection": False}))
    settings = load_stack("cheap", stacks_dir)
    assert not settings.instance.multi_az
    assert not settings.instance.deletion_protection


def test_prod_cannot_turn_off_enhanced_monitoring(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = with_(DEV, environment="prod", instance={"monitoringIntervalSeconds": 0})
    message = error_for(write_stack, stacks_dir, config)
    assert "edumatrix-db:instance.monitoringIntervalSeconds: enhanced monitoring cannot be off in prod" in message


def test_dev_may_turn_off_enhanced_monitoring(write_stack: WriteStack, stacks_dir: Path) -> None:
    write_stack("quiet", with_(DEV, instance={"monitoringIntervalSeconds": 0}))
    assert load_stack("quiet", stacks_dir).instance.monitoring_interval_seconds == 0


def test_a_ca_that_is_not_current_is_rejected_naming_the_current_ones(write_stack: WriteStack,
                                                                      stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instance={"caCertIdentifier": "rds-ca-2019"}))
    assert "edumatrix-db:instance.caCertIdentifier: 'rds-ca-2019' is not a current RDS CA" in message
    assert "rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1" in message


def _demand() -> int:
    return sum(s.total_connections() for s in load_catalog())


def test_reserved_connections_are_kept_out_of_the_connection_budget(write_stack: WriteStack, stacks_dir: Path) -> None:
    """The pools fit maxConnections, but not once the reserved connections (admin, replication) are taken off."""
    reserved = _platform() + 1
    config = with_(DEV, instance={"maxConnections": _demand() + reserved - 1, "reservedConnections": reserved})
    message = error_for(write_stack, stacks_dir, config)
    assert f"add up to {_demand()}, over the instance's budget of {_demand() - 1}" in message
    assert f"(maxConnections {_demand() + reserved - 1} - reservedConnections {reserved})" in message


def test_pools_that_fit_exactly_into_the_budget_are_accepted(write_stack: WriteStack, stacks_dir: Path) -> None:
    reserved = _platform()
    write_stack("exact", with_(DEV, instance={"maxConnections": _demand() + reserved,
                                              "reservedConnections": reserved}))
    assert load_stack("exact", stacks_dir).instance.max_connections == _demand() + reserved


def _platform() -> int:
    return platform_connection_demand(sum(1 for s in load_catalog() if s.events))


def test_reserved_connections_that_cannot_hold_the_platform_logins_are_rejected_with_the_minimum(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    """Every platform login's limit (the CDC login's grows with the publishing services) and the superuser's
    slots come out of the reserved connections."""
    config = with_(DEV, instance={"reservedConnections": _platform() - 1})
    message = error_for(write_stack, stacks_dir, config)
    assert f"edumatrix-db:instance.reservedConnections: reservedConnections {_platform() - 1} cannot hold" in message
    assert f"set edumatrix-db:instance.reservedConnections to at least {_platform()}" in message


def test_the_platform_demand_is_every_platform_limit_plus_the_superuser_slots() -> None:
    publishers = 8
    limits = [r.connection_limit for r in platform_access("edumatrix", Target.RDS, publishers=publishers).roles]
    assert platform_connection_demand(publishers) == sum(limits) + SUPERUSER_RESERVED_CONNECTIONS


def test_pools_over_the_connection_budget_are_an_impossible_combination(write_stack: WriteStack,
                                                                        stacks_dir: Path) -> None:
    config = with_(DEV, instance={"maxConnections": 300}, services={"students_platform": {"poolSize": 200}})
    message = error_for(write_stack, stacks_dir, config)
    assert "over the instance's budget" in message
    assert "largest: students_platform" in message


def test_a_pinned_minor_version_with_automatic_minor_upgrades_is_rejected(write_stack: WriteStack,
                                                                          stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instance={"engineVersion": "15.10"}))
    assert "edumatrix-db:instance" in message
    assert "write '15'" in message


def test_a_pinned_minor_version_is_allowed_without_automatic_minor_upgrades(write_stack: WriteStack,
                                                                            stacks_dir: Path) -> None:
    write_stack("pinned", with_(DEV, instance={"engineVersion": "15.10", "autoMinorVersionUpgrade": False}))
    assert load_stack("pinned", stacks_dir).instance.parameter_family == "postgres15"


def test_storage_ceiling_below_start_size_is_rejected(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = with_(DEV, instance={"allocatedStorageGb": 200, "maxAllocatedStorageGb": 100})
    assert "maxAllocatedStorageGb (100) is below allocatedStorageGb (200)" in error_for(write_stack, stacks_dir,
                                                                                        config)


def test_overlapping_backup_and_maintenance_windows_are_rejected(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = with_(DEV, instance={"backupWindow": "02:00-03:00", "maintenanceWindow": "sun:02:30-sun:03:30"})
    assert "overlaps maintenanceWindow" in error_for(write_stack, stacks_dir, config)


def test_platform_managed_parameters_cannot_be_overridden(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = with_(DEV, instance={"parameters": {"rds.force_ssl": "0"}})
    message = error_for(write_stack, stacks_dir, config)
    assert "rds.force_ssl is set by the platform" in message


def test_an_aws_stack_without_network_or_region_says_what_to_add(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = {"edumatrix-db:environment": "staging"}
    message = error_for(write_stack, stacks_dir, config)
    assert "aws:region: required for an AWS stack" in message
    assert "edumatrix-db:network: required for an AWS stack" in message


def test_public_cidrs_are_refused(write_stack: WriteStack, stacks_dir: Path) -> None:
    network = {**DEV["edumatrix-db:network"], "allowedCidrs": ["0.0.0.0/0"]}
    assert "not a private range" in error_for(write_stack, stacks_dir, with_(DEV, network=network))


def test_all_problems_of_a_file_are_reported_together(write_stack: WriteStack, stacks_dir: Path) -> None:
    message = error_for(write_stack, stacks_dir, with_(DEV, instanse={}, replicaz=1))
    assert "(2 problems)" in message


def test_an_unknown_stack_suggests_the_nearest_stack(stacks_dir: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'prod'"):
        load_stack("prdo", stacks_dir)


def test_invalid_yaml_is_reported_with_the_file(stacks_dir: Path) -> None:
    (stacks_dir / "Pulumi.bad.yaml").write_text("config:\n  edumatrix-db:environment: [dev\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.bad\.yaml: line 3: not valid YAML"):
        load_stack("bad", stacks_dir)


def test_a_renamed_key_says_the_new_name(write_stack: WriteStack, stacks_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(loader.RENAMED_KEYS, "edumatrix-db:database", "edumatrix-db:instance.databaseName")
    message = error_for(write_stack, stacks_dir, with_(DEV, database="edumatrix"))
    assert "rename it to 'edumatrix-db:instance.databaseName'" in message


def test_settings_from_the_engine_decode_structured_values_from_json(stacks_dir: Path) -> None:
    raw = yaml.safe_load((stacks_dir / "Pulumi.dev.yaml").read_text())["config"]
    import json

    as_engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    from_engine = loader.settings_from_config(as_engine, stack="dev", source="stacks/Pulumi.dev.yaml")
    assert from_engine.instance == load_stack("dev", stacks_dir).instance


def _minutes(window: str) -> set[int]:
    (sh, sm), (eh, em) = (map(int, part.split(":")) for part in window.split("-"))
    start, end = sh * 60 + sm, eh * 60 + em
    return {(start + i) % 1440 for i in range((end - start) % 1440)}


@given(st.integers(0, 1439), st.integers(30, 180), st.integers(0, 6), st.integers(0, 1439), st.integers(30, 300))
def test_window_overlap_agrees_with_minute_by_minute_comparison(b_start: int, b_len: int, m_day: int, m_start: int,
                                                                m_len: int) -> None:
    def hhmm(m: int) -> str:
        return f"{m // 60 % 24:02d}:{m % 60:02d}"

    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    backup = f"{hhmm(b_start)}-{hhmm(b_start + b_len)}"
    m_abs = m_day * 1440 + m_start
    m_end = m_abs + m_len
    maintenance = (f"{days[m_day]}:{hhmm(m_start)}-{days[(m_end // 1440) % 7]}:{hhmm(m_end % 1440)}")
    backup_minutes = _minutes(backup)
    maintenance_minutes = {(m_abs + i) % 1440 for i in range(m_len)}
    assert _windows_overlap(backup, maintenance) == bool(backup_minutes & maintenance_minutes)


@pytest.mark.parametrize(("backup", "maintenance", "overlap"), [
    pytest.param("02:30-03:00", "sun:02:00-sun:02:30", False, id="backup-starts-as-sundays-maintenance-ends"),
    pytest.param("02:30-03:00", "sun:03:00-sun:03:30", False, id="backup-ends-as-sundays-maintenance-starts"),
    pytest.param("02:30-03:00", "sun:02:00-sun:03:00", True, id="backup-in-the-second-half-of-sundays-maintenance"),
    pytest.param("01:04-01:34", "sun:01:30-sun:02:00", True, id="backup-in-the-first-4-minutes-of-sundays-maintenance"),
    pytest.param("23:30-00:00", "mon:00:00-mon:00:30", False, id="sundays-backup-ends-as-mondays-maintenance-starts"),
    pytest.param("23:36-00:06", "mon:00:00-mon:00:30", True, id="sundays-backup-runs-6-minutes-into-monday"),
])
def test_windows_overlap_by_the_minute_across_days_and_the_end_of_the_week(backup: str, maintenance: str,
                                                                           overlap: bool) -> None:
    """The daily backup runs on each of the seven days; the week is a circle (Sunday night meets Monday)."""
    assert _windows_overlap(backup, maintenance) is overlap


def test_an_optional_name_that_is_given_is_kept_as_written() -> None:
    assert InstanceSettings.model_validate({"identifier": "edumatrix-main"}).identifier == "edumatrix-main"


def test_an_optional_fields_validator_checks_a_given_value_and_lets_none_pass() -> None:
    """(The fields' validators are built once, at import: this builds one again, from a check that marks its input.)"""
    validator = _optional(lambda value: f"checked {value}")
    assert (validator("edumatrix-main"), validator(None)) == ("checked edumatrix-main", None)


def test_a_backup_window_of_29_minutes_across_an_hour_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"the backup window 01:50-02:19 is shorter than the 30 minutes RDS "
                                              r"requires"):
        InstanceSettings.model_validate({"backupWindow": "01:50-02:19"})


@pytest.mark.parametrize(("text", "seconds"), [
    ("45s", 45), ("90m", 5400), ("4h", 14400), ("2h30m", 9000), ("1h1m1s", 3661), ("", None), ("4 h", None)])
def test_a_go_style_duration_reads_as_its_seconds(text: str, seconds: int | None) -> None:
    assert duration_seconds(text) == seconds
