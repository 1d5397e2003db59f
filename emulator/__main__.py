"""`python -m forcebeam.emulator` == `forcebeam emulator`."""

from forcebeam.emulator.cli import main

raise SystemExit(main())
