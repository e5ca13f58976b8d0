"""Offline: the recording engine (runs `__main__.py` under the SDK's mocks), the mocks, the plan renderers
(tree, JSON, Mermaid) and the policy gate. No cloud, no Pulumi CLI."""
