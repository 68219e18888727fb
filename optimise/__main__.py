import sys

from optimise.cli import main

sys.exit(main())
