// The enginekit observer: polls the admin API and renders it. No framework,
// no build step; everything the node reports is inserted as text, never as
// HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const api = (path) => "../api/" + path;

const maxRows = 2000;

const view = {
  sort: "mailbox",   // column key
  asc: false,
  filter: "",
  selected: null,    // PID string of the process shown in the detail panel
  interval: 1000,
  timer: null,
  refreshes: 0,
  procs: [],
};

// el builds an element: el("td", {class: "num"}, "12", child...).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

const fmtInt = (n) => (n ?? 0).toLocaleString("en-US");
function fmtBytes(n) {
  n = n ?? 0;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
// short shortens a long address for display; the full one is its title.
const short = (s) => (s && s.length > 20 ? s.slice(0, 10) + "…" + s.slice(-6) : s || "");
function since(t) {
  if (!t) return "";
  const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}
// durNanos parses a Go duration string ("1m2.5s", "350µs", "0s").
function durNanos(d) {
  if (!d || d === "0s") return 0;
  const unit = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  for (const [, num, u] of d.matchAll(/([0-9.]+)(ns|us|µs|μs|ms|s|m|h)/g)) total += parseFloat(num) * unit[u];
  return d.startsWith("-") ? -total : total;
}
function fmtDur(d) {
  const ns = durNanos(d);
  if (ns === 0) return "";
  if (ns < 1e6) return (ns / 1e3).toFixed(0) + " µs";
  if (ns < 1e9) return (ns / 1e6).toFixed(1) + " ms";
  if (ns < 120e9) return (ns / 1e9).toFixed(1) + " s";
  return (ns / 60e9).toFixed(1) + " min";
}
const pidNum = (pid) => parseInt((pid.match(/(\d+)>?$/) || [0, 0])[1], 10);

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

// ---- processes

const sorters = {
  pid: (a, b) => pidNum(a.pid) - pidNum(b.pid),
  name: (a, b) => (a.child || a.name || "\uffff").localeCompare(b.child || b.name || "\uffff") || pidNum(a.pid) - pidNum(b.pid),
  status: (a, b) => a.status.localeCompare(b.status) || pidNum(a.pid) - pidNum(b.pid),
  mailbox: (a, b) => a.mailbox - b.mailbox || a.handled - b.handled,
  handled: (a, b) => a.handled - b.handled || a.mailbox - b.mailbox,
  in_callback: (a, b) => durNanos(a.in_callback) - durNanos(b.in_callback),
};
const ascByDefault = { pid: true, name: true, status: true };

function renderProcesses() {
  const f = view.filter.toLowerCase();
  let rows = view.procs.filter((p) => !f || p.pid.toLowerCase().includes(f) || (p.name || "").toLowerCase().includes(f) || (p.child || "").toLowerCase().includes(f) || p.status.includes(f));
  rows.sort(sorters[view.sort]);
  if (!view.asc) rows.reverse();
  const tbody = el("tbody");
  for (const p of rows) {
    const mb = p.mailbox > 1000 ? "mailbox num hot" : p.mailbox > 10 ? "mailbox num busy" : "mailbox num";
    tbody.append(el("tr", {
      data: { pid: p.pid, name: p.name || "" },
      class: p.pid === view.selected ? "selected" : "",
      onclick: () => select(p.pid),
    },
      el("td", { class: "pid mono" }, p.pid),
      el("td", { class: "name", title: p.name || "" },
        p.child ? el("span", { class: "child" }, p.child) : null,
        p.proxy ? el("span", { class: "proxy", title: "proxy of an engine learned from peer " + p.proxy }, "proxy ← peer " + p.proxy.slice(0, 10) + "…") : null,
        !p.child && !p.proxy && p.name ? el("span", {}, p.name.length > 24 ? short(p.name) : p.name) : null),
      el("td", { class: "status" }, el("span", { class: "st st-" + p.status }, p.status)),
      el("td", { class: mb }, fmtInt(p.mailbox)),
      el("td", { class: "handled num" }, fmtInt(p.handled)),
      el("td", { class: "in-callback num", title: p.in_callback }, fmtDur(p.in_callback)),
    ));
  }
  $("#processes tbody").replaceWith(tbody);
  const total = view.total ?? view.procs.length;
  $("#proc-count").textContent = rows.length === total ? `(${total})` : `(${rows.length} of ${total})`;
  for (const th of document.querySelectorAll("#processes th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === view.sort);
    th.classList.toggle("asc", th.dataset.sort === view.sort && view.asc);
  }
}

function select(pid) {
  view.selected = pid;
  history.replaceState(null, "", "#" + encodeURIComponent(pid)); // a link to this view shows the same process
  renderProcesses();
  refreshDetail();
}

async function refreshDetail() {
  const pid = view.selected;
  if (!pid) return;
  $("#detail-title").textContent = pid;
  let p;
  try {
    p = await getJSON(api("process/" + encodeURIComponent(pid)));
  } catch (e) {
    if (view.selected === pid) $("#detail").replaceChildren(el("p", { class: "error" }, "gone: " + e.message));
    return;
  }
  if (view.selected !== pid) return;
  // Linked and monitoring processes are links to their own view.
  const list = (xs) => (xs && xs.length ? xs.map((pid) => el("a", { href: "#" + encodeURIComponent(pid), class: "pidlink", onclick: (e) => { e.preventDefault(); select(pid); } }, pid, " ")) : "–");
  const dl = el("dl", { class: "info" },
    el("dt", {}, "name"), el("dd", { class: "mono" }, p.name || "–"),
    el("dt", {}, "child"), el("dd", {}, p.child || "–"),
    p.proxy ? [el("dt", {}, "proxy of"), el("dd", { class: "mono" }, "an engine of peer " + p.proxy)] : null,
    el("dt", {}, "status"), el("dd", {}, el("span", { class: "st st-" + p.status }, p.status)),
    el("dt", {}, "mailbox"), el("dd", { id: "detail-mailbox" }, fmtInt(p.mailbox)),
    el("dt", {}, "handled"), el("dd", { id: "detail-handled" }, fmtInt(p.handled)),
    el("dt", {}, "in callback"), el("dd", { title: p.in_callback }, fmtDur(p.in_callback) || "–"),
    el("dt", {}, "started"), el("dd", {}, p.started ? new Date(p.started).toLocaleTimeString() + " (" + since(p.started) + " ago)" : "–"),
    el("dt", {}, "trap exits"), el("dd", {}, p.trap_exits ? "yes" : "no"),
    el("dt", {}, "links"), el("dd", { class: "mono" }, list(p.links)),
    el("dt", {}, "monitors"), el("dd", { class: "mono" }, list(p.monitors)),
    el("dt", {}, "monitored by"), el("dd", { class: "mono" }, list(p.monitored_by)),
  );
  const state = p.state_error
    ? el("p", { class: "error" }, p.state_error)
    : el("pre", { class: "state", id: "detail-state" }, p.state || "");
  $("#detail").replaceChildren(dl, el("h3", {}, "reported state"), state);
}

// ---- supervision tree

function renderTree(doc) {
  const box = $("#tree");
  if (!doc.trees.length) { box.replaceChildren(el("p", { class: "dim" }, "no supervisors")); return; }
  const sup = (t) => el("ul", {}, t.children.map((c) => el("li", { data: { child: c.id } },
    el("span", { class: "node" },
      el("span", { class: "dot" + (c.running ? "" : " down"), title: c.running ? "running" : "not running" }),
      c.sub ? el("span", { class: "sup" }, c.id) : el("span", {}, c.id),
      c.pid ? el("span", { class: "pid", title: "show this process", onclick: () => select(c.pid) }, c.pid) : null,
      el("span", { class: "meta" }, c.restart),
      c.restarts ? el("span", { class: "restarts" }, "↻ " + c.restarts) : null,
      c.sub ? el("span", { class: "meta" }, `${c.sub.strategy}, ${c.sub.restarts_in_period}/${c.sub.max_restarts} in ${c.sub.period}`) : null),
    c.sub ? sup(c.sub) : null)));
  box.replaceChildren(el("ul", {}, doc.trees.map((t) => el("li", { data: { supervisor: t.name } },
    el("span", { class: "node" },
      el("span", { class: "dot" }),
      el("span", { class: "sup" }, t.name),
      el("span", { class: "meta" }, `${t.strategy}, ${t.restarts_in_period}/${t.max_restarts} restarts in ${t.period}`)),
    sup(t)))));
}

// ---- network

function renderConnections(doc) {
  $("#router").textContent = doc.router ? "router " + short(doc.router) : "";
  $("#router").title = doc.router || "";
  const tbody = el("tbody");
  for (const c of doc.connections) {
    const s = c.stats || {};
    tbody.append(el("tr", { data: { peer: c.peer } },
      el("td", { class: "mono", title: c.peer }, short(c.peer)),
      el("td", { class: "mono" }, c.remote || "–"),
      el("td", {}, c.auth || "–"),
      el("td", { title: c.up_since || "" }, c.up_since ? since(c.up_since) : "–"),
      el("td", { class: "num" }, fmtInt(s.frames_in)),
      el("td", { class: "num" }, fmtInt(s.frames_out)),
      el("td", { class: "num" }, fmtBytes(s.bytes_in)),
      el("td", { class: "num" }, fmtBytes(s.bytes_out)),
      el("td", { class: "num" }, fmtBytes(c.queue_bytes)),
    ));
  }
  if (!doc.connections.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "dim" }, "no connections")));
  $("#connections tbody").replaceWith(tbody);
  $("#sum-connections").textContent = fmtInt(doc.connections.length);
  const peers = doc.peers.map((p) => el("div", { class: "peer", data: { router: p.router } },
    el("span", { class: "mono", title: p.router }, short(p.router)), " ",
    el("span", { class: "dim" }, `${p.engines.length} engine${p.engines.length === 1 ? "" : "s"}`),
    el("div", { class: "engines mono" }, p.engines.map((e) => el("span", { title: e }, short(e))))));
  $("#peers").replaceChildren(...(peers.length ? peers : [el("p", { class: "dim" }, "no peers")]));
}

