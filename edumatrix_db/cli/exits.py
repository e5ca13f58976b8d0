"""Exit codes of the `edumatrix-db` command (an interface: CI and scripts branch on them)."""

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2
