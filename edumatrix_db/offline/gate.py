"""The offline policy gate: plan stacks under mocks and evaluate the policy pack's own validators against
the recorded resources, presented as the engine presents them (pulumi-policy args, camelCase props).

Used by `edumatrix-db check`, `edumatrix-db plan --format json` (its "violations") and the tests.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.policy import PolicyCustomTimeouts, _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

from config.errors import ConfigError
from config.extraction_plan import target_identifier
from config.settings import StackSettings, duration_seconds
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from policy.base import PackPolicy, StackPolicy, TypedResourcePolicy
from policy.pack import DEFAULT_ENFORCEMENT, POLICIES, load_policy_config

PROVIDER_PREFIX = "pulumi:providers:"
DISABLED = "disabled by the policy config"


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str
    message: str
    severity: str
    enforcement: str

    @property
    def mandatory(self) -> bool:
        return self.enforcement == EnforcementLevel.MANDATORY.value

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "urn": self.urn, "message": self.message, "severity": self.severity,
                "enforcement": self.enforcement}


@dataclass
class StackReport:
    """The gate's verdict on one stack: its violations, or the configuration error that stopped it."""

    stack: str
    resources: int = 0
    violations: list[Violation] = field(default_factory=list)
    not_applicable: dict[str, str] = field(default_factory=dict)
    types: frozenset[str] = frozenset()
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or any(v.mandatory for v in self.violations)

    def idle(self, policies: Iterable[PackPolicy] = POLICIES) -> dict[str, str]:
        """The policies that checked nothing on this stack, and why (none of their resource types is declared,
        or they said they do not apply). A stack stopped by a configuration error was not checked at all."""
        if self.error is not None:
            return {}
        out: dict[str, str] = {}
        reported = {v.policy for v in self.violations}
        for policy in policies:
            if policy.name in reported:
                continue
            if policy.name in self.not_applicable:
                out[policy.name] = f"not applicable: {self.not_applicable[policy.name]}"
            elif not policy.resource_types & self.types:
                out[policy.name] = f"no {' or '.join(sorted(policy.resource_types))} declared"
        return out

    def to_json(self, policies: Iterable[PackPolicy] = POLICIES) -> dict[str, Any]:
        out: dict[str, Any] = {"resources": self.resources, "violations": [v.to_json() for v in self.violations],
                               "idle": self.idle(policies)}
        if self.error is not None:
            out["error"] = self.error
        return out


# -- policy config ---------------------------------------------------------------------------------------

def policy_config(settings: StackSettings) -> dict[str, Any]:
    """The pack config for a stack: `policy/config/<environment>.json` plus what only the stack knows
    (its region, its reserved connections). `edumatrix-db policy-config STACK` prints it for
    `pulumi preview --policy-pack policy --policy-pack-config <file>`."""
    config = {k: (dict(v) if isinstance(v, Mapping) else v)
              for k, v in load_policy_config(settings.environment.value).items()}

    def put(policy: str, key: str, value: Any) -> None:
        entry = config.setdefault(policy, {})
        if isinstance(entry, str):  # "policy": "advisory" shorthand
            entry = config[policy] = {"enforcementLevel": entry}
        entry.setdefault(key, value)

    put("connection-budget", "reservedConnections", settings.instance.reserved_connections)
    put("connection-budget", "maxConnections", settings.instance.max_connections)
    if settings.aws_region:
        for policy in ("replica-kms-key-in-region", "aws-api-replica-kms-key", "aws-api-kms-key-region",
                       "aws-api-alarm-topic-region", "backup-copy-rules"):
            put(policy, "defaultRegion", settings.aws_region)
    put("aws-api-secret-replica-regions", "regions", list(settings.secrets.replica_regions))
    single_az = {target_identifier(settings, service): e.instance.single_az_reason
                 for service, e in settings.extractions.items() if e.instance.single_az_reason}
    if single_az:
        put("rds-multi-az", "singleAzTargets", single_az)
        put("extraction-target-as-secure", "singleAzTargets", single_az)
    if settings.primary is not None:  # a region stack: its replication source is in the primary's stack
        put("aws-api-replica-source-managed-password", "sourceManagesMasterPassword",
            settings.primary.instance.master_password == "rds-managed")
    return config


def enforcement_of(policy: PackPolicy, config: Mapping[str, Any]) -> EnforcementLevel:
    entry = config.get(policy.name)
    level = entry if isinstance(entry, str) else (entry or {}).get("enforcementLevel")
    if level:
        return EnforcementLevel(level)
    return policy.enforcement_level or DEFAULT_ENFORCEMENT


def config_of(policy: PackPolicy, config: Mapping[str, Any]) -> dict[str, Any]:
    """Schema defaults overlaid with the file's values (as the Pulumi CLI hands them to the pack)."""
    entry = config.get(policy.name)
    values = {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, Mapping) else {}
    return {**policy.config_defaults(), **values}


# -- presenting recorded resources as the engine does ----------------------------------------------------