// renderMembers shows the cluster's members; the panel stays hidden when
// the node is not in a cluster.
function renderMembers(doc) {
  $("#members-panel").hidden = !doc.cluster;
  if (!doc.cluster) return;
  const others = doc.members.filter((m) => !m.self);
  $("#members-count").textContent = `${doc.members.length}, ${others.filter((m) => m.connected).length} of ${others.length} others connected`;
  const tbody = el("tbody");
  for (const m of doc.members) {
    tbody.append(el("tr", { data: { router: m.router }, class: m.self || m.connected ? null : "err" },
      el("td", {}, m.node),
      el("td", { class: "mono", title: m.router }, short(m.router)),
      el("td", { class: "mono" }, m.gossip || "–"),
      el("td", { class: "mono" }, m.endpoints[0] || m.remote || "–"),
      el("td", {}, m.self ? "this node" : m.connected ? "yes" : "no"),
      el("td", { title: m.cert_expires || "" }, m.cert_expires ? new Date(m.cert_expires).toLocaleString() : "–"),
    ));
  }
  $("#members tbody").replaceWith(tbody);
  const st = doc.stats;
  const refused = Object.entries(st.refused).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  $("#members-stats").textContent = `admitted ${fmtInt(st.admitted)} · refused ${refused.length ? refused.join(", ") : "0"}` +
    ` · gossip announcements refused ${fmtInt(st.refused_alive)} · mesh connects ${fmtInt(st.mesh_connects)}, disconnects ${fmtInt(st.mesh_disconnects)}`;
}

