"""Reading stack files into StackSettings, with errors a person can act on.

Two entry points share one validator (`validate_config`):
- `load_stack(name)` reads `stacks/Pulumi.<name>.yaml` (the CLI, the offline plan, the tests);
- `settings_from_config(config, ...)` takes the flat `namespace:key -> value` map that the Pulumi engine
  hands the program (`__main__.py` passes it in; every value arrives as a string, structured ones as JSON).
Every mistake becomes a `ConfigError` naming the file, the key, what is wrong and the fix, raised before
any resource is declared. All problems of a file are reported together.

What a stack file may say:
- keys are `namespace:key`; the namespaces are this project's (`edumatrix-db`), the providers' the program
  uses (`aws`, `postgresql`, `random`; their keys are checked against the installed SDK's config list) and
  Pulumi's own (`pulumi:`). Anything else is refused with a did-you-mean, since Pulumi ignores it silently;
- values are read as YAML 1.2 (config.yamlfile: duplicate keys, YAML 1.1 spellings, non-UTF-8 bytes, sets
  and dates are refused) and validated strictly: booleans are true/false, numbers are unquoted numbers.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import typing
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from config.access import SUPERUSER_RESERVED_CONNECTIONS, platform_connection_demand
from config.catalog import load_catalog
from config.connections import connection_problems
from config.errors import ConfigError, Problem, SettingError
from config.events import events_problems, publishers, with_replication_budget
from config.extraction_plan import extraction_problems
from config.monitoring import monitoring_problems
from config.preflight import preflight_problems
from config.regions import REGION_KEY, region_problems, resolve_region_stack, secret_replica_problems
from config.settings import NAMESPACE, Environment, Model, StackSettings
from config.stack_rules import network_reuse_problems, stack_problems, zone_reuse_problems
from config.yamlfile import PathPart, dotted, read_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_ROOT / "stacks"

# Keys that were renamed: old dotted key -> new dotted key. A stack file still using an old name gets an
# error that says the new one (stack-file keys are an interface; they are never renamed silently).
RENAMED_KEYS: dict[str, str] = {
    # ReplicaLag is reported in seconds (LagAlarmSettings reports the nested keys with the same advice).
    f"{NAMESPACE}:region.lagThresholdMs": f"{NAMESPACE}:region.lagThresholdSeconds",
    f"{NAMESPACE}:replicas.lagThresholdMs": f"{NAMESPACE}:replicas.lagThresholdSeconds",
}

# Keys of other namespaces the program reads.
FOREIGN_KEYS = {"aws:region": "aws_region"}
# Fields of StackSettings the loader fills; a stack file cannot set them.
DERIVED_FIELDS = {"stack", "source", "primary"}
# Providers the program declares resources with: config namespace -> Python SDK package. A key in one of these
# namespaces must be one the provider reads (its SDK's config/vars.py lists them).
PROVIDER_PACKAGES = {"aws": "pulumi_aws", "postgresql": "pulumi_postgresql", "random": "pulumi_random"}
# Pulumi's own namespace (e.g. `pulumi:tags`); not checked further.
PULUMI_NAMESPACE = "pulumi"
NAMESPACES = (NAMESPACE, *PROVIDER_PACKAGES, PULUMI_NAMESPACE)

# The stacks directory sibling stack files are read from (a region stack reads its primary's file). The offline
# engine sets it for the program it runs, so plans of a copied `stacks/` read the copy.
_STACKS_DIR_IN_USE: ContextVar[Path] = ContextVar("edumatrix_db_stacks_dir", default=STACKS_DIR)


def stacks_dir_in_use() -> Path:
    return _STACKS_DIR_IN_USE.get()


def use_stacks_dir(stacks_dir: Path) -> None:
    """Make `settings_from_config` read sibling stack files from `stacks_dir` (in the current context)."""
    _STACKS_DIR_IN_USE.set(stacks_dir)


def stack_path(name: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / f"Pulumi.{name}.yaml"


def available_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def read_stack_config(name: str, stacks_dir: Path = STACKS_DIR) -> tuple[dict[str, Any], str]:
    """The `config:` map of a stack file as written (config.yamlfile), and the file's display name.

    Raises ConfigError for a missing, unreadable or non-UTF-8 file, invalid YAML, keys given twice, values YAML
    cannot carry to the program as plain JSON, and a file that is not a `config:` mapping.
    """
    path = stack_path(name, stacks_dir)
    source = display_path(path)
    if not path.is_file():
        known = available_stacks(stacks_dir)
        hint = difflib.get_close_matches(name, known, n=1)
        raise ConfigError([Problem(
            source, "", f"no stack named {name!r}",
            (f"did you mean {hint[0]!r}? " if hint else "") + f"known stacks: {', '.join(known) or 'none'}",
        )])
    data = read_yaml(path, source, key_of=_stack_file_key) or {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, "config", "a stack file is a mapping with a `config:` key",
                                   "start the file with `config:` and indent `namespace:key: value` lines below it")])
    extra = sorted(set(data) - {"config", "secretsprovider", "encryptedkey", "encryptionsalt"})
    if extra:
        raise ConfigError([Problem(source, extra[0], "unknown top-level key", "put settings under `config:`")])
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([Problem(source, "config", "must be a mapping of `namespace:key: value`",
                                   "indent the settings below `config:`, one `namespace:key: value` per line")])
    return config, source


def _stack_file_key(path: tuple[PathPart, ...]) -> str:
    """Keys below `config:` are named as Pulumi names them (`edumatrix-db:instance.multiAz`)."""
    return dotted(path[1:]) if path[:1] == ("config",) and len(path) > 1 else dotted(path)


def load_stack(name: str, stacks_dir: Path = STACKS_DIR) -> StackSettings:
    """Read and validate `stacks/Pulumi.<name>.yaml`."""
    config, source = read_stack_config(name, stacks_dir)
    return validate_config(config, stack=name, source=source, stacks_dir=stacks_dir)


def settings_from_config(config: Mapping[str, Any], *, stack: str, source: str,
                         stacks_dir: Path | None = None) -> StackSettings:
    """Validate the config map the Pulumi engine hands the program (`namespace:key -> str`) into StackSettings.

    The engine passes every value as a string (structured values as JSON) after reading the stack file with a
    YAML 1.1 reader, which turns `yes` into true. So where the stack file exists (in the program's stacks
    directory) its values are validated as written, and the file's own problems (keys given twice, encoding)
    are reported; keys the file does not hold (set another way) are validated as the engine passes them.
    """
    directory = stacks_dir or stacks_dir_in_use()
    written: dict[str, Any] = {}
    if stack_path(stack, directory).is_file():
        written, _ = read_stack_config(stack, directory)
    typed = {key: written[key] if key in written and not _is_secure(written[key]) else _decode(value)
             for key, value in config.items()}
    return validate_config(typed, stack=stack, source=source, stacks_dir=directory)


def validate_config(config: Mapping[str, Any], *, stack: str, source: str,
                    stacks_dir: Path | None = None) -> StackSettings:
    """Validate a flat config map (`namespace:key -> value`, values as YAML wrote them) or raise ConfigError.

    Types are strict: a boolean setting takes true or false, a number a number, text text. A region stack
    is also checked against its primary's stack file in `stacks_dir` (default: the one in use).
    """
    directory = stacks_dir or stacks_dir_in_use()
    problems: list[Problem] = []
    raw: dict[str, Any] = {"stack": stack, "source": source}
    # Stack-file keys are aliases (camelCase); derived fields and other namespaces' keys are not settable here.
    allowed = _allowed_keys(StackSettings) - {to_camel(f) for f in (*DERIVED_FIELDS, *FOREIGN_KEYS.values())}
    for full_key, value in config.items():
        namespace, colon, key = str(full_key).partition(":")
        if full_key in FOREIGN_KEYS:
            raw[FOREIGN_KEYS[full_key]] = value
        elif not colon:
            problems.append(_key_without_namespace(source, str(full_key), allowed))
        elif full_key in RENAMED_KEYS:
            problems.append(Problem(source, full_key, "this key was renamed",
                                    f"rename it to {RENAMED_KEYS[full_key]!r}"))
        elif namespace == NAMESPACE:
            if key in allowed:
                raw[key] = _decode(value)
            else:
                problems.append(_unknown_key(source, full_key, key, allowed))
        elif namespace in PROVIDER_PACKAGES:
            problems.extend(_provider_key_problems(source, namespace, key))
        elif namespace != PULUMI_NAMESPACE:
            problems.append(_unknown_namespace(source, full_key, namespace, key))
    if problems:
        raise ConfigError(problems)
    try:
        settings = StackSettings.model_validate_json(json.dumps(raw), strict=True)
    except ValidationError as exc:
        raise ConfigError(_translate(exc, source, raw, directory)) from None
    siblings = available_stacks(directory)
    problems = (cross_checks(settings) + network_reuse_problems(settings, directory, read_stack_config, siblings)
                + zone_reuse_problems(settings, directory, read_stack_config, siblings))
    if problems:
        raise ConfigError(problems)
    settings = with_replication_budget(settings)
    settings, problems = resolve_region_stack(settings, directory, load=load_stack, read=read_stack_config,
                                              known=available_stacks(directory))
    problems += secret_replica_problems(settings, directory, read=read_stack_config, known=available_stacks(directory))
    if problems:
        raise ConfigError(problems)
    return settings


def cross_checks(settings: StackSettings) -> list[Problem]:
    """Rules that span sections: unknown services, environment posture, the connection budget."""
    src, ns = settings.source, NAMESPACE
    problems: list[Problem] = []
    catalog_names = load_catalog().names
    for service in settings.services:
        if service not in catalog_names:
            hint = difflib.get_close_matches(service, catalog_names, n=1)
            problems.append(Problem(
                src, f"{ns}:services.{service}", "unknown service",
                (f"did you mean {hint[0]!r}? " if hint else "") + f"services: {', '.join(catalog_names)}",
            ))
    problems.extend(preflight_problems(settings))
    if settings.is_local and settings.replicas.count:
        problems.append(Problem(src, f"{ns}:replicas.count", "the local stack has no RDS instance to replicate",
                                "remove the key"))
    if "ops_runner" in settings.model_fields_set and (settings.is_local or settings.is_region_stack):
        problems.append(Problem(src, f"{ns}:opsRunner", "only a primary AWS stack runs the ops runner",
                                "remove the key (the runner of the primary stack covers this database)"))
    problems.extend(backup_window_problems(settings))
    if "backups" in settings.model_fields_set and (settings.is_local or settings.is_region_stack):
        problems.append(Problem(src, f"{ns}:backups", "only a primary AWS stack declares AWS Backup",
                                "remove the key (the primary stack's plan covers this database and copies its "
                                "daily backups into this region)"))
    if not settings.is_local:
        if not settings.aws_region:
            problems.append(Problem(src, "aws:region", "required for an AWS stack", "add `aws:region: us-east-1`"))
        problems.extend(region_problems(settings))
        if settings.network is None:
            problems.append(Problem(src, f"{ns}:network", "required for an AWS stack",
                                    "add vpcId, subnetIds and allowedSecurityGroupIds/allowedCidrs"))
    if settings.environment is Environment.PROD:
        inst = settings.instance
        for key, value in (("multiAz", inst.multi_az), ("deletionProtection", inst.deletion_protection),
                           ("finalSnapshot", inst.final_snapshot), ("iamAuth", inst.iam_auth)):
            if not value:
                problems.append(Problem(src, f"{ns}:instance.{key}", "cannot be false in prod",
                                        "remove the key (the default is true); only dev may turn it off"))
        if inst.monitoring_interval_seconds == 0:
            problems.append(Problem(src, f"{ns}:instance.monitoringIntervalSeconds",
                                    "enhanced monitoring cannot be off in prod", "use 60 or less"))
        if not settings.ops_runner.enabled:
            problems.append(Problem(src, f"{ns}:opsRunner.enabled", "the isolation audit cannot be off in prod",
                                    "remove the key (the default is true); only dev may turn it off"))
        if not settings.backups.enabled:
            problems.append(Problem(src, f"{ns}:backups.enabled", "AWS Backup cannot be off in prod (spec 6.A, "
                                    "Security Hub RDS.26)", "remove the key (the default is true)"))
    problems.extend(stack_problems(settings))
    problems.extend(monitoring_problems(settings))
    problems.extend(connection_problems(settings))
    problems.extend(events_problems(settings))
    problems.extend(extraction_problems(settings, catalog_names))
    if problems:
        return problems  # the budget below needs a valid catalog
    catalog = settings.catalog()
    publishing = len(publishers(settings))
    platform = platform_connection_demand(publishing)
    if platform > settings.instance.reserved_connections:
        problems.append(Problem(
            src, f"{ns}:instance.reservedConnections",
            f"reservedConnections {settings.instance.reserved_connections} cannot hold the platform's logins: "
            f"{platform} (their connection limits, the CDC login's sized for {publishing} outbox connector(s), "
            f"plus {SUPERUSER_RESERVED_CONNECTIONS} superuser slots; config/access.py)",
            f"set {ns}:instance.reservedConnections to at least {platform}",
        ))
    demand = sum(s.total_connections() for s in catalog)
    budget = settings.instance.max_connections - settings.instance.reserved_connections
    if demand > budget:
        worst = max(catalog, key=lambda s: s.total_connections())
        problems.append(Problem(
            src, f"{ns}:services",
            f"the services' connection limits add up to {demand}, over the instance's budget of {budget} "
            f"(maxConnections {settings.instance.max_connections} - reservedConnections "
            f"{settings.instance.reserved_connections})",
            f"shrink poolSize/readonlyPoolSize (largest: {worst.name} with {worst.total_connections()}) or "
            f"raise {ns}:instance.maxConnections",
        ))
    return problems


RETRY_MINUTES = 10
"""AWS Backup retries a job that could not start "at least every 10 minutes" within its start window (AWS
Backup API, BackupRule StartWindowMinutes)."""


def backup_window_problems(settings: StackSettings) -> list[Problem]:
    """The instance's own backup window (RDS automated backups, the point-in-time owner) against AWS Backup's
    daily job at 00:00 UTC. While RDS backs the instance up, AWS Backup's snapshot cannot start; the job waits
    in CREATED and retries every 10 minutes until its start window closes, then EXPIRES. So the RDS window must
    end at least one retry before AWS Backup's start window does (default: 00:00-00:30 against 00:00-01:00)."""
    if settings.is_local or settings.is_region_stack or not settings.backups.enabled:
        return []
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in settings.instance.backup_window.split("-"))
    end = end if end > start else end + 24 * 60  # a window over midnight
    window_end = settings.backups.start_window_minutes
    overlaps = start < window_end or end > 24 * 60  # it starts inside AWS Backup's start window, or crosses 00:00
    if overlaps and (end % (24 * 60) if end > 24 * 60 else end) > window_end - RETRY_MINUTES:
        return [Problem(
            settings.source, f"{NAMESPACE}:instance.backupWindow",
            f"the RDS backup window {settings.instance.backup_window} runs into AWS Backup's daily job (00:00 UTC, "
            f"start window {window_end} minutes): its last retry would find the instance still backing up, and "
            "the job would expire",
            f"end the RDS window by {(window_end - RETRY_MINUTES) // 60:02d}:{(window_end - RETRY_MINUTES) % 60:02d}"
            f" UTC, or move it after {window_end // 60:02d}:{window_end % 60:02d}, or raise "
            f"{NAMESPACE}:backups.startWindowMinutes")]
    return []


