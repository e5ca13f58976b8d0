"""edumatrix-db operational code: the program's composition, the offline plan engine and the CLI."""
