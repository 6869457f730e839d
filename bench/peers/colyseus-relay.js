// A Colyseus 0.16 relay room, reproduced as a peer for Shoal's fan-out benchmark (bench/peers.py,
// `bench/fanout.py --peer colyseus --protocol colyseus`).
//
// What it reproduces: the Colyseus row of the performance reference, "a Colyseus 0.16 relay room
// (`broadcast(..., {except: client})`)": a `Server` of @colyseus/core 0.16 on its WebSocketTransport
// (@colyseus/ws-transport 0.16, on its own `ws` 8; both pinned in package.json, `npm ci` installs them), one
// room type, "relay", whose only logic is `onMessage("*", (client, type, message) => this.broadcast(type,
// message, { except: client }))`: every message of a client goes to every other client of its room, decoded
// (msgpack) and encoded again by Colyseus, the sender excluded. No state schema (so no patches are sent), no
// onJoin/onLeave/onAuth. `filterBy(["room"])` makes clients that join with the option `{room: NAME}` share
// one room per NAME (the loader's rooms); `maxClients` is Infinity, Colyseus's default, stated so that a room
// never locks for being full. Everything else is Colyseus's default for one process: the local presence and
// driver, HTTP matchmaking (`POST /matchmake/joinOrCreate/relay`), the seat reservation, the JOIN_ROOM
// handshake, the transport's 4 KiB maxPayload, no permessage-deflate, a ping every 3 s, and @pm2/io: a peer
// dependency of @colyseus/core that npm installs with it, to which Colyseus reports its room count and CCU, and
// which then samples its default metrics (event loop, V8, runtime, HTTP requests) on timers, not per message.
// msgpackr's native string extractor (msgpackr-extract) is installed too, at 3.0.4 (package.json's `overrides`:
// the 3.0.7 that the range would pick names platform packages the npm registry lacks, so `npm ci` fails on it).
//
// What differs, and only this: it listens on 127.0.0.1 on the port given on the command line (0: any free
// port), prints one JSON line `{"event":"listening","host":"127.0.0.1","port":N}` on stdout when ready (the
// benchmark waits for it) instead of Colyseus's greeting banner (`greet: false`), and runs with NODE_ENV
// "production" unless told otherwise, as a deployed server does: outside production Colyseus resets its
// msgpack encoder's buffer for every message it encodes, a cost of development builds only.
//
//     node bench/peers/colyseus-relay.js PORT

import { Room, Server } from '@colyseus/core';
import { WebSocketTransport } from '@colyseus/ws-transport';

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node bench/peers/colyseus-relay.js PORT   (0: any free port)');
  process.exit(2);
}
process.env.NODE_ENV ??= 'production';

class RelayRoom extends Room {
  maxClients = Infinity;

  onCreate() {
    this.onMessage('*', (client, type, message) => this.broadcast(type, message, { except: client }));
  }
}

const transport = new WebSocketTransport();
const server = new Server({ transport, greet: false });
server.define('relay', RelayRoom).filterBy(['room']);
await server.listen(port, '127.0.0.1');
console.log(JSON.stringify({ event: 'listening', host: '127.0.0.1', port: transport.server.address().port }));
