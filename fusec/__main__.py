import sys

from fusec.cli.main import main

sys.exit(main())