function renderStats(doc) {
  $("#system").textContent = doc.system || "";
  const procs = doc.processes || {};
  $("#sum-processes").textContent = fmtInt(procs.total);
  $("#sum-mailbox").textContent = fmtInt(doc.mailboxes.total);
  $("#sum-maxmailbox").textContent = fmtInt(doc.mailboxes.max);
  $("#sum-maxwho").textContent = doc.mailboxes.max ? (doc.mailboxes.max_child || short(doc.mailboxes.max_name || doc.mailboxes.max_pid)) : "";
  $("#sum-restarts").textContent = fmtInt(doc.restarts);
  $("#sum-delivered").textContent = doc.transport ? fmtInt(doc.transport.delivered) : "–";
  const drops = Object.entries(doc.drops || {}).sort(([a], [b]) => a.localeCompare(b));
  $("#sum-dropped").textContent = fmtInt(drops.reduce((n, [, v]) => n + v, 0));
  // Causes with drops first, each on its row; the causes at zero folded.
  const row = ([cause, n]) => el("tr", { data: { cause } }, el("td", { class: "mono" }, cause), el("td", { class: "num" + (n ? " nonzero" : "") }, fmtInt(n)));
  const hit = drops.filter(([, n]) => n > 0), zero = drops.filter(([, n]) => n === 0);
  const box = el("div", { id: "drops" });
  if (!drops.length) box.append(el("p", { class: "dim" }, "no transport"));
  if (hit.length) box.append(el("table", {}, el("tbody", {}, hit.map(row))));
  else if (drops.length) box.append(el("p", { class: "ok" }, "nothing dropped"));
  if (zero.length) {
    const open = $("#drops details") ? $("#drops details").open : false;
    box.append(el("details", { open }, el("summary", {}, `${zero.length} causes at 0`), el("table", { class: "zero" }, el("tbody", {}, zero.map(row)))));
  }
  $("#drops").replaceWith(box);
  const ct = el("tbody");
  for (const [k, n] of Object.entries(doc.transport || {}).filter(([k]) => !k.startsWith("dropped_")).sort(([a], [b]) => a.localeCompare(b))) {
    ct.append(el("tr", {}, el("td", { class: "mono" }, k), el("td", { class: "num" }, fmtInt(n))));
  }
  $("#counters tbody").replaceWith(ct);
}

