"""`mutmut run`, with its type-check filter mapping mypy's errors to mutants through Python's own parser.

mutmut 3.8 maps every error of `type_check_command` to the mutant function holding it by parsing each mutated
file with libcst and position metadata: on this project's mutated copy (43 files, the largest tens of thousands
of lines) that took about ten minutes of the 30-minute budget, longer than mypy itself. `ast` gives the same
function spans in seconds. Everything else is mutmut's own (`make mutation` calls this instead of `mutmut run`).
A mutmut whose internals differ runs unpatched, with a warning.
"""

from __future__ import annotations

import ast
import bisect
import sys
from pathlib import Path
from typing import Any


def _mutated_functions(path: Path, is_mutated: Any, location: Any) -> list[Any]:
    """The mutant functions of a mutated file with their line spans (decorators included), by start line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_mutated(node.name):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append(location(file=path, function_name=node.name, line_number_start=start,
                                  line_number_end=node.end_lineno or node.lineno))
    return sorted(found, key=lambda m: m.line_number_start)


def patch() -> bool:
    try:
        import mutmut.__main__ as cli
        from mutmut.mutation import file_mutation as fm
        needed = (fm.run_type_checker, fm.group_by_path, fm.is_mutated_method_name, fm.MutatedMethodLocation,
                  fm.FailedTypeCheckMutant, fm.get_mutant_name, fm.change_cwd, fm.config,
                  cli.filter_mutants_with_type_checker)
    except (ImportError, AttributeError) as exc:
        print(f"scripts/mutmut_run.py: mutmut's internals changed ({exc}); running it unpatched", file=sys.stderr)
        return False
    del needed

    def filter_mutants_with_type_checker() -> dict[str, Any]:
        with fm.change_cwd(Path("mutants")):
            errors = fm.run_type_checker(fm.config().type_check_command)
            caught: dict[str, Any] = {}
            for path, errors_of_file in fm.group_by_path(errors).items():
                functions = _mutated_functions(path, fm.is_mutated_method_name, fm.MutatedMethodLocation)
                if not functions:
                    continue
                starts = [f.line_number_start for f in functions]
                for error in errors_of_file:
                    index = bisect.bisect_right(starts, error.line_number) - 1
                    mutant = functions[index] if index >= 0 else None
                    if mutant is None or error.line_number > mutant.line_number_end:
                        raise RuntimeError(f"no mutant holds the type error {path}:{error.line_number} "
                                           f"({error.error_description}): mypy must pass on the unmutated code")
                    name = fm.get_mutant_name(path.relative_to(Path(".").absolute()), mutant.function_name)
                    caught[name] = fm.FailedTypeCheckMutant(method_location=mutant, name=name, error=error)
            return caught

    cli.filter_mutants_with_type_checker = filter_mutants_with_type_checker
    return True


if __name__ == "__main__":
    patch()
    from mutmut.__main__ import cli as mutmut_cli

    sys.argv = ["mutmut", "run", *sys.argv[1:]]
    mutmut_cli()