def _decode(value: Any) -> Any:
    """Structured values reach the program from the engine as JSON strings; decode those. (Top-level settings
    are text or sections: a top-level number or boolean would arrive as "3" or "true" and need decoding too.)"""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _is_secure(value: Any) -> bool:
    """`{secure: ...}`: a value the stack file holds encrypted (the engine passes it decrypted)."""
    return isinstance(value, dict) and set(value) == {"secure"}


def _allowed_keys(model: type[BaseModel]) -> set[str]:
    return {(f.alias or name) for name, f in model.model_fields.items()}


def _field_by_alias(model: type[BaseModel], key: str | int) -> FieldInfo | None:
    return next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)


def _sections() -> dict[str, type[BaseModel]]:
    """Top-level settings that are sections (mappings of their own keys): alias -> model."""
    out = {}
    for name, field in StackSettings.model_fields.items():
        model = _unwrap_model(field.annotation)
        if model is not None and name not in DERIVED_FIELDS:
            out[field.alias or name] = model
    return out


def _unknown_key(source: str, full_key: str, key: str, allowed: Iterable[str]) -> Problem:
    names = sorted(allowed)
    hint = difflib.get_close_matches(key, names, n=1)
    if hint:
        return Problem(source, full_key, "unknown key", f"did you mean '{NAMESPACE}:{hint[0]}'? allowed: "
                                                        f"{', '.join(names)}")
    # A key of a section written at the top level (`edumatrix-db:promote` for `region.promote`).
    homes = [f"{NAMESPACE}:{section}.{match}" for section, model in _sections().items()
             for match in difflib.get_close_matches(key, sorted(_allowed_keys(model)), n=1, cutoff=0.85)]
    if homes:
        return Problem(source, full_key, "unknown key", f"did you mean {' or '.join(map(repr, homes))}? (a key of "
                                                        "that section, indented below it)")
    return Problem(source, full_key, "unknown key", f"allowed: {', '.join(names)}")