// ---- history: the last minute or so of a few figures, drawn as sparklines

const history = { at: [], queued: [], delivered: [] };
const historyLen = 60;

function remember(stats) {
  const at = Date.parse(stats.time) || Date.now();
  history.at.push(at);
  history.queued.push(stats.mailboxes.total);
  history.delivered.push(stats.transport ? stats.transport.delivered : 0);
  for (const k of Object.keys(history)) if (history[k].length > historyLen) history[k].shift();
}

// rates turns a counter's history into per-second rates.
function rates(values) {
  const out = [];
  for (let i = 1; i < values.length; i++) {
    const dt = (history.at[i] - history.at[i - 1]) / 1000;
    out.push(dt > 0 ? Math.max(0, values[i] - values[i - 1]) / dt : 0);
  }
  return out;
}

function spark(sel, values) {
  const svg = $(sel);
  if (values.length < 2) { svg.replaceChildren(); return; }
  const top = Math.max(...values, 1);
  const pts = values.map((v, i) => `${(i / (historyLen - 1)) * 100},${20 - (v / top) * 18 - 1}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts);
  svg.replaceChildren(line);
}

function renderHistory() {
  spark("#spark-mailbox", history.queued);
  const r = rates(history.delivered);
  spark("#spark-delivered", r);
  $("#sum-delivered-rate").textContent = r.length ? `${Math.round(r[r.length - 1]).toLocaleString("en-US")}/s` : "";
}

// ---- readiness: /readyz, as a load balancer sees it

async function refreshReady() {
  const r = await fetch("../readyz", { cache: "no-store" });
  const text = (await r.text()).trim();
  const badge = $("#ready");
  badge.textContent = r.ok ? "ready" : "not ready";
  badge.title = text;
  badge.className = "ready " + (r.ok ? "yes" : "no");
}

// ---- refresh loop

async function refresh() {
  clearTimeout(view.timer);
  try {
    // The server filters, orders and cuts the process list, so a node of
    // 100,000 processes sends the page only the first maxRows.
    const serverSort = { pid: "pid", name: "name", mailbox: "mailbox", handled: "handled" }[view.sort] || "mailbox";
    const procQuery = new URLSearchParams({ sort: serverSort, limit: maxRows });
    if (view.filter) procQuery.set("q", view.filter);
    const [stats, procs, tree, conns, members] = await Promise.all(
      ["stats", "processes?" + procQuery, "tree", "connections", "members"].map((p) => getJSON(api(p))));
    renderStats(stats);
    remember(stats);
    renderHistory();
    view.procs = procs.processes;
    view.total = procs.total;
    renderProcesses();
    renderTree(tree);
    renderConnections(conns);
    renderMembers(members);
    await refreshDetail();
    await refreshReady();
    view.refreshes++;
    document.body.dataset.refreshes = view.refreshes;
    $("#status").textContent = "updated " + new Date().toLocaleTimeString();
    $("#status").classList.remove("err");
  } catch (e) {
    $("#status").textContent = "error: " + e.message;
    $("#status").classList.add("err");
  }
  if (view.interval > 0) view.timer = setTimeout(refresh, view.interval);
}

for (const th of document.querySelectorAll("#processes th[data-sort]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.sort;
    if (view.sort === key) view.asc = !view.asc;
    else { view.sort = key; view.asc = !!ascByDefault[key]; }
    renderProcesses();
  });
}
$("#filter").addEventListener("input", (e) => { view.filter = e.target.value; renderProcesses(); });
$("#interval").addEventListener("change", (e) => { view.interval = +e.target.value; refresh(); });
const hashPID = decodeURIComponent(location.hash.slice(1));
if (hashPID) view.selected = hashPID;
refresh();
