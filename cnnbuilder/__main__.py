"""`python -m cnnbuilder ...` (and `torchrun ... -m cnnbuilder train ...`): the same as `cnnbuilder ...`."""

import sys

from .cli import main

sys.exit(main())
