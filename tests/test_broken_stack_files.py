"""Broken copies of the repository's stack files (tests/stack_mutations.py) are each refused before anything is
declared, with the file, the key and a fix, and `edumatrix-db check` exits 2 on them without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.errors import ConfigError, Problem
from config.loader import STACKS_DIR, load_stack, read_stack_config, settings_from_config
from edumatrix_db.cli import EXIT_CONFIG, main
from edumatrix_db.offline.engine import stack_config_as_engine_passes_it
from tests.region_support import copy_stacks, edit_stack
from tests.stack_mutations import MUTATIONS, Mutation

IDS = [m.id for m in MUTATIONS]


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    return copy_stacks(tmp_path)


def _problems(stacks: Path, name: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks)
    return caught.value.problems


@pytest.mark.parametrize("mutation", MUTATIONS, ids=IDS)
def test_a_broken_stack_file_is_refused_with_the_file_the_key_and_a_fix(stacks: Path, mutation: Mutation) -> None:
    path = mutation.apply(stacks)
    problems = _problems(stacks, mutation.target)
    rendered = "\n".join(p.render() for p in problems)
    assert all(p.source.endswith(path.name) and p.key and p.fix for p in problems), rendered
    named = [p for p in problems if p.key == mutation.key]
    assert named, f"no problem names {mutation.key!r}:\n{rendered}"
    assert any(mutation.fix in p.fix for p in named), rendered


@pytest.mark.parametrize("mutation", MUTATIONS, ids=IDS)
def test_check_exits_2_on_a_broken_stack_file_and_prints_file_key_and_fix(
        stacks: Path, mutation: Mutation, capsys: pytest.CaptureFixture[str]) -> None:
    path = mutation.apply(stacks)
    assert main(["check", mutation.target, "--stacks-dir", str(stacks), "--format", "json"]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    error = json.loads(out)["stacks"][mutation.target]["error"]
    assert (path.name in error, f"{mutation.key}:" in error, "fix: " in error) == (True, True, True), error
    assert "Traceback" not in out + err


def test_the_repository_stack_files_stay_valid() -> None:
    for name in ("local", "dev", "staging", "prod", "prod-eu-west-1"):
        assert load_stack(name).stack == name


def test_other_namespaces_of_the_program_are_accepted(stacks: Path) -> None:
    edit_stack(stacks, "dev", "config:\n", "config:\n  aws:profile: edumatrix-dev\n  postgresql:sslmode: "
                                           "verify-full\n  pulumi:tags: {team: platform}\n")
    assert load_stack("dev", stacks).environment.value == "dev"


def test_yaml_anchors_and_merge_keys_are_read_as_pulumi_reads_them(stacks: Path) -> None:
    edit_stack(stacks, "dev", "  edumatrix-db:services:\n    students_platform: {poolSize: 10}\n",
               "  edumatrix-db:services:\n    students_platform: &small {poolSize: 10}\n"
               "    jobs_portal:\n      <<: *small\n      readonlyPoolSize: 2\n")
    services = load_stack("dev", stacks).services
    assert (services["jobs_portal"].pool_size, services["jobs_portal"].readonly_pool_size) == (10, 2)


def test_dates_are_text_as_written(stacks: Path) -> None:
    edit_stack(stacks, "dev", "config:\n", "config:\n  edumatrix-db:tags: {reviewed: 2024-01-01}\n")
    assert load_stack("dev", stacks).tags == {"reviewed": "2024-01-01"}


def test_the_program_refuses_what_the_file_says_although_the_engine_read_yaml_1_1(stacks: Path) -> None:
    """Pulumi reads `multiAz: no` as false (YAML 1.1): the program judges the file's text instead."""
    edit_stack(stacks, "dev", "multiAz: false", "multiAz: no")
    engine = stack_config_as_engine_passes_it({**_dev_config(), "edumatrix-db:instance": {
        "instanceClass": "db.t4g.medium", "allocatedStorageGb": 20, "maxAllocatedStorageGb": 100, "multiAz": False,
        "deletionProtection": False, "backupRetentionDays": 7, "maxConnections": 500}})
    with pytest.raises(ConfigError) as caught:
        settings_from_config(engine, stack="dev", source="stacks/Pulumi.dev.yaml", stacks_dir=stacks)
    [problem] = caught.value.problems
    assert (problem.key, problem.message) == ("edumatrix-db:instance.multiAz", "expected true or false (got 'no')")


def test_the_program_refuses_a_key_the_file_gives_twice(stacks: Path) -> None:
    edit_stack(stacks, "dev", "  aws:region: us-east-1\n", "  aws:region: us-east-1\n  aws:region: us-west-2\n")
    engine = stack_config_as_engine_passes_it({**_dev_config(), "aws:region": "us-west-2"})
    with pytest.raises(ConfigError, match=r"aws:region: given twice \(lines 4 and 5\)"):
        settings_from_config(engine, stack="dev", source="stacks/Pulumi.dev.yaml", stacks_dir=stacks)


def test_without_a_stack_file_the_program_validates_what_the_engine_passes(stacks: Path) -> None:
    engine = stack_config_as_engine_passes_it(_dev_config())
    assert settings_from_config(engine, stack="elsewhere", source="x.yaml", stacks_dir=stacks).stack == "elsewhere"
    engine["edumatrix-db:network"] = engine["edumatrix-db:network"].replace('"10.20.0.0/16"', "10")
    with pytest.raises(ConfigError, match=r"allowedCidrs\[0\]: expected text \(got 10\)"):
        settings_from_config(engine, stack="elsewhere", source="x.yaml", stacks_dir=stacks)


def test_a_secret_in_the_file_is_taken_from_the_engine(stacks: Path) -> None:
    edit_stack(stacks, "dev", "config:\n", "config:\n  postgresql:password:\n    secure: v1:AAAA\n")
    engine = stack_config_as_engine_passes_it({**_dev_config(), "postgresql:password": "decrypted"})
    assert settings_from_config(engine, stack="dev", source="stacks/Pulumi.dev.yaml", stacks_dir=stacks).stack == "dev"


def _dev_config() -> dict[str, object]:
    config, _ = read_stack_config("dev", STACKS_DIR)
    return dict(config)


def test_the_program_judges_the_file_in_its_own_stacks_directory_not_the_repositorys(stacks: Path) -> None:
    """A stack that only the given directory holds: its file's text is still what is judged."""
    (stacks / "Pulumi.mine.yaml").write_text(
        (stacks / "Pulumi.dev.yaml").read_text().replace("multiAz: false", "multiAz: no"))
    engine = stack_config_as_engine_passes_it({**_dev_config(), "edumatrix-db:instance": {
        "instanceClass": "db.t4g.medium", "allocatedStorageGb": 20, "maxAllocatedStorageGb": 100, "multiAz": False,
        "deletionProtection": False, "backupRetentionDays": 7, "maxConnections": 500}})
    with pytest.raises(ConfigError) as caught:
        settings_from_config(engine, stack="mine", source="stacks/Pulumi.mine.yaml", stacks_dir=stacks)
    assert [(p.key, p.message) for p in caught.value.problems] == [
        ("edumatrix-db:instance.multiAz", "expected true or false (got 'no')")]
