"""Provider SDKs imported with PEP 563 annotations (`offline.lazy_annotations`) plan exactly as imported plainly,
and a plan lists its resources in the same order in every process.

Both need separate processes: in one process the provider modules are imported once, one way or the other.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from config.loader import PROJECT_ROOT, available_stacks
from edumatrix_db.offline import lazy_annotations, sdk_fastpath

_PLAN_EVERY_STACK = """
import dataclasses, json, sys
import pulumi
from edumatrix_db.offline import lazy_annotations
if sys.argv[1] == "lazy":
    assert lazy_annotations.install()
from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner, redact

planner = Planner()
stacks = {}
for stack in available_stacks():
    recording = planner.plan(stack)
    # every field; the order of a resource's dependencies varies between runs (the SDK awaits sets)
    resources = [{**dataclasses.asdict(r), "props": redact(r.props), "dependencies": sorted(r.dependencies)}
                 for r in recording.resources]  # redact: an asset as its path, not its address
    stacks[stack] = {"resources": resources,
                     "outputs": recording.outputs, "warnings": list(recording.warnings)}
import pulumi_aws.ec2.security_group as module
annotation = module.SecurityGroupArgs.__init__.__annotations__["description"]
print(json.dumps({"stacks": stacks, "annotation": type(annotation).__name__}, default=repr, sort_keys=True))
"""


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    """Every stack planned in three processes at once: two plain, one with the provider SDKs' annotations lazy."""
    runs = {name: subprocess.Popen([sys.executable, "-c", _PLAN_EVERY_STACK, name.rstrip("0123456789")],
                                   cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("plain1", "plain2", "lazy")}
    results = {}
    for name, process in runs.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        results[name] = json.loads(out)
    return results


def test_every_stack_plans_the_same_with_the_provider_annotations_unevaluated(plans):
    assert plans["lazy"]["annotation"] == "str"  # the loader was in use: the annotation is its source text
    assert plans["plain1"]["annotation"] != "str"
    assert set(plans["lazy"]["stacks"]) == set(available_stacks())
    assert plans["lazy"]["stacks"] == plans["plain1"]["stacks"]


def test_a_plan_lists_its_resources_in_the_same_order_in_every_process(plans):
    for stack in available_stacks():
        first = [r["urn"] for r in plans["plain1"]["stacks"][stack]["resources"]]
        second = [r["urn"] for r in plans["plain2"]["stacks"][stack]["resources"]]
        assert first == second, stack


# -- the loader on a package of its own ------------------------------------------------------------------------

_MODULE = "def answer(x: NotDefinedAnywhere) -> int:\n    return 42\n"


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A package whose module has an annotation that fails when evaluated; the finder installed for it."""
    root = tmp_path / "lazyann_probe"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text(_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [lazy_annotations.Pep563Finder(["lazyann_probe"]), *sys.meta_path])
    yield root
    for name in [n for n in sys.modules if n.startswith("lazyann_probe")]:
        del sys.modules[name]


def _import_fresh() -> Any:
    for name in [n for n in sys.modules if n.startswith("lazyann_probe")]:
        del sys.modules[name]
    import lazyann_probe.mod  # type: ignore[import-not-found]

    return lazyann_probe.mod


def test_a_module_loads_with_its_annotations_as_text_and_caches_that_bytecode_under_its_own_name(package):
    module = _import_fresh()
    assert module.answer.__annotations__ == {"x": "NotDefinedAnywhere", "return": "int"}
    cache = Path(lazy_annotations.cache_path(str(package / "mod.py")))
    assert cache.name.endswith(".opt-pep563.pyc")
    assert cache.is_file()


def test_the_cached_bytecode_is_read_instead_of_compiling_again(package, monkeypatch):
    _import_fresh()

    def no_compiling(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("compiled although the cache is valid")

    monkeypatch.setattr(lazy_annotations.Pep563Loader, "source_to_code", no_compiling)
    assert _import_fresh().answer(None) == 42


def test_a_changed_source_is_compiled_again_not_read_from_the_stale_cache(package):
    _import_fresh()
    source = package / "mod.py"
    source.write_text(_MODULE.replace("42", "43"))
    later = time.time() + 10
    os.utime(source, (later, later))
    assert _import_fresh().answer(None) == 43


def test_where_the_cache_cannot_be_written_the_ordinary_bytecode_is_used(package, monkeypatch):
    monkeypatch.setattr(lazy_annotations, "_writable", lambda _path: False)
    with pytest.raises(NameError, match="NotDefinedAnywhere"):  # evaluated as Python does without the flag
        _import_fresh()
    assert not Path(lazy_annotations.cache_path(str(package / "mod.py"))).exists()


def test_another_pulumi_version_imports_the_provider_sdks_as_they_are(monkeypatch):
    monkeypatch.setattr(sdk_fastpath, "installed_pulumi", lambda: "3.999.0")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    assert not lazy_annotations.install()
    assert not any(isinstance(finder, lazy_annotations.Pep563Finder) for finder in sys.meta_path)

