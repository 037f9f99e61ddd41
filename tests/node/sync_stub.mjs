// sync_stub.mjs LOG PLAN - a summary collector for the ledger's summary sync
// tests (node built-ins only). Binds 127.0.0.1 on a free port and prints
// "PORT <n>" on stdout.
//
// POST /summaries takes one summary (JSON) with an Idempotency-Key header.
// Like a real idempotent endpoint it keeps each key once: a repeat is
// answered 200 and not counted again. PLAN is a comma-separated list of
// what the first requests get, in order: "500" (an error, nothing kept),
// "hang" (the summary is kept, the answer comes after 3 s: the client times
// out first and must retry the same key), "ok"; after the list, every
// request is "ok". Each request is one JSON line in LOG:
//   {"n", "key", "seq", "status", "dup", "requests"} (requests: the sum of
//   the groups' request counts, for a kept summary).
import http from "node:http";
import fs from "node:fs";

const logFile = process.argv[2];
const plan = (process.argv[3] || "").split(",").filter((s) => s);
const kept = new Map();
let n = 0;

function log(e) {
  fs.appendFileSync(logFile, JSON.stringify(e) + "\n");
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const i = n++;
    const what = i < plan.length ? plan[i] : "ok";
    const key = req.headers["idempotency-key"] || "";
    let body = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      body = null;
    }
    const entry = { n: i, key, seq: body ? body.seq : null, status: 0, dup: false, requests: 0 };
    if (req.method !== "POST" || req.url !== "/summaries" || !body || !key || body.idempotency_key !== key) {
      entry.status = 400;
      log(entry);
      res.writeHead(400).end();
      return;
    }
    if (what === "500") {
      entry.status = 500;
      log(entry);
      res.writeHead(500).end("try later");
      return;
    }
    if (kept.has(key)) {
      entry.dup = true;
    } else {
      kept.set(key, body);
      entry.requests = body.groups.reduce((a, g) => a + g.requests, 0);
    }
    entry.status = 200;
    log(entry);
    const answer = () => {
      if (!res.destroyed) res.writeHead(200, { "Content-Type": "application/json" }).end('{"ok":true}');
    };
    if (what === "hang") setTimeout(answer, 3000);
    else answer();
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
