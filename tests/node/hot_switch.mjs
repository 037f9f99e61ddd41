// hot_switch.mjs BASE_URL API_KEY CLIENTS LOAD_NAME - the client side of
// test_hot_switch: CLIENTS clients each send streamed /v1/chat/completions
// one after another (the generated model's end-of-text, id 2, banned so
// every answer runs to max_tokens; client 0's answers are 8x longer); once
// every client has finished 2 requests and client 0 is reading an answer,
// POST /v1/edgeagent/models/load {"name": LOAD_NAME}; then the
// clients go on until every one has finished 2 requests that began after
// the load was answered. Prints one JSON object:
//   {load: {status, body, t0, t1}, requests: [{client, start, headers, end,
//    status, models: [distinct "model" values of its chunks], done, finish,
//    error}]} (headers: when the response's headers arrived)
// Times are ms since the start. Any failure is reported, never thrown.
const [base, key, clientsArg, loadName] = process.argv.slice(2);
const clients = Number(clientsArg);
const t = () => performance.now();
const T0 = t();
const requests = [];
const load = { status: 0, body: "", t0: -1, t1: -1 };
const MAX_TOKENS = 48;
// client 0's answers are long, so that some are answered before the load is
// sent and still streaming after it was answered (the switch under them)
const LONG_TOKENS = 8 * MAX_TOKENS;
let zeroStreaming = false; // client 0 has its answer's headers and is reading it
const HARD_STOP_MS = 120000; // a hung server must not hang the test

async function one(k, i) {
  const r = { client: k, start: t() - T0, headers: -1, end: -1, status: 0, models: [], done: false, finish: null,
              error: null };
  try {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({
        messages: [{ role: "user", content: `client ${k} request ${i}` }],
        max_tokens: k === 0 ? LONG_TOKENS : MAX_TOKENS, logit_bias: { 2: -100 }, stream: true, seed: k * 1000 + i,
      }),
    });
    r.status = res.status;
    r.headers = t() - T0; // the server had taken the request (and its model) by then
    if (k === 0) zeroStreaming = true;
    const text = await res.text();
    if (k === 0) zeroStreaming = false;
    for (const ev of text.split("\n\n")) {
      if (!ev.startsWith("data: ")) continue;
      const d = ev.slice(6);
      if (d === "[DONE]") { r.done = true; continue; }
      let o;
      try { o = JSON.parse(d); } catch { r.error = `bad event ${d.slice(0, 80)}`; continue; }
      if (o.error) r.error = JSON.stringify(o.error);
      if (o.model && !r.models.includes(o.model)) r.models.push(o.model);
      const f = o.choices && o.choices[0] && o.choices[0].finish_reason;
      if (f) r.finish = f;
    }
    if (res.status !== 200 && !r.error) r.error = text.slice(0, 200);
  } catch (e) {
    r.error = String(e);
  }
  r.end = t() - T0;
  requests.push(r);
}

const doneBefore = new Array(clients).fill(0);
const doneAfter = new Array(clients).fill(0);
let stop = false;

async function client(k) {
  for (let i = 0; !stop && t() - T0 < HARD_STOP_MS; i++) {
    const began = t() - T0;
    await one(k, i);
    doneBefore[k]++;
    if (load.t1 >= 0 && began > load.t1) doneAfter[k]++;
    if (doneAfter.every((n) => n >= 2)) stop = true;
  }
}

async function loader() {
  while (!(doneBefore.every((n) => n >= 2) && zeroStreaming) && t() - T0 < HARD_STOP_MS)
    await new Promise((r) => setTimeout(r, 1));
  load.t0 = t() - T0;
  try {
    const res = await fetch(`${base}/v1/edgeagent/models/load`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ name: loadName }),
    });
    load.status = res.status;
    load.body = await res.text();
  } catch (e) {
    load.body = String(e);
  }
  load.t1 = t() - T0;
  if (load.status !== 200) stop = true;
}

await Promise.all([loader(), ...Array.from({ length: clients }, (_, k) => client(k))]);
console.log(JSON.stringify({ load, requests }));