def _key_without_namespace(source: str, key: str, allowed: Iterable[str]) -> Problem:
    known = [f"{NAMESPACE}:{name}" for name in allowed] + list(FOREIGN_KEYS)
    bare = {k.partition(":")[2]: k for k in known}  # a typo is of the key, not of its namespace
    hint = [k for k in known if k.partition(":")[2] == key] or [
        bare[match] for match in difflib.get_close_matches(key, sorted(bare), n=1, cutoff=0.7)]
    return Problem(source, key, "a configuration key without a namespace: nothing reads it",
                   (f"write it as {' or '.join(map(repr, hint))}" if hint else f"write it as '{NAMESPACE}:<key>'")
                   + " (Pulumi configuration keys are namespace:key)")


def _unknown_namespace(source: str, full_key: str, namespace: str, key: str) -> Problem:
    hint = difflib.get_close_matches(namespace, NAMESPACES, n=1, cutoff=0.6)
    listed = (f"{NAMESPACE} (this project), {', '.join(PROVIDER_PACKAGES)} (its providers), {PULUMI_NAMESPACE}")
    return Problem(source, full_key, f"unknown namespace {namespace!r}: nothing reads this key, so the setting "
                   "would be silently ignored",
                   (f"did you mean '{hint[0]}:{key}'? " if hint else "remove it or fix the namespace; ")
                   + f"namespaces: {listed}")


