// lufa serve survives malformed requests: broken request lines and header fields, oversized heads, bodies
// shorter than announced, clients that disconnect mid-request. Each gets an HTTP error or a closed
// connection, and the server still answers a good request afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { join } from "node:path";
import { outputDir, serve } from "./support.mjs";

let server, port;

before(async () => {
  const out = outputDir("serve_fuzz");
  server = await serve(["--store", join(out, "runs.db")]);
  port = Number(new URL(server.base).port);
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, server.stderr());
});

// Sends raw bytes; resolves with what came back before the server closed (or "" after a timeout).
function exchange(bytes, { end = true, wait = 5000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let got = "";
    const timer = setTimeout(() => { sock.destroy(); resolve(got); }, wait);
    sock.on("data", (d) => { got += d.toString("latin1"); });
    sock.on("close", () => { clearTimeout(timer); resolve(got); });
    sock.on("error", () => {});
    sock.write(Buffer.from(bytes, "latin1"));
    if (end) sock.end();
  });
}

const statusOf = (reply) => { const m = reply.match(/^HTTP\/1\.1 (\d{3}) /); return m ? Number(m[1]) : null; };

test("documented refusals", async () => {
  const cases = [
    ["GET /\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n\r\n", 400],
    ["GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505],
    ["POST /api/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501],
    ["POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413],
    ["GET / HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + "a".repeat(20000) + "\r\n\r\n", 431],
    ["GET /" + "a".repeat(20000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414],
    ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400],   // a TLS ClientHello
  ];
  for (const [bytes, status] of cases) {
    assert.equal(statusOf(await exchange(bytes)), status, JSON.stringify(bytes.slice(0, 60)));
  }
});

test("a seeded fuzz of request lines and header fields", async () => {
  const seeds = [
    `GET /runs?status=Failed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: lufa_token=x\r\n\r\n`,
    `POST /api/runs/x/rerun HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    `GET /runs/%zz/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
  ];
  const alphabet = ["\r", "\n", " ", ":", "\t", "\0", "%", "?", "/", "\x7f", "\xff", "é", "../", "\r\n\r\n", "9999999999"];
  let seed = 7;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const counts = { answered: 0, closed: 0 };
  for (let round = 0; round < 240; round++) {
    let s = seeds[round % seeds.length];
    for (let k = 0; k <= round % 4; k++) {
      const at = rand(s.length);
      const op = rand(3);
      if (op === 0) s = s.slice(0, at) + alphabet[rand(alphabet.length)] + s.slice(at + 1);
      else if (op === 1) s = s.slice(0, at) + s.slice(at + 1 + rand(4));
      else s = s.slice(0, at) + alphabet[rand(alphabet.length)] + s.slice(at);
    }
    const reply = await exchange(s, { wait: 3000 });
    const status = statusOf(reply);
    if (status === null) {
      assert.equal(reply, "", `an answer that is not HTTP to ${JSON.stringify(s)}`);
      counts.closed++;
    } else {
      assert.ok(status >= 200 && status < 600, reply.slice(0, 80));
      counts.answered++;
    }
  }
  assert.ok(counts.answered > 100, JSON.stringify(counts));
  // still serving
  const good = await exchange(`GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  assert.equal(statusOf(good), 200);
});

test("clients that vanish mid-request, or announce more body than they send", async () => {
  const sockets = [];
  for (let i = 0; i < 20; i++) {
    const sock = net.connect(port, "127.0.0.1");
    sock.on("error", () => {});
    sock.write(`POST /api/runs/x/cancel HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 100\r\n\r\nabc`);
    sockets.push(sock);
  }
  await new Promise((r) => setTimeout(r, 200));
  sockets.forEach((s) => s.destroy());
  assert.equal(await exchange(`GET /runs HTTP/1.1\r\nHost: 127.0.0.1:${port}`), "");   // half a head, then EOF
  const good = await exchange(`GET /runs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  assert.equal(statusOf(good), 200);
  assert.match(good, /Pipeline runs/);
});
