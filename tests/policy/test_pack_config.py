"""policy/pack.py: how an environment's policy config is found and refused, in the words a user reads; and the
defaults a policy's config schema gives (policy/base.py, what the gate fills in for an unset key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import Severity

from policy import pack
from policy.base import StackPolicy, TypedResourcePolicy


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(pack, "CONFIG_DIR", tmp_path)
    return tmp_path


def test_an_environments_policy_config_is_its_json_file_in_policy_config() -> None:
    assert pack.policy_config_file("prod") == Path(pack.__file__).resolve().parent / "config" / "prod.json"


def test_the_policy_config_is_the_files_mapping(config_dir: Path) -> None:
    config = {"events-alarms": {"enforcementLevel": "mandatory"}, "rds-automated-backups": {"minimumRetentionDays": 7}}
    (config_dir / "qa.json").write_text(json.dumps(config), encoding="utf-8")
    assert pack.load_policy_config("qa") == config


def test_an_environment_without_a_policy_config_file_is_named_with_the_path(config_dir: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        pack.load_policy_config("qa")
    assert str(caught.value) == f"{config_dir / 'qa.json'}: no policy config for environment 'qa'"


def test_policies_the_pack_does_not_have_are_listed_sorted(config_dir: Path) -> None:
    (config_dir / "qa.json").write_text(json.dumps({"zz-gone": {}, "events-alarms": {}, "aa-typo": {}}),
                                        encoding="utf-8")
    with pytest.raises(ValueError, match="unknown policies") as caught:
        pack.load_policy_config("qa")
    assert str(caught.value) == f"{config_dir / 'qa.json'}: unknown policies aa-typo, zz-gone"


def _noop(args: Any, report: Any) -> None:
    """A check that reports nothing (these tests read only a policy's metadata)."""


@pytest.mark.parametrize("kind", [TypedResourcePolicy, StackPolicy])
def test_a_policys_config_defaults_are_the_schema_properties_that_declare_one(kind: Any) -> None:
    config = {"minimumRetentionDays": {"type": "integer", "default": 30}, "defaultRegion": {"type": "string"},
              "required": {"type": "boolean", "default": False}}
    policy = kind("p", "d", types=[], validate=_noop, severity=Severity.LOW, remediation="r", config=config)
    assert policy.config_defaults() == {"minimumRetentionDays": 30, "required": False}


@pytest.mark.parametrize("kind", [TypedResourcePolicy, StackPolicy])
def test_a_policy_without_config_has_no_defaults(kind: Any) -> None:
    policy = kind("p", "d", types=[], validate=_noop, severity=Severity.LOW, remediation="r")
    assert policy.config_defaults() == {}