class RecordedOptions(PolicyResourceOptions):
    """The options the analyzer passes (custom timeouts in seconds, protect, ignore_changes), plus what the
    analyzer protocol leaves out but the recording has: `retain_on_delete` (None under a real `pulumi preview`,
    where a policy can only say it could not check it)."""

    retain_on_delete: bool | None

    def __init__(self, resource: RecordedResource) -> None:
        timeouts = PolicyCustomTimeouts(*(_seconds(resource.custom_timeouts.get(op, ""))
                                          for op in ("create", "update", "delete")))
        super().__init__(resource.protect, list(resource.ignore_changes), None, [], timeouts, [], resource.parent)
        self.retain_on_delete = resource.retain_on_delete


def _seconds(duration: str) -> float:
    """Seconds of a custom timeout as the program wrote it (`4h`, `90m`, `2h30m`); 0 when unset."""
    if not duration:
        return 0
    seconds = duration_seconds(duration)
    if seconds is None:
        raise ValueError(f"not a duration: {duration!r}")
    return seconds


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return RecordedOptions(resource)


def _providers(resources: Sequence[RecordedResource], region: str | None) -> dict[str | None, PolicyProviderResource]:
    """Provider reference (`urn::id`, None for the default provider) -> the provider as policies see it."""
    default = PolicyProviderResource("pulumi:providers:aws", {"region": region} if region else {},
                                     "urn:pulumi:default::aws", "default")
    found: dict[str | None, PolicyProviderResource] = {None: default}
    by_urn = {r.urn: r for r in resources if r.type.startswith(PROVIDER_PREFIX)}
    for res in resources:
        if res.provider and res.provider not in found:
            provider = by_urn.get(res.provider.rsplit("::", 1)[0])
            found[res.provider] = (PolicyProviderResource(provider.type, unknown_checking_proxy(provider.props),
                                                          provider.urn, provider.name)
                                   if provider else default)
    return found


def _reporter(into: list[Violation], policy: str, severity: str, enforcement: str, default_urn: str, *,
              fixed: bool = False) -> Callable[[str, str | None], None]:
    """report_violation as the analyzer passes it: a resource policy's violations always name the resource
    (`fixed`); a stack policy's name the URN it gives, else the stack."""

    def report(message: str, urn: str | None = None) -> None:
        into.append(Violation(policy, default_urn if fixed else (urn or default_urn), message, severity,
                              enforcement))

    return report


def _run(result: Any) -> None:
    if inspect.isawaitable(result):
        async def wait() -> None:
            await result

        asyncio.run(wait())


def evaluate(resources: Sequence[RecordedResource], config: Mapping[str, Any], *, region: str | None = None,
             stack_urn: str = "", policies: Iterable[PackPolicy] = POLICIES,
             ) -> tuple[list[Violation], dict[str, str]]:
    """Run every enabled policy over `resources`; returns the violations and, per policy that checked nothing
    because it said so (or is disabled by the config), the reason.

    A stack policy's violation without a resource is attributed to `stack_urn`."""
    providers = _providers(resources, region)
    # Props wrapped as the analyzer wraps them (read-only Mapping/Sequence proxies, not dicts and lists).
    props = {r.urn: unknown_checking_proxy(r.props) for r in resources}
    violations: list[Violation] = []
    not_applicable: dict[str, str] = {}
    stack_resources: list[PolicyResource] | None = None
    for policy in policies:
        level = enforcement_of(policy, config)
        if level is EnforcementLevel.DISABLED:
            not_applicable[policy.name] = DISABLED
            continue
        enforcement = (EnforcementLevel.MANDATORY if level is EnforcementLevel.REMEDIATE else level).value
        severity = policy.severity.value if policy.severity else "medium"
        settings = config_of(policy, config)
        if isinstance(policy, TypedResourcePolicy):
            # As under the analyzer, "not applicable" is a resource's answer: the policy still checks the others,
            # and is not applicable to the stack only when it was not applicable to every resource it saw.
            reasons: list[str] = []
            checked = False
            for res in resources:
                if res.type not in policy.resource_types:
                    continue
                args = ResourceValidationArgs(res.type, props[res.urn], res.urn, res.name, _options(res),
                                              providers.get(res.provider), settings)
                try:
                    _run(policy.validate(args, _reporter(violations, policy.name, severity, enforcement, res.urn,
                                                         fixed=True)))
                    checked = True
                except _NotApplicableError as exc:
                    reasons.append(exc.reason or "")
            if reasons and not checked:
                not_applicable[policy.name] = reasons[0]
        elif isinstance(policy, StackPolicy):
            if stack_resources is None:
                stack_resources = _stack_view(resources, props, providers)
            try:
                _run(policy.validate(StackValidationArgs(stack_resources, settings),
                                     _reporter(violations, policy.name, severity, enforcement, stack_urn)))
            except _NotApplicableError as exc:
                not_applicable[policy.name] = exc.reason or ""
    return violations, not_applicable


