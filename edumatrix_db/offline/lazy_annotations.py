"""Import the provider SDKs (pulumi-aws, pulumi-postgresql, pulumi-random) with their annotations left unevaluated.

The generated modules of a provider SDK annotate every argument and property (`pulumi.Input[Optional[Sequence[
pulumi.Input['SecurityGroupIngressArgs']]]]`, thousands in `aws.ec2`'s `_inputs.py` and `outputs.py`), and Python
evaluates each annotation when the module is imported: building those `typing` objects is about half of the
import time of such a module (measured: `aws.ec2` inputs and outputs 0.6 -> 0.3 s of CPU). Compiled with
`from __future__ import annotations` (PEP 563), an annotation is kept as its source text instead, and the only
code that reads them, pulumi's `_types` (output types of a resource class and of an output type, through
`typing.get_type_hints` with the class's module globals), evaluates that text when it first needs it, to the
same types. `tests/test_lazy_annotations.py` proves the plans of every stack file equal with and without it,
in separate processes.

`install()` puts a finder first on `sys.meta_path` that gives these packages' source modules a loader compiling
them with that flag. Its bytecode is cached next to the SDK's own (`importlib.util.cache_from_source(...,
optimization="pep563")`: `__pycache__/<module>.cpython-311.opt-pep563.pyc`): the interpreter's tag in the name
and the magic number in the header keep another Python from reading it, the source's mtime and size in the
header (as in a standard pyc) make an upgraded package recompile. Where that directory is not writable the
module loads from its ordinary bytecode, annotations evaluated: compiling in memory each time would cost more
than it saves (0.34 s of CPU for `aws.ec2._inputs` alone). The cache is written even when
PYTHONDONTWRITEBYTECODE is set (it is on the development machine): it goes only into the installed SDK's own
`__pycache__`, which pip fills with bytecode at install anyway, never into the project's tree.

Installed only on the pulumi version the offline fast path was written for (`sdk_fastpath.SUPPORTED_PULUMI`),
and only by the offline commands run as processes (`edumatrix-db plan|check|diff`), before any provider module
is imported.
"""

from __future__ import annotations
import __future__

import importlib.machinery
import importlib.util
import marshal
import os
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType
from typing import Any

from config.loader import PROVIDER_PACKAGES

FLAG = __future__.annotations.compiler_flag
CACHE_TAG = "pep563"


class Pep563Loader(importlib.machinery.SourceFileLoader):
    """A source loader compiling with PEP 563 annotations, its bytecode cached under its own name."""

    def source_to_code(self, data: Any, path: Any, *, _optimize: int = -1) -> CodeType:  # type: ignore[override]
        return compile(data, path, "exec", flags=FLAG, dont_inherit=True, optimize=_optimize)

    def get_code(self, fullname: str) -> CodeType | None:
        source_path = self.get_filename(fullname)
        bytecode_path = cache_path(source_path)
        stats = self.path_stats(source_path)
        header = pyc_header(int(stats["mtime"]), stats["size"])
        try:
            data = self.get_data(bytecode_path)
            if data[:16] == header:  # this interpreter's magic number, the source's mtime and size
                code = marshal.loads(memoryview(data)[16:])
                if isinstance(code, CodeType):
                    return code
        except (OSError, EOFError, ValueError, TypeError):
            pass  # no cache, or a damaged one: compile
        if not _writable(bytecode_path):  # compiling costs more than it saves: the ordinary bytecode instead
            return importlib.machinery.SourceFileLoader(self.name, self.path).get_code(fullname)
        code = self.source_to_code(self.get_data(source_path), source_path)
        self.set_data(bytecode_path, header + marshal.dumps(code))  # atomic; ignores a failure to write
        return code


def pyc_header(mtime: int, size: int) -> bytes:
    """A timestamp-based pyc header (PEP 552): magic number, flags 0, the source's mtime and size."""
    return (importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + (mtime & 0xFFFFFFFF).to_bytes(4, "little")
            + (size & 0xFFFFFFFF).to_bytes(4, "little"))


def cache_path(source_path: str) -> str:
    """Where the PEP 563 bytecode of `source_path` is cached (the optimization level is part of the name)."""
    level = sys.flags.optimize
    return importlib.util.cache_from_source(source_path, optimization=f"{CACHE_TAG}{level or ''}")


def _writable(path: str) -> bool:
    directory = os.path.dirname(path)
    return os.access(directory if os.path.isdir(directory) else os.path.dirname(directory), os.W_OK)


class Pep563Finder:
    """Finds the modules of `packages` as the path finder does, with `Pep563Loader` for their source files."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = tuple(packages)

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith(self.packages) or name.split(".", 1)[0] not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = Pep563Loader(spec.loader.name, spec.loader.path)
        return spec

    def invalidate_caches(self) -> None:
        """Nothing of its own to invalidate (the path finder keeps the directory caches)."""


def install(packages: Sequence[str] = tuple(PROVIDER_PACKAGES.values())) -> bool:
    """Put the finder first on `sys.meta_path` (once) for `packages` unless pulumi is not the supported version;
    whether it is in place. Modules imported before keep their evaluated annotations (either way is the same
    to pulumi), so call it before the first provider import for the whole saving."""
    from edumatrix_db.offline import sdk_fastpath  # imports pulumi, not the provider SDKs

    if any(isinstance(finder, Pep563Finder) for finder in sys.meta_path):
        return True
    if not sdk_fastpath.supported():
        return False
    sys.meta_path.insert(0, Pep563Finder(packages))
    return True


def uninstall() -> None:
    """Remove the finder (modules it loaded stay as they are)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, Pep563Finder)]
