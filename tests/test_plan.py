"""The offline plan runs the real program for every stack file and prints tree, JSON or Mermaid."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from config.loader import PROJECT_ROOT, available_stacks, load_stack
from edumatrix_db.cli import main
from edumatrix_db.offline.engine import Planner, run_program

ALL_STACKS = available_stacks()


def test_the_repository_has_the_four_environment_stacks() -> None:
    assert {"local", "dev", "staging", "prod"} <= set(ALL_STACKS)


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_every_stack_file_runs_under_mocks(planner: Planner, stack: str) -> None:
    recording = planner.plan(stack)
    assert recording.stack == stack
    assert recording.outputs["environment"] == recording.settings.environment.value


@pytest.mark.parametrize("stack", [s for s in ALL_STACKS if s != "local" and "-" not in s])
def test_every_aws_environment_stack_declares_exactly_one_shared_instance(planner: Planner, stack: str) -> None:
    assert len(planner.plan(stack).of_type("edumatrix:database:SharedInstance")) == 1


def test_the_local_stack_declares_no_aws_resource(planner: Planner) -> None:
    assert not [r for r in planner.plan("local").resources if r.type.startswith("aws:")]


def test_json_plan_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["project"] == "edumatrix-db"
    assert plan["stack"] == "prod"
    assert set(plan["resources"][0]) == {"urn", "type", "name", "parent", "provider", "inputs", "protect"}
    instance = next(r for r in plan["resources"] if r["type"] == "aws:rds/instance:Instance")
    assert instance["inputs"]["multiAz"] is True  # camelCase, as the engine receives them
    assert plan["outputs"]["identifier"] == "edumatrix-prod"


def test_secret_inputs_and_outputs_are_replaced_in_the_recording() -> None:
    settings = load_stack("dev")

    def program() -> None:
        version = aws.secretsmanager.SecretVersion("pw", secret_id="s", secret_string=pulumi.Output.secret("hunter2"))
        pulumi.export("secretString", version.secret_string)

    recording = run_program("dev", {}, settings=settings, program=program)
    dumped = json.dumps(recording.to_json())
    assert "hunter2" not in dumped
    assert recording.one("aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"] == "[secret]"
    assert recording.outputs["secretString"] == "[secret]"


def test_tree_plan_shows_components_and_key_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod"]) == 0
    tree = capsys.readouterr().out
    assert "edumatrix-prod  [edumatrix:database:SharedInstance]" in tree
    assert "multiAz: True" in tree
    assert "rds.restrict_password_commands=1" in tree


def test_mermaid_plan_draws_the_region_and_the_primary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "prod", "--format", "mermaid"]) == 0
    diagram = capsys.readouterr().out
    assert diagram.startswith("flowchart LR")
    assert 'subgraph region_us_east_1["us-east-1"]' in diagram
    assert "edumatrix-prod<br/>primary" in diagram


def test_an_unknown_stack_exits_2_with_the_error_and_no_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "edumatrix_db.cli", "plan", "nope"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "no stack named 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_stack_file_exits_2_naming_file_and_key(stacks_dir: Path, write_stack: Callable[[str, dict], Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_stack("typo", {"aws:region": "us-east-1", "edumatrix-db:environment": "dev",
                         "edumatrix-db:instance": {"multiAZ": False}})
    assert main(["plan", "typo", "--stacks-dir", str(stacks_dir)]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.typo.yaml: edumatrix-db:instance.multiAZ: unknown key" in err
    assert "did you mean 'multiAz'?" in err


def test_the_program_itself_refuses_bad_config_before_declaring_anything() -> None:
    """`pulumi up` runs __main__.py directly: it must fail the same way, as a RunError, with no resources."""
    settings = load_stack("dev")
    bad = {"edumatrix-db:environment": "dev", "edumatrix-db:instanse": "{}"}
    with pytest.raises(pulumi.RunError, match="edumatrix-db:instanse: unknown key"):
        run_program("dev", bad, settings=settings)


def test_a_missing_rds_ca_bundle_is_reported_as_a_warning(write_stack: Callable[[str, dict], Path],
                                                          stacks_dir: Path) -> None:
    config = {"aws:region": "us-east-1", "edumatrix-db:environment": "dev",
              "edumatrix-db:network": {"vpcId": "vpc-00000001",
                                       "subnetIds": ["subnet-00000001", "subnet-00000002"],
                                       "allowedCidrs": ["10.0.0.0/8"]},
              "edumatrix-db:instance": {"caBundlePath": str(stacks_dir / "absent.pem")}}
    write_stack("nobundle", config)
    assert any("absent.pem is missing" in w for w in Planner(stacks_dir).plan("nobundle").warnings)


def test_a_present_rds_ca_bundle_gives_no_warning(write_stack: Callable[[str, dict], Path], stacks_dir: Path) -> None:
    bundle = stacks_dir / "bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    package = stacks_dir / "ops-runner.zip"  # the ops runner's package, present too (else it warns)
    package.write_bytes(b"PK\x05\x06" + bytes(18))
    config = {"aws:region": "us-east-1", "edumatrix-db:environment": "dev",
              "edumatrix-db:network": {"vpcId": "vpc-00000001",
                                       "subnetIds": ["subnet-00000001", "subnet-00000002"],
                                       "allowedCidrs": ["10.0.0.0/8"]},
              "edumatrix-db:instance": {"caBundlePath": str(bundle)},
              "edumatrix-db:opsRunner": {"packagePath": str(package)}}
    write_stack("bundle", config)
    recording = Planner(stacks_dir).plan("bundle")
    assert recording.warnings == ()
    provider = recording.one("pulumi:providers:postgresql")
    assert provider.inputs["sslrootcert"] == str(bundle)
