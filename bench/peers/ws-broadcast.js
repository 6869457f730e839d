// Decentraland's ws-broadcast relay, reproduced as a peer for Shoal's fan-out benchmark (bench/peers.py,
// `bench/fanout.py --peer ws-broadcast`).
//
// What it reproduces: `src/index.ts` of https://github.com/decentraland-scenes/ws-broadcast at cae7b92
// (MIT licence), the whole server, on `ws` 7.3.1 (pinned in package.json; `npm ci` installs it). As there:
// `new WebSocket.Server(...)` with ws's defaults (no permessage-deflate, 100 MiB maxPayload), the room is
// the raw request-target (`request.url || ""`), and each message is sent to every OPEN client of the server
// whose room is the same, the sender included, by a loop over ALL `wss.clients` (no room index: each message
// costs O(clients on the server), which is the original's cost model and is kept on purpose). Text arrives
// as a string and goes out as text; binary goes out as binary. No ids, presence, pings or limits.
//
// What differs, and only this: it listens on 127.0.0.1 (not every interface) and on the port given on the
// command line instead of 8080 (0: any free port), and its ready line is one JSON line on stdout,
// `{"event":"listening","port":N}`, which the benchmark waits for (the original logs "Listening on port ...").
// It is plain JavaScript as an ES module (this package is `"type": "module"`) instead of TypeScript run by
// ts-node; `import WebSocket from "ws"` loads the same CommonJS export as the original's `import * as`.
//
//     node bench/peers/ws-broadcast.js PORT

import WebSocket from 'ws';

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node bench/peers/ws-broadcast.js PORT   (0: any free port)');
  process.exit(2);
}

const wss = new WebSocket.Server({ host: '127.0.0.1', port });

wss.on('connection', (ws, request) => {
  ws.room = request.url || '';

  ws.on('message', function incoming(data) {
    wss.clients.forEach(function each(client) {
      if (client.readyState === WebSocket.OPEN && client.room === ws.room) {
        client.send(data);
      }
    });
  });
});

wss.once('listening', () => {
  console.log(JSON.stringify({ event: 'listening', host: '127.0.0.1', port: wss.address().port }));
});