@cache
def provider_config_keys(namespace: str) -> frozenset[str]:
    """The configuration keys a provider reads, from its installed Python SDK (`<package>/config/vars.py`)."""
    spec = importlib.util.find_spec(PROVIDER_PACKAGES[namespace])
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    for location in spec.submodule_search_locations:
        config_vars = Path(location) / "config" / "vars.py"
        if config_vars.is_file():
            return frozenset(re.findall(r"__config__\.get\w*\('(\w+)'\)", config_vars.read_text(encoding="utf-8")))
    return frozenset()


def _provider_key_problems(source: str, namespace: str, key: str) -> list[Problem]:
    keys = provider_config_keys(namespace)
    if key in keys:
        return []
    full_key = f"{namespace}:{key}"
    if not keys:
        return [Problem(source, full_key, f"the {namespace} provider reads no configuration", "remove the key")]
    hint = difflib.get_close_matches(key, sorted(keys), n=1)
    return [Problem(source, full_key, f"the {namespace} provider has no setting {key!r}",
                    (f"did you mean '{namespace}:{hint[0]}'? " if hint else "")
                    + f"see the provider's configuration reference ({len(keys)} keys, e.g. "
                      f"{', '.join(sorted(keys)[:5])})")]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model that owns the field at `loc` (for listing allowed keys)."""
    model: Any = StackSettings
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, Model)):
            return None
        field = _field_by_alias(model, part)
        if field is None:
            continue  # a mapping's own key (a service name): the model stays the mapping's value model
        model = _unwrap_model(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, Model) else None


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    """The field the value at `loc` belongs to (a list item or mapping entry belongs to its list's field)."""
    model: Any = StackSettings
    found: FieldInfo | None = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            break
        field = _field_by_alias(model, part)
        if field is None:
            continue
        found = field
        model = _unwrap_model(field.annotation)
    return found


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _bounds(field: FieldInfo | None) -> dict[str, Any]:
    """ge/le/gt/lt of a field, wherever its Annotated metadata put them."""
    out: dict[str, Any] = {}

    def visit(obj: Any) -> None:
        for name in ("ge", "le", "gt", "lt"):
            if getattr(obj, name, None) is not None and not isinstance(obj, type):
                out.setdefault(name, getattr(obj, name))
        for item in getattr(obj, "metadata", ()) or ():
            visit(item)
        for arg in typing.get_args(obj):
            visit(arg)

    if field is not None:
        visit(field)
        visit(field.annotation)
    return out


def _range_fix(field: FieldInfo | None, ctx: Mapping[str, Any]) -> str:
    bounds = {name: _plain(value) for name, value in {**_bounds(field), **ctx}.items()}
    if "ge" in bounds and "le" in bounds:
        return f"use a value from {bounds['ge']} to {bounds['le']}"
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}  # gt/lt exclude the bound itself
    return "use a value " + " and ".join(f"{words[name]} {bounds[name]}" for name in words if name in bounds)


