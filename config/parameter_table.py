"""What an RDS for PostgreSQL parameter group of a family accepts: the checked-in tables of
`config/rds_parameters/postgres<major>.json` (built by `scripts/rds_parameter_table.py`; each file names its
sources and date).

Used three ways: the apply method of every parameter the platform sends comes from here (a static parameter is
never sent `immediate`, which RDS refuses), the loader refuses parameter names the family does not have and
values it does not accept, and the `aws-api-*` policies check the same on the declared parameter groups.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TABLE_DIR = Path(__file__).resolve().parent / "rds_parameters"
ApplyMethod = Literal["immediate", "pending-reboot"]


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter of a family: static or dynamic, and what values it takes."""

    name: str
    apply: Literal["static", "dynamic"]
    type: str
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    rds_default: str | None = None
    source: str = ""

    @property
    def apply_method(self) -> ApplyMethod:
        """`pending-reboot` for static parameters (RDS refuses `immediate` for them), else `immediate`."""
        return "pending-reboot" if self.apply == "static" else "immediate"

    def value_problem(self, value: str) -> str | None:
        """Why RDS would refuse `value` for this parameter, or None."""
        text = str(value).strip()
        if text.startswith("{") and text.endswith("}"):
            return None  # an RDS formula such as {DBInstanceClassMemory/12038}: evaluated by RDS
        if self.allowed is not None and text not in self.allowed:
            return f"{self.name} takes one of {', '.join(self.allowed)}, not {text!r}"
        if self.minimum is not None and self.maximum is not None:
            try:
                number = float(text)
            except ValueError:
                return f"{self.name} takes a number ({self.unit or 'no unit'}), not {text!r}"
            if self.type == "integer" and not number.is_integer():
                return f"{self.name} takes a whole number, not {text!r}"
            if not self.minimum <= number <= self.maximum:
                return f"{self.name} takes {_num(self.minimum)} to {_num(self.maximum)}, not {text}"
        return None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class ParameterTable:
    family: str
    generated: str
    sources: tuple[str, ...]
    parameters: Mapping[str, ParameterSpec]

    def get(self, name: str) -> ParameterSpec | None:
        """The spec of `name` (parameter names are case-insensitive in PostgreSQL)."""
        return self.parameters.get(name.lower())

    def apply_method(self, name: str) -> ApplyMethod:
        spec = self.get(name)
        if spec is None:
            raise KeyError(f"{name} is not a {self.family} parameter on RDS (config/rds_parameters/{self.family}.json)")
        return spec.apply_method

    def problem(self, name: str, value: str) -> str | None:
        """Why a parameter group of this family would not take `name = value` as intended, or None."""
        spec = self.get(name)
        if spec is None:
            return f"{name!r} is not a {self.family} parameter on RDS"
        wrong = spec.value_problem(value)
        if wrong:
            return wrong
        if spec.rds_default is not None and str(value).strip() == spec.rds_default:
            return (f"{name}={value} is the {self.family} default on RDS: the provider never reads it back, so every "
                    "preview shows a change (hashicorp/terraform-provider-aws#23335); leave it out")
        return None


def _spec(name: str, row: Mapping[str, Any]) -> ParameterSpec:
    allowed = row.get("allowed")
    return ParameterSpec(
        name=name, apply=row["apply"], type=str(row.get("type", "string")),
        allowed=tuple(str(v) for v in allowed) if allowed is not None else None,
        minimum=row.get("min"), maximum=row.get("max"), unit=row.get("unit"),
        rds_default=str(row["rdsDefault"]) if row.get("rdsDefault") is not None else None,
        source=str(row.get("source", "")),
    )


def available_families() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in TABLE_DIR.glob("postgres*.json")))


@functools.cache
def parameter_table(family: str) -> ParameterTable:
    """The table of `family` (e.g. `postgres15`). Raises KeyError when none is checked in."""
    path = TABLE_DIR / f"{family}.json"
    if not path.is_file():
        raise KeyError(f"no parameter table for {family} is checked in ({', '.join(available_families())} are); "
                       f"build one with scripts/rds_parameter_table.py --major {family.removeprefix('postgres')}")
    data = json.loads(path.read_text(encoding="utf-8"))
    return ParameterTable(
        family=data["family"], generated=data["generated"], sources=tuple(data["sources"]),
        parameters={name.lower(): _spec(name.lower(), row) for name, row in data["parameters"].items()},
    )
