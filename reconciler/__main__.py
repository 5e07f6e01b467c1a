"""`python -m reconciler` is `cnm`."""

import sys

from reconciler.cli import main

sys.exit(main())
