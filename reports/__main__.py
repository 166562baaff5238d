"""`python -m reports DIR [DIR ...]`: write a report without the lrsweep CLI (no Ray, no torch)."""

import sys

from reports.render import main

sys.exit(main())
