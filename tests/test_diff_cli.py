"""`edumatrix-db diff` end to end: a throwaway git repository holding this checkout's code, a base commit on
main, and a change on a branch; the command plans the base revision with the base's code and exits 3 only
when the change is dangerous."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edumatrix_db.cli import EXIT_DANGER, EXIT_OK

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("__main__.py", "Pulumi.yaml", "pyproject.toml", "config", "components", "edumatrix_db", "policy", "stacks")
CLI = "import sys; from edumatrix_db.cli import main; sys.exit(main())"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def edumatrix_db(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The copy's own command (its code first on sys.path), as CI would run it in a checkout."""
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=repo, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)}, check=False)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("diff") / "repo"
    repo.mkdir()
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", "venv"))
        else:
            shutil.copy(source, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


def edit(repo: Path, stack: str, old: str, new: str) -> None:
    path = repo / "stacks" / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_new_database_name_replaces_the_instance_and_exits_3_with_a_pasteable_warning(repo: Path) -> None:
    edit(repo, "staging", "allocatedStorageGb: 100", "allocatedStorageGb: 100\n    databaseName: edumatrix_main")
    try:
        result = edumatrix_db(repo, "diff", "staging", "--format", "markdown")  # base: merge base with main
    finally:
        git(repo, "checkout", "--", "stacks")
    assert result.returncode == EXIT_DANGER, result.stderr
    assert "(merge base with main)" in result.stdout
    assert "> [!CAUTION]" in result.stdout
    assert "is replaced (changed: dbName)" in result.stdout


def test_a_committed_resize_is_listed_and_exits_0(repo: Path) -> None:
    edit(repo, "staging", "instanceClass: db.r6g.large", "instanceClass: db.r6g.xlarge")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-am", "bigger staging")
    result = edumatrix_db(repo, "diff", "staging", "--base", "main", "--format", "json")
    assert result.returncode == EXIT_OK, result.stderr
    data = json.loads(result.stdout)
    assert data["dangers"] == []
    changes = {(c["name"], ch["path"], ch["after"]) for c in data["changed"] for ch in c["changes"]}
    assert ("edumatrix-staging-db", "instanceClass", "db.r6g.xlarge") in changes


def test_fewer_event_copies_replace_every_topic_and_exit_3(repo: Path) -> None:
    edit(repo, "staging", "replicationFactor: 2\n    minInsyncReplicas: 1",
         "replicationFactor: 1\n    minInsyncReplicas: 1")
    try:
        result = edumatrix_db(repo, "diff", "staging", "--format", "json")
    finally:
        git(repo, "checkout", "--", "stacks")
    assert result.returncode == EXIT_DANGER, result.stderr
    dangers = json.loads(result.stdout)["dangers"]
    assert {d["type"] for d in dangers} == {"aws:msk/topic:Topic"}
    assert all("(changed: replicationFactor)" in d["message"] for d in dangers)
