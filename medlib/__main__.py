import sys
from medlib.cli.commands import main

sys.exit(main())
