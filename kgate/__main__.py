import sys

from kgate.cli import main

sys.exit(main())
