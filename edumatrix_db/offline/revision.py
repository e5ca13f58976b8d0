"""A stack's plan at a git revision, made by that revision's own code: its tree is exported with
`git archive` into a temporary directory and its `edumatrix-db plan STACK --format json` runs there, in a
subprocess with that tree first on `sys.path` (the base may have another engine, other components, other
stack files). The plan starts in the background so the working tree can be planned meanwhile.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from config.loader import PROJECT_ROOT

MAIN_BRANCHES = ("main", "origin/main")
# The console script's entry point, stable since the first release (README: `edumatrix_db.cli:main`).
_PLAN = "import sys; from edumatrix_db.cli import main; sys.exit(main())"


class RevisionError(Exception):
    """The base revision could not be resolved, exported or planned (the CLI exits 2 with this message)."""


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RevisionError(f"git {' '.join(args)}: {result.stderr.strip() or 'failed'}")
    return result.stdout.strip()


def default_base(project: Path = PROJECT_ROOT) -> str:
    """The merge base of HEAD with main (or origin/main, as in a CI clone)."""
    for branch in MAIN_BRANCHES:
        try:
            return _git("merge-base", "HEAD", branch, cwd=project)
        except RevisionError:
            continue
    raise RevisionError(f"no merge base of HEAD with {' or '.join(MAIN_BRANCHES)}: name the base with --base REV")


class PendingPlan:
    """`plan STACK --format json` of revision `rev`, running in the background until `result()`."""

    def __init__(self, stack: str, rev: str, project: Path = PROJECT_ROOT) -> None:
        self.stack, self.rev = stack, rev
        self.commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}", cwd=project)
        top = Path(_git("rev-parse", "--show-toplevel", cwd=project))
        self._workdir = tempfile.TemporaryDirectory(prefix="edumatrix-diff-")
        archive = subprocess.run(["git", "archive", "--format=tar", self.commit], cwd=top, capture_output=True,
                                 check=False)
        if archive.returncode != 0:
            self._workdir.cleanup()
            raise RevisionError(f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(self._workdir.name, filter="data")
        self.tree = Path(self._workdir.name) / project.resolve().relative_to(top.resolve())
        self.exists = (self.tree / "stacks" / f"Pulumi.{stack}.yaml").is_file()
        self._process: subprocess.Popen[bytes] | None = None
        self._streams: list[io.BufferedWriter] = []
        if self.exists:
            workdir = Path(self._workdir.name)
            self._streams = [(workdir / "plan.json").open("wb"), (workdir / "plan.err").open("wb")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(self.tree),
                                                                           os.environ.get("PYTHONPATH"))))}
            self._process = subprocess.Popen([sys.executable, "-c", _PLAN, "plan", stack, "--format", "json"],
                                             cwd=self.tree, env=env, stdout=self._streams[0],
                                             stderr=self._streams[1])

    def result(self) -> dict[str, Any] | None:
        """The base plan's JSON, or None when the stack file does not exist at the base."""
        try:
            if self._process is None:
                return None
            code = self._process.wait()
            for stream in self._streams:
                stream.close()
            workdir = Path(self._workdir.name)
            if code != 0:
                error = (workdir / "plan.err").read_text(errors="replace").strip().splitlines()[-15:]
                raise RevisionError(f"planning {self.stack} at {self.rev} ({self.commit[:12]}) failed with exit "
                                    f"{code}:\n" + "\n".join(error))
            plan: dict[str, Any] = json.loads((workdir / "plan.json").read_text())
            return plan
        finally:
            self.close()

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for stream in self._streams:
            stream.close()
        self._workdir.cleanup()