def _stack_view(resources: Sequence[RecordedResource], props: Mapping[str, Mapping[str, Any]],
                providers: Mapping[str | None, PolicyProviderResource]) -> list[PolicyResource]:
    """PolicyResources linked to their parents, as the analyzer builds them for stack policies."""
    view = {r.urn: PolicyResource(r.type, props[r.urn], r.urn, r.name, _options(r), providers.get(r.provider), None, [],
                                  {}) for r in resources}
    for res in resources:
        if res.parent in view:
            view[res.urn].parent = view[res.parent]
        # what the resource waits for (explicit depends_on and its inputs' resources), as the analyzer passes it
        view[res.urn].dependencies = [view[d] for d in res.dependencies if d in view]
    return list(view.values())


def check_recording(recording: Recording) -> StackReport:
    config = policy_config(recording.settings)
    stack_urn = f"urn:pulumi:{recording.stack}::{recording.project}::pulumi:pulumi:Stack::" \
                f"{recording.project}-{recording.stack}"
    violations, not_applicable = evaluate(recording.resources, config, region=recording.settings.aws_region,
                                          stack_urn=stack_urn)
    return StackReport(recording.stack, len(recording.resources), violations, not_applicable,
                       frozenset(r.type for r in recording.resources))


def check_stack(stack: str, planner: Planner) -> StackReport:
    """Plan and check one stack; a configuration error is the stack's verdict, not an exception."""
    try:
        recording = planner.plan(stack)
    except ConfigError as error:
        return StackReport(stack, error=str(error))
    return check_recording(recording)


def check_stacks(stacks: Sequence[str], planner: Planner) -> list[StackReport]:
    return [check_stack(stack, planner) for stack in stacks]


# -- output ---------------------------------------------------------------------------------------------

def idle_everywhere(reports: Sequence[StackReport], policies: Sequence[PackPolicy] = POLICIES
                    ) -> dict[str, dict[str, list[str]]]:
    """Policies that checked nothing on any stack of the run (of those checked): policy -> reason -> stacks.
    Such a policy proves nothing about these stacks, so the gate reports it instead of counting it as passed."""
    checked = [r for r in reports if r.error is None]
    idle = {r.stack: r.idle(policies) for r in checked}
    out: dict[str, dict[str, list[str]]] = {}
    for policy in policies:
        if checked and all(policy.name in idle[r.stack] for r in checked):
            reasons: dict[str, list[str]] = {}
            for r in checked:
                reasons.setdefault(idle[r.stack][policy.name], []).append(r.stack)
            out[policy.name] = reasons
    return out


def render_json(reports: Sequence[StackReport], policies: Sequence[PackPolicy] = POLICIES) -> str:
    return json.dumps({"stacks": {r.stack: r.to_json(policies) for r in reports},
                       "idle": sorted(idle_everywhere(reports, policies))}, indent=2)


def _cell(policy: PackPolicy, report: StackReport) -> str:
    if report.error is not None:
        return "ERROR"
    found = [v for v in report.violations if v.policy == policy.name]
    if any(v.mandatory for v in found):
        return f"FAIL {len(found)}"
    if found:
        return f"adv {len(found)}"
    if policy.name in report.not_applicable:
        return "n/a"
    if not policy.resource_types & report.types:
        return "-"
    return "pass"


def render_table(reports: Sequence[StackReport], policies: Sequence[PackPolicy] = POLICIES) -> str:
    """Policies as rows, stacks as columns; details of every finding below the table, then the policies that
    checked nothing anywhere."""
    names = [p.name for p in policies]
    width = max(len(n) for n in names) + 2
    cols = [max(len(r.stack), 7) + 2 for r in reports]
    lines = ["policy".ljust(width) + "".join(r.stack.ljust(c) for r, c in zip(reports, cols, strict=True))]
    lines.append("-" * (width + sum(cols)))
    for policy in policies:
        lines.append(policy.name.ljust(width)
                     + "".join(_cell(policy, r).ljust(c) for r, c in zip(reports, cols, strict=True)))
    lines.append("")
    lines.append("legend: pass | FAIL n (mandatory) | adv n (advisory) | n/a (the policy said it does not apply, or "
                 "the config disables it) | - (no resource of its types) | ERROR (config)")
    for report in reports:
        if report.error is not None:
            lines.append(f"\n{report.stack}: configuration error, not checked\n{report.error}")
            continue
        for v in report.violations:
            marker = "FAIL" if v.mandatory else "advisory"
            lines.append(f"\n{report.stack}: [{marker}] {v.policy} ({v.severity}): {v.message}\n    {v.urn}")
    idle = idle_everywhere(reports, policies)
    if idle:
        lines.append("\nchecked nothing on any stack of this run (so not counted as passed):")
        for name, reasons in idle.items():
            lines.append(f"  {name}: " + "; ".join(f"{reason} ({', '.join(stacks)})"
                                                  for reason, stacks in reasons.items()))
    failed = [r.stack for r in reports if r.failed]
    lines.append("")
    lines.append(f"gate: {'FAILED: ' + ', '.join(failed) if failed else 'passed'} "
                 f"({len(reports)} stack{'s' if len(reports) != 1 else ''}, {len(policies)} policies: "
                 f"{len(policies) - len(idle)} checked something, {len(idle)} checked nothing)")
    return "\n".join(lines)
