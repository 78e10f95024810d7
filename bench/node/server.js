'use strict';
// The Node.js anchor of `make bench`: the word-count service written the way
// a Node.js user would write it (the http module, the body collected in
// chunks, Buffer.concat, toString, split into lines and words, compare).
// Node's http module runs on libuv and llhttp too, so this is the same stack
// as wordcount-server with JavaScript in place of C and no worker pool.
//
// Usage: node bench/node/server.js [PORT] [HOST]     (PORT 0: any free port)
// Prints "listening on http://HOST:PORT" once it accepts connections.
//
// POST /count?needle=is          the body is the text (any Content-Type)
// POST /count with JSON          {"text": "...", "needle": "is", "mode": ...}
// Answers {"count": N, "counts": {"is": N}, "bytes": B} like wordcount-server
// (mode is accepted and ignored: there is one thread).

const http = require('http');

// The seed's search_sequential: lines() (a "\r" before "\n" dropped), then
// split(' '), then ==.
function countWords(text, needle) {
  let total = 0;
  for (let line of text.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    for (const word of line.split(' ')) {
      if (word === needle) total++;
    }
  }
  return total;
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
  if (url.pathname !== '/count') return send(res, 404, { error: 'not found' });
  if (req.method !== 'POST' && req.method !== 'PUT') {
    return send(res, 405, { error: 'method not allowed' });
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let text;
    let needle = url.searchParams.get('needle');
    let bytes;
    if (needle !== null) {
      text = body.toString('utf8');
      bytes = body.length;
    } else {
      let doc;
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch (e) {
        return send(res, 400, { error: 'invalid JSON: ' + e.message });
      }
      if (typeof doc.text !== 'string' || typeof doc.needle !== 'string') {
        return send(res, 400, { error: 'text and needle must be strings' });
      }
      text = doc.text;
      needle = doc.needle;
      bytes = Buffer.byteLength(text);
    }
    if (needle === '' || needle.includes(' ') || needle.includes('\n')) {
      return send(res, 400, { error: 'invalid needle' });
    }
    const count = countWords(text, needle);
    send(res, 200, { count, counts: { [needle]: count }, bytes });
  });
});

// Keep-alive connections stay open for the whole benchmark run.
server.keepAliveTimeout = 120000;
server.headersTimeout = 121000;
server.requestTimeout = 0;

const port = Number(process.argv[2] || 0);
const host = process.argv[3] || '127.0.0.1';
server.listen({ port, host, backlog: 4096 }, () => {
  console.log(`listening on http://${host}:${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
