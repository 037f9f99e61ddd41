// load_test.mjs BASE_URL SERVER_PID [SECONDS=300] [CONNECTIONS=64] [WARMUP_S=60]
// A bounded load on a running `edgeagent serve`: CONNECTIONS keep-alive
// clients in a closed loop, alternating streamed and non-streamed chat
// requests (max_tokens 8..40). Counts statuses (200, 429 and anything else,
// which is an error, as are transport failures and streams without [DONE]),
// samples the server's RSS (VmRSS of SERVER_PID) every 2 s and compares the
// end value with the value right after warm-up. Prints a JSON summary.
import http from "node:http";
import fs from "node:fs";

const [base, pidArg, secsArg, connArg, warmArg] = process.argv.slice(2);
const pid = Number(pidArg), secs = Number(secsArg || 300), conns = Number(connArg || 64);
const warm = Number(warmArg || Math.min(60, secs / 5));
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const counts = { 200: 0, 429: 0, other: 0, transport: 0, incomplete: 0 };
const lat = [];
const rss = [];
let rssWarm = null;
const t0 = Date.now();
const end = t0 + secs * 1000;

function rssKb() {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
}

function request(i, n) {
  const stream = n % 2 === 0;
  const body = JSON.stringify({
    model: "default", messages: [{ role: "user", content: `load client ${i} request ${n}` }],
    max_tokens: 8 + ((i * 7 + n) % 33), seed: n, stream,
  });
  return new Promise((resolve) => {
    const t = Date.now();
    const req = http.request({
      host: url.hostname, port: url.port, path: "/v1/chat/completions", method: "POST", agent,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
    }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { data += d; });
      res.on("end", () => {
        if (res.statusCode === 200) {
          const complete = stream ? data.trimEnd().endsWith("data: [DONE]") : data.includes('"usage"');
          if (complete) { counts[200]++; lat.push(Date.now() - t); } else counts.incomplete++;
        } else if (res.statusCode === 429) {
          counts[429]++;
        } else {
          counts.other++;
          if (counts.other < 5) console.error("status", res.statusCode, data.slice(0, 200));
        }
        resolve(res.statusCode === 429);
      });
    });
    req.on("error", (e) => { counts.transport++; if (counts.transport < 5) console.error(String(e)); resolve(false); });
    req.end(body);
  });
}

async function client(i) {
  for (let n = 0; Date.now() < end; n++) {
    const busy = await request(i, n);
    if (busy) await new Promise((r) => setTimeout(r, 100)); // honour Retry-After loosely
  }
}

const sampler = setInterval(() => {
  const v = rssKb();
  const t = (Date.now() - t0) / 1000;
  rss.push([Math.round(t), v]);
  if (rssWarm === null && t >= warm) rssWarm = v;
}, 2000);

await Promise.all([...Array(conns).keys()].map(client));
clearInterval(sampler);
const rssEnd = rssKb();
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
const errors = counts.other + counts.transport + counts.incomplete;
const after = rss.filter(([t]) => t >= warm).map(([, v]) => v);
const summary = {
  seconds: secs, connections: conns, warmup_s: warm, completed: counts[200], rejected_429: counts[429],
  errors, by_kind: counts, req_per_s: +(counts[200] / secs).toFixed(2),
  latency_ms: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lat.length ? lat[lat.length - 1] : null },
  rss_kb: { after_warmup: rssWarm, end: rssEnd, max_after_warmup: Math.max(...after), min_after_warmup: Math.min(...after),
            end_vs_warmup_pct: rssWarm ? +((100 * (rssEnd - rssWarm)) / rssWarm).toFixed(2) : null },
};
console.log(JSON.stringify(summary, null, 2));
process.exit(errors === 0 ? 0 : 1);