def _plain(number: Any) -> Any:
    """A bound as a person writes it: 100, not 100.0 (pydantic hands a float field's bounds over as floats)."""
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _example(field: FieldInfo | None, kind: type) -> str:
    if field is not None and field.examples:
        return f", e.g. {field.examples[0]}"
    default = field.default if field is not None else None
    fits = type(default) is kind or (kind is float and type(default) is int)  # a float field's default of 70
    return f", e.g. {json.dumps(default)}" if fits else ""


EXPECTED = {
    "bool_type": "expected true or false", "int_type": "expected a whole number", "int_from_float":
    "expected a whole number", "float_type": "expected a number", "string_type": "expected text",
    "dict_type": "expected a mapping of keys", "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys", "list_type": "expected a list", "tuple_type":
    "expected a list",
}


def _shown(value: Any) -> str:
    """A value as YAML writes it: 'text', true, null, 15.1."""
    return repr(value) if isinstance(value, str) else json.dumps(value)


QUOTE_FIX = "quote the value so it stays text, e.g. '15' or '15.10' (unquoted, YAML reads 15.10 as the number 15.1)"


def _type_fix(err_type: str, field: FieldInfo | None, value: Any) -> str:
    if err_type == "bool_type":
        return ("write true or false, without quotes (yes/no, on/off and y/n are YAML 1.1 spellings that YAML "
                "readers disagree on)")
    if err_type in ("int_type", "int_parsing", "int_from_float"):
        return "write a whole number without quotes" + _example(field, int)
    if err_type in ("float_type", "float_parsing"):
        return "write a number without quotes" + _example(field, float)
    if err_type == "string_type":
        return QUOTE_FIX if isinstance(value, int | float) and not isinstance(value, bool) else \
            "write text" + _example(field, str)
    if err_type in ("dict_type", "model_type", "model_attributes_type"):
        return ("give the section its keys, indented below it, or remove the line" if value is None
                else "write a mapping: `key: value` lines indented below the key")
    if err_type in ("list_type", "tuple_type"):
        return "write a list: one `- item` per line, indented below the key"
    return f"see {_described(field) or 'the key'} in config/settings.py for what it accepts"


