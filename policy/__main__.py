"""Entry point `pulumi preview --policy-pack policy` runs: build the pack, nothing else.

The validators import the project's `config` package (catalog, naming, settings constants), so the project
root goes on the path first.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policy.pack import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=list(POLICIES), enforcement_level=DEFAULT_ENFORCEMENT)
