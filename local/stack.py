#!/usr/bin/env python3
"""kb-autosync local stack launcher.

  python local/stack.py up --state-dir DIR [--template template.yaml] [--param Key=Value]...
      [--env [FUNCTION:]KEY=VALUE]... [--override LogicalId.Prop=VALUE]... [--bin-dir target/debug]
      [--emulator-bin target/debug/bedrock-emulator] [--emulator-config FILE] [--no-emulator]
      [--time-scale N] [--workers N] [--port 0] [--stack-name kb-autosync] [--sweep-every SECONDS]
      [--allow-missing]
  python local/stack.py sweep --state-dir DIR

See local/NOTES.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kbstack import deps  # noqa: E402  (stdlib only)

_problem = deps.check()
if _problem:
    print(f"kb-autosync local stack: error: {_problem}", file=sys.stderr)
    sys.exit(1)

from kbstack.launcher import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
