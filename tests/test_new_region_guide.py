"""docs/new-region.md, proven: one stack file copied from the template, for a region no file mentions yet, plus
that region listed in prod's `secrets.replicaRegions`, passes configuration validation and the policy gate, and
plans a replica of prod in that region, under that region's key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import PROJECT_ROOT, STACKS_DIR, available_stacks, load_stack
from edumatrix_db.offline.engine import Planner, Recording
from tests.region_support import (
    TEMPLATE,
    add_secret_replica_region,
    copy_stacks,
    data_key,
    region_stack_from_template,
    write_stack,
)

NEW_REGION = "ap-southeast-2"
NEW_STACK = f"prod-{NEW_REGION}"
GUIDE = PROJECT_ROOT / "docs" / "new-region.md"


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of stacks/ plus one new file, written from the template as the guide says, and the region listed in
    prod's secrets.replicaRegions."""
    directory = copy_stacks(tmp_path_factory.mktemp("new-region"))
    write_stack(directory, NEW_STACK, region_stack_from_template(NEW_REGION))
    add_secret_replica_region(directory, NEW_REGION)
    return directory


@pytest.fixture(scope="module")
def plan(stacks: Path) -> Recording:
    return Planner(stacks).plan(NEW_STACK)


def test_the_region_is_one_no_stack_file_mentions_yet() -> None:
    assert all(NEW_REGION not in path.read_text(encoding="utf-8") for path in STACKS_DIR.glob("Pulumi.*.yaml"))


def test_the_file_and_one_line_in_prod_are_the_only_changes(stacks: Path) -> None:
    assert available_stacks(stacks) == sorted([*available_stacks(STACKS_DIR), NEW_STACK])
    for name in available_stacks(STACKS_DIR):
        if name != "prod":
            assert (stacks / f"Pulumi.{name}.yaml").read_bytes() == (STACKS_DIR / f"Pulumi.{name}.yaml").read_bytes()
    before = (STACKS_DIR / "Pulumi.prod.yaml").read_text(encoding="utf-8").splitlines()
    after = (stacks / "Pulumi.prod.yaml").read_text(encoding="utf-8").splitlines()
    assert [line for line in after if line not in before] == [f"      - {NEW_REGION}"]


def test_without_the_line_in_prod_the_new_stack_is_refused_with_the_fix(tmp_path: Path) -> None:
    directory = copy_stacks(tmp_path)
    write_stack(directory, NEW_STACK, region_stack_from_template(NEW_REGION))
    with pytest.raises(ConfigError) as caught:
        load_stack(NEW_STACK, directory)
    assert f"add {NEW_REGION} to edumatrix-db:secrets.replicaRegions" in caught.value.render()


def test_the_new_stack_file_passes_configuration_validation(stacks: Path) -> None:
    settings = load_stack(NEW_STACK, stacks)
    assert settings.aws_region == NEW_REGION
    assert settings.primary is not None
    assert (settings.primary.stack, settings.primary.region) == ("prod", "us-east-1")


def test_the_new_stack_file_passes_the_policy_gate(stacks: Path) -> None:
    from edumatrix_db.offline import gate

    report = gate.check_stack(NEW_STACK, Planner(stacks))
    assert not report.failed, gate.render_table([report])
    assert report.resources > 0


def test_the_new_stack_plans_a_replica_of_prod_in_its_region(stacks: Path, plan: Recording) -> None:
    replica = plan.one("aws:rds/instance:Instance")
    assert replica.inputs["region"] == NEW_REGION
    assert replica.inputs["replicateSourceDb"] == Planner(stacks).plan("prod").outputs["arn"]
    assert replica.props["address"].endswith(f".{NEW_REGION}.rds.amazonaws.com")


def test_the_new_replica_is_encrypted_with_a_key_of_its_region(plan: Recording) -> None:
    key = data_key(plan)
    assert key.inputs["region"] == NEW_REGION
    assert key.props["arn"].startswith(f"arn:aws:kms:{NEW_REGION}:")
    assert plan.one("aws:rds/instance:Instance").inputs["kmsKeyId"] == key.props["arn"]


def test_the_template_is_not_a_stack_file() -> None:
    assert TEMPLATE.is_file()
    assert not TEMPLATE.match("Pulumi.*.yaml")
    assert TEMPLATE.parent != STACKS_DIR  # the gate and the planner only read stacks/Pulumi.*.yaml


def test_the_guide_explains_every_placeholder_of_the_template() -> None:
    placeholders = set(re.findall(r"<[a-z-]+>", TEMPLATE.read_text(encoding="utf-8")))
    guide = GUIDE.read_text(encoding="utf-8")
    assert placeholders == {"<region>", "<vpc-id>", "<subnet-id-a>", "<subnet-id-b>", "<client-security-group-id>"}
    assert {p for p in placeholders if f"`{p}`" not in guide} == set()


def test_the_guide_names_the_commands_it_relies_on() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    for command in ("edumatrix-db check", f"edumatrix-db plan {NEW_STACK}", "pulumi up",
                    "stacks/templates/region.yaml.example"):
        assert command in guide
