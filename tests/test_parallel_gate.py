"""The gate checked in worker processes gives the verdicts the sequential gate gives, stack for stack."""

import json
from pathlib import Path

import pytest

from config.loader import available_stacks
from edumatrix_db.cli import EXIT_CONFIG, main
from edumatrix_db.offline import gate, parallel
from edumatrix_db.offline.engine import Planner
from tests.region_support import (
    add_secret_replica_region,
    copy_stacks,
    edit_stack,
    region_stack_from_template,
    write_stack,
)


def _normalized(reports: list[gate.StackReport]) -> dict:
    """The gate's JSON with each stack's violations sorted (resources register in a varying order, and
    violations follow resource order in both gates)."""
    data = json.loads(gate.render_json(reports))
    for stack in data["stacks"].values():
        stack["violations"].sort(key=lambda v: json.dumps(v, sort_keys=True))
    return data


def test_parallel_gate_json_equals_the_sequential_gate_on_every_stack_file(planner: Planner) -> None:
    stacks = available_stacks()
    sequential = gate.check_stacks(stacks, planner)
    assert _normalized(parallel.check_stacks(stacks, jobs=2).reports) == _normalized(sequential)


@pytest.fixture(scope="module")
def troubled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stacks with a mandatory violation (prod), a configuration error (staging) and two region stacks
    reading prod's outputs."""
    stacks = copy_stacks(tmp_path_factory.mktemp("troubled"))
    edit_stack(stacks, "prod", "maxConnections: 1500", "maxConnections: 1500\n    backupRetentionDays: 7")
    edit_stack(stacks, "staging", "edumatrix-db:environment: staging", "edumatrix-db:environment: stagin")
    write_stack(stacks, "prod-ap-southeast-2", region_stack_from_template("ap-southeast-2"))
    add_secret_replica_region(stacks, "ap-southeast-2")
    return stacks


def test_parallel_gate_reports_violations_and_errors_as_the_sequential_gate(troubled: Path) -> None:
    stacks = ["prod-ap-southeast-2", "staging", "prod", "prod-eu-west-1", "dev"]
    sequential = parallel.check_stacks(stacks, troubled, jobs=1)
    in_workers = parallel.check_stacks(stacks, troubled, jobs=2)
    assert _normalized(in_workers.reports) == _normalized(sequential.reports)
    assert [r.stack for r in in_workers.reports] == stacks
    assert {v.policy for v in in_workers.reports[2].violations if v.mandatory} == {"rds-automated-backups"}
    assert in_workers.reports[1].error is not None
    assert in_workers.warnings == sequential.warnings


def test_a_region_stack_checked_alone_plans_its_primary_without_reporting_it(troubled: Path) -> None:
    result = parallel.check_stacks(["prod-eu-west-1", "prod-ap-southeast-2"], troubled, jobs=2)
    assert [r.stack for r in result.reports] == ["prod-eu-west-1", "prod-ap-southeast-2"]
    assert all(r.error is None and r.resources > 0 for r in result.reports)
    assert "prod" in result.warnings  # planned (its warnings are shown), not reported


def test_region_stack_of_a_broken_primary_reports_the_primary_error(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "maxConnections: 1500", "maxConnections: 1500\n    multiAz: false")
    reports = parallel.check_stacks(["prod", "prod-eu-west-1"], stacks, jobs=2).reports
    assert all(r.error is not None and "multiAz" in r.error for r in reports)


def test_check_jobs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--jobs", "0"])
    assert exit_info.value.code == EXIT_CONFIG
    assert "give 1 or more" in capsys.readouterr().err


def test_the_modules_loaded_before_forking_are_the_provider_classes_the_components_use() -> None:
    import importlib

    from edumatrix_db.offline import sdk_fastpath

    sdk_fastpath.load_provider_services()
    used = parallel.provider_modules_used()
    assert ("pulumi_aws", "rds", "Instance") in used
    services = {(p, m): getattr(importlib.import_module(p), m, None) for p, m, _ in used}  # None: text only
    loaded = [(p, m, n) for p, m, n in used if services[p, m] and sdk_fastpath.exports(services[p, m], n)]
    assert len(loaded) > 100
    assert all(hasattr(getattr(importlib.import_module(p), m), n) for p, m, n in loaded)


def _used_by_syntax_tree(components: Path) -> set[tuple[str, str, str]]:
    """The reference reading: `alias.module.Name` attribute chains in the parsed source."""
    import ast

    used: set[tuple[str, str, str]] = set()
    for path in sorted(components.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {alias.asname or alias.name: alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for alias in node.names if alias.name.startswith("pulumi_")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name) and node.value.value.id in aliases):
                used.add((aliases[node.value.value.id], node.value.attr, node.attr))
    return used


def test_the_provider_classes_read_from_the_components_text_include_every_use_their_syntax_trees_show() -> None:
    from config.loader import PROJECT_ROOT

    components = PROJECT_ROOT / "components"
    assert parallel.provider_modules_used(components) >= _used_by_syntax_tree(components)


def test_text_that_only_looks_like_a_provider_use_is_not_loaded_before_forking() -> None:
    import pulumi_aws

    from edumatrix_db.offline import sdk_fastpath

    sdk_fastpath.load_provider_services()
    assert sdk_fastpath.exports(pulumi_aws.gamelift, "Fleet")  # a service no test loads whole
    assert not sdk_fastpath.exports(pulumi_aws.gamelift, "json")  # as in a string mentioning `aws.gamelift.json`


def test_the_provider_uses_are_read_under_any_alias_and_not_from_longer_names(tmp_path: Path) -> None:
    (tmp_path / "one.py").write_text("import pulumi_aws as cloud\nimport pulumi_random\n"
                                     "x = cloud.rds.Instance(y.cloud.s3.Bucket, pulumi_random.random_password.X)\n"
                                     "w = cloud.s3.\n    BucketV2\n"
                                     "z = mycloud.kms.Key\n")
    assert parallel.provider_modules_used(tmp_path) == {("pulumi_aws", "rds", "Instance"),
                                                        ("pulumi_aws", "s3", "BucketV2"),
                                                        ("pulumi_random", "random_password", "X")}


def test_workers_take_the_primary_first_and_region_stacks_after_every_platform_stack() -> None:
    from config.loader import STACKS_DIR, available_stacks

    order = parallel.schedule(*parallel._closure(available_stacks(), STACKS_DIR))
    assert order[0] == "prod"
    assert order[-1] == "prod-eu-west-1"


def test_a_worker_collects_past_the_memory_limit_and_then_only_as_its_peak_grows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import resource
    from types import SimpleNamespace

    peaks = iter((500, 1000, 1100, 1200, 1500, 1700, 2000, 2300))
    current = [0]
    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda: collections.append(current[0]))
    monkeypatch.setattr(parallel, "_collected_at_mb", [0])
    monkeypatch.setattr(resource, "getrusage", lambda _who: SimpleNamespace(ru_maxrss=current[0] * 1024))
    for peak_mb in peaks:
        current[0] = peak_mb
        parallel.collect_when_large()
    assert collections == [1100, 1700, 2300]
