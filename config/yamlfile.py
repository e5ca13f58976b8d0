"""Reading the project's YAML files (stack files, the service catalog) so that YAML cannot change what a person
wrote behind their back.

A plain `yaml.safe_load` reads YAML 1.1 and is lenient where that hurts configuration:
- a key given twice keeps the last value, silently (Pulumi's reader, gopkg.in/yaml.v2, does the same);
- `yes`, `no`, `on`, `off` become booleans, `0755` an octal number, `1_000` a thousand and `1:30` ninety
  (sexagesimal), `2024-01-01` a date; a date or a `!!set` then breaks JSON encoding far from the file.

Here the file is read with the YAML 1.2 core schema, narrowed to what every reader agrees on: `true`/`false`,
`null`/`~`, decimal integers without leading zeros or underscores, decimal floats with a point (`1.5`,
`1.0e+16`); everything else is text.
Duplicate keys, keys that are not text, and tags beyond the plain ones (str, int, float, bool, null, seq, map)
are problems naming the key path and the line. Bytes that are not UTF-8 are a problem naming the line.
The result is plain data that JSON can carry: dicts with text keys, lists, text, numbers, booleans, None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from config.errors import ConfigError, Problem

_CORE = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null"))
SEQ, MAP, MERGE = f"{_CORE}seq", f"{_CORE}map", f"{_CORE}merge"
PLAIN_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, SEQ, MAP})

# How a path of keys is shown: `edumatrix-db:network.subnetIds[1]`, the syntax of `pulumi config set --path`.
PathPart = str | int
KeyFormatter = Callable[[tuple[PathPart, ...]], str]


def dotted(path: tuple[PathPart, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# libyaml's parser when PyYAML was built with it (about ten times faster); resolution stays in Python.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CoreSchemaLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with the YAML 1.2 core schema's implicit types, narrowed (see the module docstring)."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


_CoreSchemaLoader.add_implicit_resolver(BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_CoreSchemaLoader.add_implicit_resolver(NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_CoreSchemaLoader.add_implicit_resolver(INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
# A float has a point (and an exponent only with a sign): `1e3` is a float to some readers and text to others.
_CoreSchemaLoader.add_implicit_resolver(
    FLOAT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)\.[0-9]*(?:[eE][-+][0-9]+)?$"), list("-+0123456789"))
_CoreSchemaLoader.add_implicit_resolver(MERGE, re.compile(r"^(?:<<)$"), ["<"])


def read_yaml(path: Path, source: str, *, key_of: KeyFormatter = dotted) -> Any:
    """The document in `path` as plain data, or a ConfigError naming `source`, the key and the fix.

    `key_of` turns a path of keys into the key a problem names (stack files drop their `config:` level).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(source, "", f"cannot be read: {exc.strerror or exc}",
                                   "make the file readable by the user running edumatrix-db or pulumi")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        where = key_at_line(data.decode("utf-8", errors="replace"), line, key_of)
        raise ConfigError([Problem(
            source, where, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
            "save the file as UTF-8 (Pulumi reads stack files as UTF-8), e.g. iconv -f latin1 -t utf-8")]) from None
    return parse_yaml(text, source, key_of=key_of)


def key_at_line(text: str, line: int, key_of: KeyFormatter = dotted) -> str:
    """The innermost key whose entry spans `line` (1-based), or `line N` when none does (a comment, a
    document that does not parse)."""
    try:
        node = yaml.compose(text, Loader=_CoreSchemaLoader)
    except yaml.YAMLError:
        node = None
    path = _path_at(node, line - 1, ()) if node is not None else None
    return key_of(path) if path else f"line {line}"


def _path_at(node: Node, line: int, path: tuple[PathPart, ...]) -> tuple[PathPart, ...] | None:
    """Entries are in file order: the one holding `line` is the last that starts on or before it."""
    found: tuple[PathPart, ...] | None = None
    inner: Node | None = None
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.start_mark.line <= line:
                found, inner = (*path, key_node.value), value_node
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            if item.start_mark.line <= line:
                found, inner = (*path, index), item
    if found is None or inner is None:
        return None
    return _path_at(inner, line, found) or found


def parse_yaml(text: str, source: str, *, key_of: KeyFormatter = dotted) -> Any:
    """Parse YAML text (see `read_yaml`)."""
    loader = _CoreSchemaLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = list(dict.fromkeys(_lint(node, (), source, key_of, set())))
        if problems:
            raise ConfigError(problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        line = _line_of(exc, text)
        raise ConfigError([Problem(source, f"line {line}", f"not valid YAML: {_one_line(exc)}",
                                   f"fix the YAML syntax on line {line} (or just above it): indentation, a "
                                   "missing ':' or an unclosed quote or bracket")]) from None
    finally:
        loader.dispose()


def _line_of(exc: yaml.YAMLError, text: str) -> int:
    """The line a YAML error is on: its mark's, or for a character YAML does not allow (a ReaderError, which has
    no mark) the line of its position in the text."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else 1


def _one_line(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(str(p) for p in (context, problem) if p) or str(exc)
    return " ".join(text.split())


def _lint(node: Node, path: tuple[PathPart, ...], source: str, key_of: KeyFormatter,
          seen: set[int]) -> list[Problem]:
    """Duplicate keys, keys that are not text, and tags that are not plain values, anywhere below `node`."""
    if id(node) in seen:  # an alias: its anchor was checked where it was defined
        return []
    seen.add(id(node))
    problems: list[Problem] = []
    where = key_of(path)
    if node.tag not in PLAIN_TAGS:
        problems.append(Problem(
            source, where, f"YAML tag {node.tag.replace(_CORE, '!!')} on line {node.start_mark.line + 1} is not a "
            "plain value", "write plain text, a number, true/false, a list or a mapping: stack configuration "
            "reaches the program as JSON, which has no sets, dates, binary or custom types"))
        return problems
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_lint(item, (*path, index), source, key_of, seen))
    elif isinstance(node, MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                problems.extend(_lint(value_node, path, source, key_of, seen))
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode) or key_node.tag != STR:
                shown = key_node.value if isinstance(key_node, ScalarNode) else "a list or mapping"
                problems.append(Problem(
                    source, where or f"line {line}", f"key {shown!r} on line {line} is not text",
                    f"quote the key (\"{shown}\")" if isinstance(key_node, ScalarNode)
                    else "keys are plain text; move the structure into the value"))
                continue
            name = key_node.value
            if name in lines:
                problems.append(Problem(
                    source, key_of((*path, name)), f"given twice (lines {lines[name]} and {line}); YAML readers "
                    "keep only one of them, Pulumi the last", "delete one of the two lines (or merge them)"))
            else:
                lines[name] = line
            problems.extend(_lint(value_node, (*path, name), source, key_of, seen))
    return problems
