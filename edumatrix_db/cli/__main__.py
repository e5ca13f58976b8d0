"""`python -m edumatrix_db.cli`: the same as the `edumatrix-db` command."""

import sys

from edumatrix_db.cli import main

sys.exit(main())