def _choices(field: FieldInfo | None) -> list[str]:
    """The values an enum or Literal field allows, as a stack file writes them."""
    found: list[str] = []

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            found.extend(str(member.value) for member in annotation)
        elif typing.get_origin(annotation) is typing.Literal:
            found.extend(str(arg) for arg in typing.get_args(annotation))
        else:
            for arg in typing.get_args(annotation):
                visit(arg)

    if field is not None:
        visit(field.annotation)
    return found


def _described(field: FieldInfo | None) -> str:
    return field.description or "" if field is not None else ""


def _translate(exc: ValidationError, source: str, raw: Mapping[str, Any], stacks_dir: Path) -> list[Problem]:
    problems = []
    errors = exc.errors()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(tuple(o["loc"])[:len(loc)] == loc and len(o["loc"]) > len(loc)
                                              for o in errors):
            continue  # "at least 2 items after validation, not 0": the items' own errors say why
        # pydantic puts union-member names into loc (e.g. 'function-after[...]'); keep only real keys
        clean = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("int", "str"))))
        field = _field_at(clean)
        value = err.get("input")
        message = str(err["msg"]).removeprefix("Value error, ")
        error = (err.get("ctx") or {}).get("error")
        err_type = err["type"]
        if isinstance(error, SettingError):
            message, fix = error.message, error.fix
            clean = (*clean, *((error.key,) if error.key else ()))
        elif err_type == "extra_forbidden":
            owner = _model_at(loc[:-1])
            allowed = sorted(_allowed_keys(owner)) if owner else []
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown key"
            fix = (f"did you mean {hint[0]!r}? " if hint else "") + f"allowed: {', '.join(allowed)}"
        elif err_type == "missing":
            clean, message, fix = _missing(clean, field, raw, stacks_dir)
        elif err_type == "string_pattern_mismatch":
            what = _described(field) or f"in the form {(err.get('ctx') or {}).get('pattern')}"
            message, fix = f"{value!r} is not {what}", f"write {what}" + _example(field, str)
        elif err_type in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            message = f"{message} (got {_shown(value)})"
            fix = _range_fix(field, err.get("ctx") or {})
        elif err_type in ("too_short", "too_long", "string_too_short", "string_too_long"):
            message = f"{message}" + (f": {_described(field)}" if _described(field) else "")
            fix = _length_fix(err_type, err.get("ctx") or {})
        elif err_type in ("literal_error", "enum"):
            message = f"{_shown(value)} is not allowed"
            fix = f"use one of: {', '.join(_choices(field)) or (err.get('ctx') or {}).get('expected', '')}"
        elif err_type == "value_error":  # a validator that raised a plain ValueError (SettingError carries a fix)
            fix = f"see the validator of {dotted(clean) or 'this section'} in config/settings.py for what it accepts"
        else:
            message = EXPECTED.get(err_type, message) + (f" (got {_shown(value)})" if "input" in err else "")
            fix = _type_fix(err_type, field, value)
        top = clean[0] if clean else ""
        key = "aws:region" if top == "aws_region" else f"{NAMESPACE}:{dotted(clean)}" if clean else ""
        problems.append(Problem(source, key, message, fix))
    return problems


