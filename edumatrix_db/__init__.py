"""edumatrix-db's tooling, split by purpose: `offline` (plans and the policy gate under the SDK's mocks),
`database` (what runs against a real PostgreSQL), `ops` (operational tools) and `cli` (the `edumatrix-db`
command). The Pulumi program itself is `__main__.py` with `config/` and `components/`."""
