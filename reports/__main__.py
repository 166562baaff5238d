"""`python -m reports DIR [DIR ...]`: write a report without the lrsweep CLI (no Ray, no torch)."""

import sys

from reports.cli import main

sys.exit(main())