def _length_fix(err_type: str, limits: Mapping[str, Any]) -> str:
    """A list with too few or too many items, or a text too short or too long."""
    if err_type.startswith("string_"):
        return (f"write at least {limits.get('min_length')} characters" if err_type == "string_too_short"
                else f"write at most {limits.get('max_length')} characters")
    return "list fewer items" if err_type == "too_long" else "list more items"


def _missing(loc: tuple[PathPart, ...], field: FieldInfo | None, raw: Mapping[str, Any],
             stacks_dir: Path) -> tuple[tuple[PathPart, ...], str, str]:
    """The key, message and fix for a required key that is missing."""
    region = raw.get("region")
    if loc == ("region", "primaryStack") and isinstance(region, dict) and "promote" in region:
        # `promote` on a stack that holds the primary itself: say what promote is for, not "add primaryStack".
        followers = [name for name in available_stacks(stacks_dir) if _primary_of(name, stacks_dir) == raw["stack"]]
        where = (f" (here: {', '.join(str(stack_path(f, Path('stacks'))) for f in followers)})" if followers
                 else "")
        return (("region", "promote"), "`promote` applies to a region stack (one whose region.primaryStack "
                "names the stack it replicates); this stack holds the primary instance itself",
                f"remove {REGION_KEY} from this file; to fail over, set promote: true in the region stack that "
                f"replicates this one{where} (docs/failover-runbook.md)")
    if loc == ("environment",):
        return loc, "required key is missing", f"add `{NAMESPACE}:environment: dev` (one of: " \
                                               f"{', '.join(e.value for e in Environment)})"
    what = f" ({field.description})" if field is not None and field.description else ""
    return loc, "required key is missing", f"add {NAMESPACE}:{dotted(loc)}{what}"


def _primary_of(name: str, stacks_dir: Path) -> Any:
    try:
        config, _ = read_stack_config(name, stacks_dir)
    except ConfigError:
        return None
    section = config.get(REGION_KEY)
    return section.get("primaryStack") if isinstance(section, dict) else None
