// hf_mock.mjs ROOT - a local HTTP server that behaves like the Hugging Face
// Hub for `edgeagent pull` tests and the download benchmark (node built-ins
// only). Binds 127.0.0.1 on a free port and prints "PORT <n>" on stdout.
//
// Serves the files under ROOT/repos/ORG/REPO/... as:
//   GET /api/models/ORG/REPO[/revision/REV][?blobs=true]  the file list: "siblings"
//       with "rfilename"; with blobs=true also "size" and, for .gguf files,
//       "lfs": {"sha256", "size", "pointerSize"} (as the Hub does)
//   GET|HEAD /ORG/REPO/resolve/REV/FILE  302 to /cdn/ORG/REPO/FILE?sig=..., with
//       X-Linked-Etag ("<sha256>"), X-Linked-Size, X-Repo-Commit (as the Hub
//       does for LFS files); 404 with X-Error-Code: EntryNotFound
//   GET /cdn/... and /files/FILE  the bytes, with Range (206, Content-Range)
// Fault modes come from ROOT/mode.json, re-read on every request:
//   {"cut_fraction": 0.4}   responses that start at byte 0 send that fraction
//                           of the file, then the connection is closed
//   {"ignore_range": true}  Range is ignored (200, whole file)
//   {"wrong_sha": true}     the file list and X-Linked-Etag give a wrong sha256
//   {"require_token": "T"}  every request needs "Authorization: Bearer T" (else 401)
//   {"rate": N}             send at most N bytes per second
// Each request is logged as one JSON line in ROOT/log.jsonl:
//   {"method","path","range","status","sent","auth"} (auth: whether a token came).
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

const root = path.resolve(process.argv[2] || ".");
const repos = path.join(root, "repos");
const CHUNK = 1 << 20;
const shaCache = new Map();

function mode() {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, "mode.json"), "utf8"));
  } catch {
    return {};
  }
}

function log(entry) {
  if (entry.logged) return;
  entry.logged = true;
  const { logged, ...rest } = entry;
  fs.appendFileSync(path.join(root, "log.jsonl"), JSON.stringify(rest) + "\n");
}

async function sha256(file) {
  const st = fs.statSync(file);
  const key = `${file}:${st.size}:${st.mtimeMs}`;
  if (shaCache.has(key)) return shaCache.get(key);
  const h = crypto.createHash("sha256");
  for await (const chunk of fs.createReadStream(file, { highWaterMark: CHUNK })) h.update(chunk);
  const d = h.digest("hex");
  shaCache.set(key, d);
  return d;
}

function walk(dir, prefix = "") {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(path.join(dir, e.name), rel));
    else out.push(rel);
  }
  return out;
}

// inside ROOT/repos only
function safeJoin(...parts) {
  const p = path.resolve(repos, ...parts);
  return p.startsWith(repos + path.sep) ? p : null;
}

