"""Validated StackSettings built straight from a `config:`-like mapping, without the loader: for fast tests of one
cross-section rule (config/preflight.py, config/stack_rules.py) that call the rule itself."""

from __future__ import annotations

from typing import Any

from config.settings import StackSettings
from tests.dev_stack import DEV

SOURCE = "stacks/Pulumi.dev.yaml"
DEV_NETWORK: dict[str, Any] = DEV["edumatrix-db:network"]  # the smallest valid dev stack's network


def stack_settings(*, stack: str = "dev", environment: str = "dev", aws_region: str | None = "us-east-1",
                   **sections: Any) -> StackSettings:
    """A dev stack in us-east-1 with `sections` (stack-file keys without the namespace, e.g. instance={...})."""
    raw: dict[str, Any] = {"stack": stack, "source": SOURCE, "environment": environment, "awsRegion": aws_region}
    return StackSettings.model_validate({**raw, **sections})


def local_settings(**sections: Any) -> StackSettings:
    return stack_settings(stack="local", environment="local", aws_region=None, **sections)
