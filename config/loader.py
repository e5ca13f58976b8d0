"""Reading stack files into StackSettings, with errors a person can act on.

Two entry points share one validator:
- `load_stack(name)` reads `stacks/Pulumi.<name>.yaml` (the CLI, the offline plan, the tests);
- `settings_from_config(config, ...)` takes the flat `namespace:key -> value` map that the Pulumi engine
  hands the program (`__main__.py` passes it in; values of structured keys arrive as JSON strings).
Every mistake becomes a `ConfigError` naming the file, the key, what is wrong and the fix, raised before
any resource is declared. All problems of a file are reported together.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from config.catalog import load_catalog
from config.connections import connection_problems
from config.errors import ConfigError, Problem
from config.monitoring import monitoring_problems
from config.regions import region_problems, resolve_region_stack
from config.settings import NAMESPACE, Environment, Model, StackSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_ROOT / "stacks"

# Keys that were renamed: old dotted key -> new dotted key. A stack file still using an old name gets an
# error that says the new one (stack-file keys are an interface; they are never renamed silently).
RENAMED_KEYS: dict[str, str] = {}

# Keys of other namespaces the program reads.
FOREIGN_KEYS = {"aws:region": "aws_region"}
# Fields of StackSettings the loader fills; a stack file cannot set them.
DERIVED_FIELDS = {"stack", "source", "primary"}

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
    """The `config:` map of a stack file, and the file's display name. Raises ConfigError."""
    path = stack_path(name, stacks_dir)
    source = display_path(path)
    if not path.is_file():
        known = available_stacks(stacks_dir)
        hint = difflib.get_close_matches(name, known, n=1)
        raise ConfigError([Problem(
            source, "", f"no stack named {name!r}",
            (f"did you mean {hint[0]!r}? " if hint else "") + f"known stacks: {', '.join(known) or 'none'}",
        )])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, "", f"not valid YAML: {exc}", "fix the YAML syntax")]) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, "", "a stack file is a mapping with a `config:` key")])
    extra = sorted(set(data) - {"config", "secretsprovider", "encryptedkey", "encryptionsalt"})
    if extra:
        raise ConfigError([Problem(source, extra[0], "unknown top-level key", "put settings under `config:`")])
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([Problem(source, "config", "must be a mapping of `namespace:key: value`")])
    return config, source


def load_stack(name: str, stacks_dir: Path = STACKS_DIR) -> StackSettings:
    """Read and validate `stacks/Pulumi.<name>.yaml`."""
    config, source = read_stack_config(name, stacks_dir)
    return settings_from_config(config, stack=name, source=source, stacks_dir=stacks_dir)


def settings_from_config(config: Mapping[str, Any], *, stack: str, source: str,
                         stacks_dir: Path | None = None) -> StackSettings:
    """Validate a flat config map (`namespace:key -> value`) into StackSettings or raise ConfigError.

    A region stack is also checked against its primary's stack file in `stacks_dir` (default: the one in use).
    """
    problems: list[Problem] = []
    raw: dict[str, Any] = {"stack": stack, "source": source}
    # Stack-file keys are aliases (camelCase); derived fields and other namespaces' keys are not settable here.
    allowed = _allowed_keys(StackSettings) - {to_camel(f) for f in (*DERIVED_FIELDS, *FOREIGN_KEYS.values())}
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if full_key in FOREIGN_KEYS:
            raw[FOREIGN_KEYS[full_key]] = value
            continue
        if namespace != NAMESPACE:
            continue  # provider configuration (aws:*, postgresql:*) is the providers' business
        if full_key in RENAMED_KEYS:
            problems.append(Problem(source, full_key, "this key was renamed",
                                    f"rename it to {RENAMED_KEYS[full_key]!r}"))
            continue
        if key not in allowed:
            problems.append(_unknown_key(source, full_key, key, allowed))
            continue
        raw[key] = _decode(value)
    if problems:
        raise ConfigError(problems)
    try:
        settings = StackSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_translate(exc, source, raw)) from None
    problems = cross_checks(settings)
    if problems:
        raise ConfigError(problems)
    directory = stacks_dir or stacks_dir_in_use()
    settings, problems = resolve_region_stack(settings, directory, load=load_stack, read=read_stack_config,
                                              known=available_stacks(directory))
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
    if settings.is_local and settings.replicas.count:
        problems.append(Problem(src, f"{ns}:replicas.count", "the local stack has no RDS instance to replicate",
                                "remove the key"))
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
    problems.extend(monitoring_problems(settings))
    problems.extend(connection_problems(settings))
    if problems:
        return problems  # the budget below needs a valid catalog
    catalog = settings.catalog()
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


def _decode(value: Any) -> Any:
    """Structured values reach the program from the engine as JSON strings; decode those."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _allowed_keys(model: type[BaseModel]) -> set[str]:
    return {(f.alias or name) for name, f in model.model_fields.items()}


def _unknown_key(source: str, full_key: str, key: str, allowed: Iterable[str]) -> Problem:
    names = sorted(allowed)
    hint = difflib.get_close_matches(key, names, n=1)
    fix = (f"did you mean '{NAMESPACE}:{hint[0]}'? " if hint else "") + f"allowed: {', '.join(names)}"
    return Problem(source, full_key, "unknown key", fix)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model that owns the field at `loc` (for listing allowed keys)."""
    model: Any = StackSettings
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, Model)):
            return None
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return model
        model = _unwrap_model(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, Model) else None


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _translate(exc: ValidationError, source: str, raw: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # pydantic puts union-member names into loc (e.g. 'function-after[...]'); keep only real keys
        clean = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("int", "str")))]
        top = clean[0] if clean else ""
        key = "aws:region" if top == "aws_region" else f"{NAMESPACE}:{'.'.join(clean)}" if clean else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        fix = ""
        if err["type"] == "extra_forbidden":
            owner = _model_at(loc[:-1])
            allowed = sorted(_allowed_keys(owner)) if owner else []
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown key"
            fix = (f"did you mean {hint[0]!r}? " if hint else "") + f"allowed: {', '.join(allowed)}"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            message = f"{message} (got {err['input']!r})"
        if err["type"] == "enum" and top == "environment":
            fix = f"use one of: {', '.join(e.value for e in Environment)}"
        problems.append(Problem(source, key, message, fix))
    return problems
