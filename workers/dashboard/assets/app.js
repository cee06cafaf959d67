// app.js - the dashboard page: one EventSource (/events?unit=...) drives everything; no polling.
"use strict";

const SECTORS = {
  party: ["党建", "Party"], economy: ["经济", "Economy"], livelihood: ["民生", "Livelihood"],
  safety: ["平安", "Safety"], other: ["其他/分拨", "Other/triage"],
};
const EVENTS = {
  receive: "受理", deliver: "派发", requeue: "重派", sign: "签收", progress: "办理中",
  extend: "延期", extend_request: "申请延期", extend_deny: "延期驳回", "return": "退单",
  resolve: "办结", reopen: "重办", close: "结案", escalate: "上报", flag: "挂账",
  dispatch: "分拨", warn: "预警",
};
const LEVELS = { district: "区", town: "镇街", community: "村社区", grid: "网格", micro_grid: "微网格" };
const FEED_MAX = 40;

let source = null;
let unit = "";
let mapUnit = null;       // the unit whose map is shown (or being fetched)
let lastSummary = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function bi(zh, en) {          // Chinese label with its English subtitle
  const s = el("span", "", zh);
  s.appendChild(el("small", "", en));
  return s;
}
function age(ms) {
  if (!ms) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0");
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0");
  return Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h";
}
function rate(r) { return r === null || r === undefined ? "—" : (r * 100).toFixed(1) + "%"; }
function rateClass(r) { return r === null ? "" : r >= 0.98 ? "rate-good" : r >= 0.9 ? "rate-mid" : "rate-bad"; }
function hhmmss(ms) { return new Date(ms).toTimeString().slice(0, 8); }
function setText(id, v) { document.getElementById(id).textContent = v; }

// The map of a unit's children: outlines from /api/map.svg (fetched once per unit), their
// colours and numbers kept up to date from the summary rows.
function mapClass(open, overdue) {   // the same rule as geomap_class() in geomap.c
  if (open === 0 && overdue === 0) return "m-idle";
  if (overdue === 0) return "m-ok";
  return overdue * 4 < open ? "m-warn" : "m-bad";
}
function mapNote(zh, en) {
  const box = document.getElementById("map");
  const p = el("p", "nomap", zh);
  p.appendChild(el("small", "", en));
  box.replaceChildren(p);
  box.className = "empty";
}
function loadMap(code) {
  mapUnit = code;
  fetch("/api/map.svg" + (code ? "?unit=" + encodeURIComponent(code) : ""))
    .then(r => r.ok ? r.text() : Promise.reject(r.status))
    .then(text => {
      if (mapUnit !== code) return;
      const doc = new DOMParser().parseFromString(text, "image/svg+xml");
      if (doc.documentElement.nodeName !== "svg") throw new Error("not an SVG");
      const svg = document.importNode(doc.documentElement, true);
      svg.addEventListener("click", e => {
        const p = e.target.closest("path.drill");
        if (p) go(p.dataset.unit);
      });
      const box = document.getElementById("map");
      box.replaceChildren(svg);
      box.className = "";
      if (lastSummary) paintMap(lastSummary);
    })
    .catch(status => {
      if (mapUnit !== code) return;
      if (status === 404) mapNote("此级无边界数据", "no boundaries at this level");
      else {
        mapNote("地图暂不可用", "map not available yet");
        setTimeout(() => { if (mapUnit === code) loadMap(code); }, 5000);
      }
    });
}
function paintMap(s) {
  const box = document.getElementById("map");
  s.rows.forEach(r => {
    const code = CSS.escape(r.unit.code);
    const p = box.querySelector(`path[data-unit="${code}"]`);
    if (!p) return;
    const open = r.total.depth + r.total.in_flight, overdue = r.total.overdue;
    p.setAttribute("class", mapClass(open, overdue) + (r.drill ? " drill" : ""));
    p.dataset.open = open;
    p.dataset.overdue = overdue;
    const title = p.querySelector("title");
    if (title) title.textContent = `${r.unit.name} ${r.unit.code} · 在办 open ${open} · 超期 overdue ${overdue}`;
    const c = box.querySelector(`text[data-unit="${code}"] tspan.c`);
    if (c) c.textContent = `${open} / ${overdue}`;
  });
}

function go(code) { location.hash = code ? "#u=" + encodeURIComponent(code) : ""; }

function connect() {
  const m = /^#u=([^&]+)$/.exec(location.hash);
  unit = m ? decodeURIComponent(m[1]) : "";
  if (source) source.close();
  document.getElementById("feed").textContent = "";
  lastSummary = null;
  if (mapUnit !== unit) loadMap(unit);
  source = new EventSource("/events" + (unit ? "?unit=" + encodeURIComponent(unit) : ""));
  source.addEventListener("summary", e => render(JSON.parse(e.data)));
  source.addEventListener("feed", e => feed(JSON.parse(e.data)));
  source.onopen = () => conn(true);
  source.onerror = () => conn(false);
}
function conn(ok) {
  const c = document.getElementById("conn");
  c.className = "pill " + (ok ? "ok" : "bad");
  c.textContent = "";
  c.appendChild(bi(ok ? "实时" : "重连中", ok ? "live" : "reconnecting"));
}

