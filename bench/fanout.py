"""The fan-out benchmark as a script, for one measurement: `python bench/fanout.py --help`.

The code lives in the package (`shoal.bench.fanout`, which also backs `shoal bench` and its sweeps and
plots); this wrapper runs it from this checkout's `src/`, whatever version of shoal is installed.

`--peer ws-broadcast` or `--peer websockets-relay` (with `--protocol broadcast`), or `--peer colyseus` (with
`--protocol colyseus`), measures one of the foreign relays of `bench/peers/` instead of Shoal; `bench/peers.py`
measures Shoal and every peer in one run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.bench.fanout import main  # after the path is set

if __name__ == "__main__":
    main()
