"""The registry of the pack: every policy, the pack's name and default enforcement, and the per-environment
policy config (`policy/config/<environment>.json`, the file `--policy-pack-config` takes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel

from policy import (
    access,
    audit,
    aws_api,
    aws_api_services,
    backup,
    connections,
    encryption,
    events,
    extraction,
    gdpr,
    lambdas,
    outbox,
    pooler,
    rds,
    replication,
    tags,
)
from policy.base import PackPolicy

PACK_NAME = "edumatrix-db"
# Every policy is mandatory (rds-backup-plan-declared, advisory until AWS Backup was declared, is gone: RDS.26 is
# mandatory since issue 15).
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY
CONFIG_DIR = Path(__file__).resolve().with_name("config")

POLICIES: list[PackPolicy] = [
    *rds.POLICIES,
    *encryption.POLICIES,
    *audit.POLICIES,
    *access.POLICIES,
    *replication.POLICIES,
    *backup.POLICIES,
    *lambdas.POLICIES,
    *tags.POLICIES,
    *aws_api.POLICIES,
    *aws_api_services.POLICIES,
    *connections.POLICIES,
    *extraction.POLICIES,
    *pooler.POLICIES,
    *gdpr.POLICIES,
    *events.POLICIES,
    *outbox.POLICIES,
]


def policy_config_file(environment: str) -> Path:
    return CONFIG_DIR / f"{environment}.json"


def load_policy_config(environment: str) -> dict[str, Any]:
    """The policy config of an environment: `{policy: {"enforcementLevel"?: ..., key: value}}`."""
    path = policy_config_file(environment)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no policy config for environment {environment!r}")
    data = json.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(data) - {p.name for p in POLICIES})
    if unknown:
        raise ValueError(f"{path}: unknown policies {', '.join(unknown)}")
    return dict(data)
