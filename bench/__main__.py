"""`python -m bench` (what `make bench` runs).

`python -m bench serving [...]` runs only the emulator serving benchmark
(bench/emulator_serving.py); anything else goes to the full suite (bench/suite.py), which
runs the serving benchmark too unless told `--skip-serving`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serving"]:
        from bench import emulator_serving

        return emulator_serving.main(args[1:])
    from bench import suite

    return int(suite.main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
