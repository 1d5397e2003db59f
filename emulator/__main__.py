"""`python -m emulator` == `forcebeam emulator`."""

from emulator.cli import main

raise SystemExit(main())
