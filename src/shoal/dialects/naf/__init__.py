"""networked-aframe (NAF) compatibility: the `uws` and `socketio` adapters of NAF 0.14, one shared core.

`core` (sans-I/O rooms and relaying), `shadow` (entity state and NAF's ownership rule), `service` (the I/O
side: actions, store), `uws` and `socketio` (the two transports), `demo/` (NAF's own example pages and the
vendored NAF, A-Frame and socket.io client they load, served under `/examples/naf/`).
"""

from pathlib import Path

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_PATH = "/examples/naf/"
