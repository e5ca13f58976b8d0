"""Helpers for the replica and region tests: copies of `stacks/` to change one file at a time."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError
from config.loader import STACKS_DIR, load_stack

TEMPLATE = STACKS_DIR / "templates" / "region.yaml.example"


def copy_stacks(tmp_path: Path) -> Path:
    """A copy of the project's stack files (templates excluded), to add or edit stack files in."""
    target = tmp_path / "stacks"
    target.mkdir()
    for path in STACKS_DIR.glob("Pulumi.*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def write_stack(stacks_dir: Path, name: str, text: str) -> Path:
    path = stacks_dir / f"Pulumi.{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def edit_stack(stacks_dir: Path, name: str, old: str, new: str) -> None:
    """Replace one exact piece of a stack file (fails loudly if it is not there)."""
    path = stacks_dir / f"Pulumi.{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def only_problem(stacks_dir: Path, name: str) -> tuple[str, str, str]:
    """(key, message, fix) of the one problem the loader finds in `name` (fails unless there is exactly one)."""
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks_dir)
    assert len(caught.value.problems) == 1, caught.value.render()
    found = caught.value.problems[0]
    assert found.source.endswith(f"Pulumi.{name}.yaml")
    return found.key, found.message, found.fix


def stack_errors(tmp_path: Path, stack: str, lines: str, anchor: str) -> str:
    """The loader's message for a copy of the stack files where `lines` were put before `anchor` in `stack`."""
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, stack, anchor, f"{lines}\n{anchor}")
    try:
        load_stack(stack, stacks)
    except ConfigError as error:
        return str(error)
    raise AssertionError(f"{stack} loaded without an error after adding {lines!r}")


def region_stack_from_template(region: str, *, vpc: str = "0d1b2c3d4e5f60718") -> str:
    """The template with its placeholders filled the way docs/new-region.md tells a person to."""
    values = {
        "<region>": region,
        "<vpc-id>": f"vpc-{vpc}",
        "<subnet-id-a>": "subnet-0d1b2c3d4e5f60001",
        "<subnet-id-b>": "subnet-0d1b2c3d4e5f60002",
        "<client-security-group-id>": "sg-0d1b2c3d4e5f60101",
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def add_secret_replica_region(stacks_dir: Path, region: str, primary: str = "prod") -> None:
    """List `region` in the primary's `secrets.replicaRegions`, as docs/new-region.md tells a person to."""
    path = stacks_dir / f"Pulumi.{primary}.yaml"
    text = path.read_text(encoding="utf-8")
    if "    replicaRegions:\n" in text:
        text = text.replace("    replicaRegions:\n", f"    replicaRegions:\n      - {region}\n", 1)
    else:
        text += f"  edumatrix-db:secrets:\n    replicaRegions:\n      - {region}\n"
    path.write_text(text, encoding="utf-8")
def data_key(recording: Any) -> Any:
    """The stack's data key (storage, secrets, logs): the key of the instance's foundation (the alarm topic and
    the credential copies in other regions have keys of their own)."""
    by_urn = {r.urn: r for r in recording.resources}

    def under_foundation(key: Any) -> bool:
        parent = by_urn.get(key.parent)  # the PlatformKey component
        grandparent = by_urn.get(parent.parent) if parent is not None else None
        return grandparent is not None and grandparent.type == "edumatrix:database:InstanceFoundation"

    (key,) = [r for r in recording.of_type("aws:kms/key:Key") if under_foundation(r)]
    return key