function wrongSha(sha) {
  return (sha[0] === "0" ? "1" : "0") + sha.slice(1);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function sendFile(req, res, file, m, entry) {
  const size = fs.statSync(file).size;
  let start = 0, end = size - 1, status = 200;
  const range = req.headers.range;
  if (range && !m.ignore_range) {
    const r = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!r || Number(r[1]) >= size) {
      entry.status = 416;
      res.writeHead(416, { "Content-Range": `bytes */${size}` });
      res.end();
      return;
    }
    start = Number(r[1]);
    if (r[2]) end = Math.min(Number(r[2]), size - 1);
    status = 206;
  }
  const headers = { "Content-Type": "application/octet-stream", "Content-Length": end - start + 1 };
  if (!m.ignore_range) headers["Accept-Ranges"] = "bytes";
  if (status === 206) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  entry.status = status;
  res.writeHead(status, headers);
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  const cutAt = m.cut_fraction && start === 0 ? Math.floor(size * m.cut_fraction) : null;
  const chunk = m.rate ? Math.max(1024, Math.floor(m.rate / 20)) : CHUNK;
  const fh = await fs.promises.open(file, "r");
  let pos = start;
  try {
    while (pos <= end) {
      let n = Math.min(chunk, end + 1 - pos);
      if (cutAt !== null) n = Math.min(n, cutAt - pos);
      if (n <= 0) break;
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await fh.read(buf, 0, n, pos);
      if (bytesRead <= 0) break;
      pos += bytesRead;
      entry.sent += bytesRead;
      if (!res.write(bytesRead === n ? buf : buf.subarray(0, bytesRead)))
        await new Promise((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      if (res.destroyed) break;
      if (m.rate && pos <= end) await sleep((1000 * bytesRead) / m.rate);
    }
  } finally {
    await fh.close();
  }
  // logged before the last bytes go out: the client may act on the log at once
  if (cutAt !== null && pos < end + 1) {
    entry.cut = true;
    log(entry);
    res.socket.end(); // flushes what was written, then FIN: a short body
  } else {
    log(entry);
    res.end();
  }
}

async function handle(req, res) {
  const end = res.end.bind(res);
  res.end = (...args) => {
    if (!entry.logged) log(entry);
    return end(...args);
  };
  const url = new URL(req.url, "http://x");
  const p = decodeURIComponent(url.pathname);
  const m = mode();
  const auth = req.headers.authorization || "";
  var entry = { method: req.method, path: p, range: req.headers.range || null, status: 0, sent: 0, auth: !!auth };
  try {
    if (m.require_token && auth !== `Bearer ${m.require_token}`) {
      entry.status = 401;
      res.writeHead(401, { "Content-Type": "application/json", "X-Error-Code": "GatedRepo" });
      res.end(JSON.stringify({ error: "Access to this repository is restricted. Invalid credentials." }));
      return;
    }
    let r;
    if ((r = /^\/api\/models\/([^/]+)\/([^/]+)(?:\/revision\/([^/]+))?$/.exec(p))) {
      const dir = safeJoin(r[1], r[2]);
      if (!dir || !fs.existsSync(dir)) {
        entry.status = 404;
        res.writeHead(404, { "Content-Type": "application/json", "X-Error-Code": "RepoNotFound" });
        res.end(JSON.stringify({ error: "Repository not found" }));
        return;
      }
      const blobs = url.searchParams.get("blobs") === "true";
      const siblings = [];
      for (const rel of walk(dir)) {
        const s = { rfilename: rel };
        if (blobs) {
          const f = path.join(dir, rel);
          const size = fs.statSync(f).size;
          s.size = size;
          s.blobId = crypto.createHash("sha1").update(rel).digest("hex");
          if (rel.endsWith(".gguf")) {
            const sha = await sha256(f);
            s.lfs = { sha256: m.wrong_sha ? wrongSha(sha) : sha, size, pointerSize: 135 };
          }
        }
        siblings.push(s);
      }
      const body = { _id: "0", id: `${r[1]}/${r[2]}`, modelId: `${r[1]}/${r[2]}`, sha: "0123456789abcdef0123456789abcdef01234567", private: false, gated: false, siblings };
      entry.status = 200;
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
      return;
    }
    if ((r = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p))) {
      const f = safeJoin(r[1], r[2], r[4]);
      if (!f || !fs.existsSync(f) || !fs.statSync(f).isFile()) {
        entry.status = 404;
        res.writeHead(404, { "X-Error-Code": "EntryNotFound", "Content-Type": "text/plain" });
        res.end("Entry not found");
        return;
      }
      const sha = await sha256(f);
      entry.status = 302;
      res.writeHead(302, {
        Location: `/cdn/${r[1]}/${r[2]}/${r[4]}?sig=${crypto.randomBytes(4).toString("hex")}`,
        "X-Linked-Etag": `"${m.wrong_sha ? wrongSha(sha) : sha}"`,
        "X-Linked-Size": String(fs.statSync(f).size),
        "X-Repo-Commit": "0123456789abcdef0123456789abcdef01234567",
        ETag: `"${crypto.createHash("sha1").update(r[4]).digest("hex")}"`,
      });
      res.end();
      return;
    }
    if ((r = /^\/cdn\/(.+)$/.exec(p)) || (r = /^\/files\/(.+)$/.exec(p))) {
      const f = p.startsWith("/cdn/") ? safeJoin(r[1]) : safeJoin("_files", r[1]);
      if (!f || !fs.existsSync(f) || !fs.statSync(f).isFile()) {
        entry.status = 404;
        res.writeHead(404);
        res.end("not found");
        return;
      }
      await sendFile(req, res, f, m, entry);
      return;
    }
    entry.status = 404;
    res.writeHead(404);
    res.end("not found");
  } catch (e) {
    entry.error = String(e);
    if (!res.headersSent) {
      entry.status = 500;
      res.writeHead(500);
    }
    res.end();
  } finally {
    log(entry);
  }
}

const server = http.createServer((req, res) => {
  handle(req, res);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
