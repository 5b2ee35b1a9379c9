"""`python -m vssl_core.cli` (what `torchrun -m vssl_core.cli train ...` runs)."""

import sys

from vssl_core.cli.main import main

sys.exit(main())