function cell(c, total) {
  const td = el("td", "cell" + (total ? " tot" : ""));
  const q = el("div", "q");
  const dep = el("span", "", String(c.depth)); dep.dataset.k = "depth";
  const inf = el("span", "", String(c.in_flight)); inf.dataset.k = "in_flight";
  const ovd = el("span", c.overdue ? "over" : "", String(c.overdue)); ovd.dataset.k = "overdue";
  q.append(dep, " / ", inf, " / ", ovd);
  const d = el("div", "d");
  const rec = el("span", "", String(c.received)); rec.dataset.k = "received";
  const res = el("span", "", String(c.resolved)); res.dataset.k = "resolved";
  const rt = el("span", rateClass(c.on_time_rate), rate(c.on_time_rate)); rt.dataset.k = "on_time_rate";
  d.append(rec, " / ", res, " / ", rt);
  const o = el("div", "d", age(c.oldest_age_ms)); o.dataset.k = "oldest";
  td.append(q, d, o);
  return td;
}

function row(r, sectors, self) {
  const tr = el("tr", self ? "self" : r.drill ? "drill" : "");
  tr.dataset.unit = r.unit.code;
  const name = el("td", "name", r.unit.name);
  name.appendChild(el("span", "code", r.unit.code + " · " + (LEVELS[r.unit.level] || r.unit.level)));
  tr.appendChild(name);
  sectors.forEach((s, i) => tr.appendChild(cell(r.sectors[i], false)));
  tr.appendChild(cell(r.total, true));
  if (!self && r.drill) tr.addEventListener("click", () => go(r.unit.code));
  return tr;
}

function render(s) {
  lastSummary = s;
  paintMap(s);
  const head = document.getElementById("board-head");
  head.textContent = "";
  const h0 = el("th"); h0.appendChild(bi("单位", "Unit")); head.appendChild(h0);
  s.sectors.forEach(k => { const th = el("th"); th.appendChild(bi(SECTORS[k][0], SECTORS[k][1])); head.appendChild(th); });
  const ht = el("th"); ht.appendChild(bi("合计", "Total")); head.appendChild(ht);

  const body = document.getElementById("board-body");
  body.textContent = "";
  body.appendChild(row(s.self, s.sectors, true));
  s.rows.forEach(r => body.appendChild(row(r, s.sectors, false)));

  const t = s.self.total;
  setText("unit-name", s.self.unit.name);
  setText("kpi-received", t.received);
  setText("kpi-resolved", t.resolved);
  setText("kpi-ontime", rate(t.on_time_rate));
  setText("kpi-depth", t.depth);
  setText("kpi-inflight", t.in_flight);
  setText("kpi-overdue", t.overdue);
  setText("kpi-oldest", age(t.oldest_age_ms));
  setText("kpi-open", s.broker.seen ? s.broker.open_incidents : "—");
  const db = document.getElementById("db");
  db.className = "pill " + (s.broker.seen && s.broker.db_up ? "ok" : "bad");
  db.textContent = "";
  db.appendChild(bi(s.broker.seen && s.broker.db_up ? "数据库正常" : "数据库异常", "database"));
  // a city: one pill per shard, its broker up or down and its database
  const shards = document.getElementById("shards");
  shards.textContent = "";
  (s.broker.shards || []).forEach((sh) => {
    const ok = sh.up && sh.db_up;
    const p = el("span", "pill " + (ok ? "ok" : "bad"), sh.name + " ");
    p.dataset.shard = sh.name;
    p.dataset.up = sh.up ? "1" : "0";
    p.appendChild(bi(!sh.up ? "中断" : sh.db_up ? "正常" : "数据库异常",
                     !sh.up ? "down" : sh.db_up ? "up" : "database down"));
    shards.appendChild(p);
  });

  const nav = document.getElementById("path");
  nav.textContent = "";
  s.path.forEach((p, i) => {
    if (i) nav.appendChild(el("span", "sep", "›"));
    const a = el("a", "", p.name);
    a.dataset.unit = p.code;
    a.addEventListener("click", () => go(p.level === "district" ? "" : p.code));
    nav.appendChild(a);
  });
}

function feed(items) {
  const ol = document.getElementById("feed");
  items.forEach(it => {
    let cls = it.type, text;
    if (it.type === "transition") {
      text = (EVENTS[it.event] || it.event) + " " + it.event + " #" + it.incident_id + " " +
             (it.unit_name || it.unit || "分拨 triage") + " → " + (it.queue || "");
      if (it.late) cls += " late";
    } else if (it.type === "warn" || it.type === "breach") {
      text = (it.type === "warn" ? "临期预警 SLA warning " : "超期上报 SLA breach ") +
             (it.event === "sign" ? "签收 sign" : "办结 resolve") + " #" + it.incident_id + " " +
             (it.unit_name || "") + " " + (it.queue || "");
    } else {
      text = "告警 alarm " + it.event + " (" + it.severity + ") " + it.message;
    }
    const li = el("li", cls);
    li.appendChild(el("span", "t", hhmmss(it.at)));
    li.appendChild(document.createTextNode(text));
    ol.insertBefore(li, ol.firstChild);
  });
  while (ol.children.length > FEED_MAX) ol.removeChild(ol.lastChild);
}

setInterval(() => setText("clock", new Date().toTimeString().slice(0, 8)), 1000);  // the wall clock only
window.addEventListener("hashchange", connect);
connect();
