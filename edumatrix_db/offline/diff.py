"""What a change to the platform does to one stack, for the reviewer of a pull request: two plans (the JSON of
`edumatrix-db plan --format json`) compared resource by resource, matched by URN.

Resources are added, removed, or changed with the inputs that changed; secret values stay masked. Changes
that lose data are dangers (`edumatrix-db diff` exits 3 on any, so CI can require an explicit approval):
- `replace`: a stateful resource gets an input its provider can only apply by replacing it
  (edumatrix_db/offline/replacements.py, with sources);
- `delete`: a stateful resource disappears (a KMS key is scheduled for deletion); a resource renamed or
  moved to another parent without `aliases` shows up here too, because its URN changes;
- `protected-removed`: a resource Pulumi protects (`protect`) disappears;
- `deletion-protection-off`: `deletionProtection` (RDS) or `deletionProtectionEnabled` (DynamoDB) goes from
  true to anything else;
- `destructive-update`: an input whose in-place update drops something (replacements.py
  `DESTRUCTIVE_UPDATES`: a service's events `publishes` turned off drops its outbox publication).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from config.extraction_plan import update_problem
from edumatrix_db.offline.replacements import DESTRUCTIVE_UPDATES, RDS_INSTANCE, STATEFUL, replacing_inputs

SECRET = "[secret]"
# Inputs shown masked even if the program forgot to mark them secret.
_SENSITIVE = re.compile(r"password|secret|conninfo|token|private_?key|credential", re.IGNORECASE)
DELETION_PROTECTION = ("deletionProtection", "deletionProtectionEnabled")  # RDS, DynamoDB
DANGER_KINDS = ("replace", "delete", "protected-removed", "deletion-protection-off", "destructive-update",
                "extraction-move")


@dataclass(frozen=True)
class Change:
    path: str  # dotted path into the inputs: `tags.owner`; lists are compared whole
    before: Any
    after: Any
    replaces: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": _masked(self.path, self.before),
                "after": _masked(self.path, self.after), "replaces": self.replaces}


@dataclass(frozen=True)
class ChangedResource:
    urn: str
    type: str
    name: str
    changes: tuple[Change, ...]

    @property
    def replaced(self) -> bool:
        return any(c.replaces for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "replaced": self.replaced,
                "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class Danger:
    kind: str  # one of DANGER_KINDS
    urn: str
    type: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "urn": self.urn, "type": self.type, "message": self.message}


@dataclass(frozen=True)
class PlanDiff:
    stack: str
    base: str  # what the base plan is (a revision, "no stack file")
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[ChangedResource]
    dangers: list[Danger]
    notes: list[str] = field(default_factory=list)

    @property
    def dangerous(self) -> bool:
        return bool(self.dangers)

    def to_json(self) -> dict[str, Any]:
        brief = ("urn", "type", "name")
        return {"stack": self.stack, "base": self.base,
                "added": [{k: r[k] for k in brief} for r in self.added],
                "removed": [{k: r[k] for k in brief} for r in self.removed],
                "changed": [c.to_json() for c in self.changed],
                "dangers": [d.to_json() for d in self.dangers], "notes": self.notes}


# -- comparing -------------------------------------------------------------------------------------------

def _flatten(inputs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in inputs.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _masked(path: str, value: Any) -> Any:
    if value == SECRET or (value is not None and _SENSITIVE.search(path)):
        return SECRET
    return value


def _changes(type_token: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    old, new = _flatten(before), _flatten(after)
    changed_paths = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    replacing = replacing_inputs(type_token, set(changed_paths))
    return tuple(Change(p, old.get(p), new.get(p), p in replacing) for p in changed_paths)


def _label(resource: Mapping[str, Any]) -> str:
    stateful = STATEFUL.get(resource["type"])
    return f"{stateful.label if stateful else resource['type']} {resource['name']}"


def _removal_dangers(resource: Mapping[str, Any]) -> list[Danger]:
    dangers = []
    stateful = STATEFUL.get(resource["type"])
    if stateful:
        dangers.append(Danger("delete", resource["urn"], resource["type"],
                              f"{_label(resource)} is deleted: {stateful.loses}"))
    if resource.get("protect"):
        dangers.append(Danger("protected-removed", resource["urn"], resource["type"],
                              f"{_label(resource)} is protected (Pulumi `protect`) and removed from the program: "
                              "`pulumi up` refuses until the protection is lifted on purpose"))
    return dangers


def _change_dangers(resource: Mapping[str, Any], changed: ChangedResource) -> list[Danger]:
    dangers = []
    replacing = [c.path for c in changed.changes if c.replaces]
    if replacing:
        stateful = STATEFUL[resource["type"]]
        dangers.append(Danger("replace", changed.urn, changed.type,
                              f"{_label(resource)} is replaced (changed: {', '.join(replacing)}): {stateful.loses}"))
    protection = next((c for c in changed.changes if c.path in DELETION_PROTECTION), None)
    if protection and protection.before is True and protection.after is not True:
        dangers.append(Danger("deletion-protection-off", changed.urn, changed.type,
                              f"{_label(resource)}: deletion protection turned off "
                              f"({json.dumps(protection.before)} -> {json.dumps(protection.after)})"))
    destructive = DESTRUCTIVE_UPDATES.get(resource["type"])
    update = destructive and next((c for c in changed.changes if c.path == destructive.path), None)
    if destructive and update and update.before == destructive.before and update.after != destructive.before:
        dangers.append(Danger("destructive-update", changed.urn, changed.type,
                              f"{_label(resource)}: {destructive.path} {json.dumps(update.before)} -> "
                              f"{json.dumps(update.after)}: {destructive.loses}"))
    return dangers


def diff_plans(base: Mapping[str, Any] | None, head: Mapping[str, Any] | None, *, stack: str,
               base_label: str) -> PlanDiff:
    """Compare the plan of `stack` at the base (None: the stack file did not exist) with its plan now."""
    notes: list[str] = []
    old = {r["urn"]: r for r in (base or {}).get("resources", [])}
    new = {r["urn"]: r for r in (head or {}).get("resources", [])}
    if base is None:
        notes.append(f"the stack file does not exist at {base_label}: everything is added")
    if head is None:
        notes.append("the stack file no longer exists: everything is removed")
    if old and any("protect" not in r for r in old.values()):
        notes.append("the base plan does not record Pulumi's `protect` option (made before `edumatrix-db diff`): "
                     "removals are judged by resource type only")
    added = [new[u] for u in sorted(new.keys() - old.keys())]
    removed = [old[u] for u in sorted(old.keys() - new.keys())]
    dangers = [d for r in removed for d in _removal_dangers(r)]
    changed: list[ChangedResource] = []
    for urn in sorted(old.keys() & new.keys()):
        before, after = old[urn], new[urn]
        changes = _changes(after["type"], before.get("inputs", {}), after.get("inputs", {}))
        if not changes:
            continue
        changed.append(ChangedResource(urn, after["type"], after["name"], changes))
        dangers.extend(_change_dangers(after, changed[-1]))
        renamed = next((c for c in changes if c.path == "identifier"), None)
        if after["type"] == RDS_INSTANCE and renamed:
            notes.append(f"RDS instance {after['name']} is renamed in place ({renamed.before} -> {renamed.after}), "
                         "not replaced: its endpoint address changes, so clients must follow the new name")
    dangers.extend(_extraction_dangers(base or {}, head or {}))
    return PlanDiff(stack, base_label, added, removed, changed, dangers, notes)


def _extraction_dangers(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[Danger]:
    """An extraction moved by more (or other) than one allowed phase since the base (`extractions` output)."""
    def entries(plan: Mapping[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
        found = (plan.get("outputs") or {}).get("extractions") or {}
        return {s: (str(e.get("phase")), tuple(e.get("history") or ())) for s, e in found.items()
                if isinstance(e, Mapping)}

    old, new = entries(base), entries(head)
    out = []
    for service in sorted(old.keys() | new.keys()):
        problem = update_problem(service, old.get(service), new.get(service))
        if problem is not None:
            out.append(Danger("extraction-move", "", "edumatrix:extraction:ServiceExtraction",
                              f"extraction of {service}: {problem} (one phase per update: "
                              "docs/extraction-declared.md)"))
    return out


# -- rendering -------------------------------------------------------------------------------------------

def _value(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, sort_keys=True)


def _summary(diff: PlanDiff) -> str:
    return (f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed "
            f"({sum(c.replaced for c in diff.changed)} replaced)")


def render_json(diff: PlanDiff) -> str:
    return json.dumps(diff.to_json(), indent=2)


def render_text(diff: PlanDiff) -> str:
    lines = [f"edumatrix-db diff {diff.stack}: working tree against {diff.base}", _summary(diff)]
    if diff.dangers:
        lines += ["", f"!!! DANGER: {len(diff.dangers)} change(s) that lose data or protection; "
                      "an explicit approval is required !!!"]
        lines += [f"  [{d.kind}] {d.message}\n      {d.urn}" for d in diff.dangers]
    for note in diff.notes:
        lines.append(f"note: {note}")
    if diff.added:
        lines += ["", "added:"] + [f"  + {r['name']}  [{r['type']}]" for r in diff.added]
    if diff.removed:
        lines += ["", "removed:"] + [f"  - {r['name']}  [{r['type']}]" for r in diff.removed]
    if diff.changed:
        lines += ["", "changed:"]
        for res in diff.changed:
            lines.append(f"  ~ {res.name}  [{res.type}]{'  REPLACED' if res.replaced else ''}")
            for c in res.changes:
                change = c.to_json()
                lines.append(f"      {c.path}: {_value(change['before'])} -> {_value(change['after'])}"
                             f"{'  (forces replacement)' if c.replaces else ''}")
    if not (diff.added or diff.removed or diff.changed):
        lines += ["", "no changes"]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def render_markdown(diff: PlanDiff) -> str:
    """Ready to paste into a pull request (GitHub renders the alert block and the collapsed sections)."""
    lines = [f"### `{diff.stack}`: {_summary(diff)}", "", f"Working tree against {diff.base}.", ""]
    if diff.dangers:
        lines += ["> [!CAUTION]", f"> **{len(diff.dangers)} dangerous change(s)**: approve explicitly before merging.",
                  ">"]
        lines += [f"> - **{d.kind}**: {_cell(d.message)}  \n>   `{d.urn}`" for d in diff.dangers]
        lines.append("")
    lines += [f"> [!NOTE]\n> {_cell(note)}\n" for note in diff.notes]
    sections = [
        ("Added", _table(("resource", "type"), [(f"`{r['name']}`", f"`{r['type']}`") for r in diff.added])),
        ("Removed", _table(("resource", "type"), [(f"`{r['name']}`", f"`{r['type']}`") for r in diff.removed])),
        ("Changed", _table(("resource", "input", "before", "after", "replaces"), [
            (f"`{res.name}`", f"`{c.path}`", f"`{_value(c.to_json()['before'])}`",
             f"`{_value(c.to_json()['after'])}`", "**yes**" if c.replaces else "")
            for res in diff.changed for c in res.changes])),
    ]
    for title, table in sections:
        count = {"Added": len(diff.added), "Removed": len(diff.removed), "Changed": len(diff.changed)}[title]
        if count:
            lines += ["<details" + (" open" if title != "Added" else "") + f"><summary>{title} ({count})</summary>",
                      "", *table, "", "</details>", ""]
    if not (diff.added or diff.removed or diff.changed):
        lines.append("No changes.")
    return "\n".join(lines).rstrip() + "\n"
