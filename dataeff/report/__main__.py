"""`python -m dataeff.report`: the same as the `dataeff-report` console script."""

import sys

from dataeff.report.cli import main

sys.exit(main())
