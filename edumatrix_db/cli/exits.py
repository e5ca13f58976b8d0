"""Exit codes of the `edumatrix-db` command (an interface: CI and scripts branch on them)."""

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2
EXIT_DANGER = 3  # `diff`: the change holds a dangerous change (a stateful resource replaced or deleted, ...)
