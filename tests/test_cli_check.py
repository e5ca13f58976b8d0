"""`edumatrix-db check` and `plan --format json`: output shapes and exit codes."""

import json
import shutil
from pathlib import Path

import pytest

from config.loader import STACKS_DIR, available_stacks
from edumatrix_db.cli import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS, main


@pytest.fixture
def stacks_dir(tmp_path: Path) -> Path:
    target = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, target)
    return target


def _edit(stacks_dir: Path, stack: str, old: str, new: str) -> None:
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_check_without_arguments_checks_every_stack_file_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == EXIT_OK
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["policy", *available_stacks()]
    assert "rds-multi-az" in out
    assert "gate: passed" in out


def test_check_json_lists_resources_and_violations_per_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "prod", "dev", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"stacks", "idle"}
    assert set(data["stacks"]) == {"prod", "dev"}
    prod = data["stacks"]["prod"]
    assert prod["resources"] > 10
    assert prod["violations"] == []  # the shape of a violation: test_mandatory_violation_exits_1


def test_mandatory_violation_exits_1(stacks_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The config accepts 7 days anywhere; the prod policy config asks for the spec's 30.
    _edit(stacks_dir, "prod", "maxConnections: 1500", "maxConnections: 1500\n    backupRetentionDays: 7")
    assert main(["check", "--stacks-dir", str(stacks_dir), "--format", "json"]) == EXIT_VIOLATIONS
    data = json.loads(capsys.readouterr().out)["stacks"]
    failing = [(stack, v["policy"]) for stack, r in data.items() for v in r["violations"]
               if v["enforcement"] == "mandatory"]
    assert failing == [("prod", "rds-automated-backups")]
    assert {tuple(sorted(v)) for v in data["prod"]["violations"]} == {
        ("enforcement", "message", "policy", "severity", "urn")}


def test_dev_may_run_single_az_but_prod_config_refuses_it_with_exit_2(stacks_dir: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "dev", "--stacks-dir", str(stacks_dir)]) == EXIT_OK
    capsys.readouterr()
    _edit(stacks_dir, "prod", "maxConnections: 1500", "maxConnections: 1500\n    multiAz: false")
    assert main(["check", "--stacks-dir", str(stacks_dir), "--format", "json"]) == EXIT_CONFIG
    data = json.loads(capsys.readouterr().out)["stacks"]
    assert "multiAz" in data["prod"]["error"]
    assert "error" not in data["dev"]


def test_table_marks_a_failing_policy_and_the_failed_stack(stacks_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _edit(stacks_dir, "staging", "allocatedStorageGb: 100", "allocatedStorageGb: 100\n    backupRetentionDays: 3")
    assert main(["check", "staging", "--stacks-dir", str(stacks_dir)]) == EXIT_VIOLATIONS
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("rds-automated-backups"))
    # the shared instance and staging's extraction target, which takes the shared instance's settings
    assert row.split()[1:] == ["FAIL", "2"]
    assert "gate: FAILED: staging" in out


def test_unknown_stack_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "prdo"]) == EXIT_CONFIG
    assert "did you mean 'prod'" in capsys.readouterr().out


def test_plan_json_carries_the_stacks_violations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["stack"] == "prod"
    assert data["violations"] == []  # AWS Backup covers the instance (the advisory RDS.26 gap is closed)


def test_policy_config_prints_the_stacks_pack_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy-config", "dev"]) == EXIT_OK
    config = json.loads(capsys.readouterr().out)
    assert config["rds-multi-az"] == {"required": False}
    assert config["connection-budget"]["maxConnections"] == 500


def test_one_unreadable_stack_file_does_not_stop_check_judging_the_others(stacks_dir: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (stacks_dir / "Pulumi.dev.yaml").write_bytes(b"config:\n  edumatrix-db:environment: dev\n  # \xe9t\xe9\n")
    assert main(["check", "--stacks-dir", str(stacks_dir), "--format", "json"]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    data = json.loads(out)["stacks"]
    assert "Pulumi.dev.yaml" in data["dev"]["error"]
    assert "is not UTF-8 text" in data["dev"]["error"]
    judged = {stack: report["resources"] for stack, report in data.items() if "error" not in report}
    assert sorted(judged) == ["local", "prod", "prod-eu-west-1", "staging"]
    assert min(judged.values()) > 0
    assert "Traceback" not in err


def test_plan_of_a_broken_stack_file_exits_2_with_file_key_and_fix(stacks_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _edit(stacks_dir, "dev", "multiAz: false", "multiAz: no")
    assert main(["plan", "dev", "--stacks-dir", str(stacks_dir)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert "Pulumi.dev.yaml: edumatrix-db:instance.multiAz: expected true or false (got 'no')" in err
    assert "fix: write true or false" in err
    assert out == ""
