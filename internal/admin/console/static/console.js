// Gatehouse web console: polls the admin API and renders with plain DOM
// calls (textContent only: nothing from the API is parsed as HTML) and
// uPlot for the charts.
"use strict";
(function () {
  const POLL_MS = 2000;
  const API = "/api/v1";
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("gatehouse-admin-token") || "";

  async function api(path, opts) {
    const headers = Object.assign({}, (opts && opts.headers) || {});
    if (token) headers["Authorization"] = "Bearer " + token;
    const resp = await fetch(API + path, Object.assign({}, opts, { headers }));
    if (resp.status === 401) {
      $("login").hidden = false;
      throw new Error("the admin API needs the admin token");
    }
    if (!resp.ok && resp.status !== 404) throw new Error(path + ": HTTP " + resp.status);
    return resp.json();
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(tbody, cells) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.appendChild(c instanceof Node ? wrapTd(c) : el("td", c));
    tbody.appendChild(tr);
    return tr;
  }
  function wrapTd(node) { const td = el("td"); td.appendChild(node); return td; }
  function fill(tableId, rows, render) {
    const tbody = $(tableId).querySelector("tbody");
    tbody.replaceChildren();
    for (const r of rows) render(tbody, r);
    $(tableId).dataset.rows = String(rows.length);
  }
  const time = (t) => (t ? new Date(t).toLocaleTimeString() : "");

  // Charts.
  const palette = ["#c0392b", "#d68910", "#7d3c98", "#2471a3", "#17a589", "#839192", "#ba4a00", "#1f618d"];
  let rateChart = null, denialChart = null, denialCodes = "";
  function width(id) { return Math.max(320, $(id).clientWidth - 10); }
  function makeChart(id, series) {
    return new uPlot({
      width: width(id), height: 220,
      scales: { x: { time: true } },
      series: [{}].concat(series),
      axes: [{}, { label: "per second" }],
    }, [[]].concat(series.map(() => [])), $(id));
  }
  function countUpdate(id, n) {
    const d = $(id).dataset;
    d.updates = String(Number(d.updates || 0) + 1);
    d.points = String(n);
  }
  function drawStats(s) {
    const t = s.times;
    if (!rateChart) {
      rateChart = makeChart("chart-rate", [
        { label: "requests", stroke: "#2471a3", width: 2 },
        { label: "denied", stroke: "#c0392b", width: 2 },
        { label: "errors", stroke: "#d68910", width: 1 },
      ]);
    }
    rateChart.setData([t, s.requests, s.denied, s.errors]);
    countUpdate("chart-rate", t.length);
    const codes = Object.keys(s.denials_by_code || {}).sort();
    if (!denialChart || codes.join(",") !== denialCodes) {
      if (denialChart) denialChart.destroy();
      denialCodes = codes.join(",");
      denialChart = makeChart("chart-denials", codes.map((c, i) => ({ label: c, stroke: palette[i % palette.length], width: 2 })));
    }
    denialChart.setData([t].concat(codes.map((c) => s.denials_by_code[c])));
    countUpdate("chart-denials", t.length);
    const byCode = Object.entries(s.total_by_code || {}).sort((a, b) => b[1] - a[1]).map(([c, n]) => c + " " + n).join(", ");
    $("totals").textContent = s.total_requests + " requests, " + s.total_denied + " denied since start" + (byCode ? " (" + byCode + ")" : "");
  }

  async function refresh() {
    try {
      const [stats, denials, consumers] = await Promise.all([
        api("/stats"), api("/decisions?decision=deny&limit=25"), api("/consumers"),
      ]);
      drawStats(stats);
      fill("denials", denials.decisions, (tb, d) => {
        const b = el("button", "explain");
        b.dataset.requestId = d.request_id;
        b.addEventListener("click", () => explain(d.request_id));
        row(tb, [time(d.time), d.route || "(none)", d.policy, el("span", d.code, "deny"), d.status, b]);
      });
      consumers.consumers.sort((a, b) => b.requests - a.requests);
      fill("consumers", consumers.consumers.slice(0, 20), (tb, c) => {
        const usage = (c.usage || []).map((u) => u.route + "/" + u.policy + (u.name ? ":" + u.name : "") + " " + u.used + "/" + u.limit + " " + u.unit).join("; ");
        row(tb, [c.name, c.sources.join(", "), c.requests, c.denied, c.rate_limited, usage]);
      });
      await refreshAudit();
      $("status").textContent = "live, updated " + new Date().toLocaleTimeString();
    } catch (e) {
      $("status").textContent = String(e.message || e);
    }
  }

  async function refreshAudit() {
    const q = new URLSearchParams({ limit: "50" });
    for (const [k, id] of [["kind", "audit-kind"], ["route", "audit-route"], ["code", "audit-code"]]) {
      const v = $(id).value.trim();
      if (v) q.set(k, v);
    }
    const a = await api("/audit?" + q);
    fill("audit", a.events, (tb, e) => {
      row(tb, [time(e.time), el("span", e.kind, e.kind === "denial" || e.kind === "auth_failure" ? "deny" : ""), e.principal || e.client_id || "",
        e.client_ip || "", e.route || "", e.policy || "", e.code || "", e.detail || e.action || ""]);
    });
  }

  async function loadRoutes() {
    const r = await api("/routes");
    fill("routes", r.routes, (tb, rt) => {
      const match = [(rt.methods || []).join(",") || "any", (rt.hosts || []).join(",") || "*", rt.path || rt.path_prefix + "/…"].join(" ");
      row(tb, [rt.name + (rt.protocol !== "rest" ? " (" + rt.protocol + ")" : ""), el("span", match, "mono"), el("span", rt.upstream, "mono"), rt.policies.join(" → ")]);
    });
  }

  async function explain(id) {
    $("explain-id").value = id;
    const out = $("explain");
    out.replaceChildren(el("p", "loading…", "muted"));
    const d = await api("/decisions/" + encodeURIComponent(id));
    out.replaceChildren();
    if (!d.request_id) { out.appendChild(el("p", "no decision is known for " + id, "muted")); return; }
    const dl = el("dl");
    const add = (k, v, cls) => { if (v === undefined || v === "" || v === null) return; dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v, cls)); };
    add("request", d.request_id, "mono");
    add("time", d.time && new Date(d.time).toLocaleString());
    add("request line", [d.method, d.host, d.path].filter(Boolean).join(" "), "mono");
    add("route", d.route || "(no route matched)");
    add("client", [d.client_ip, d.principal && "principal " + d.principal].filter(Boolean).join(", "));
    add("decision", d.decision + (d.status ? " (" + d.status + ")" : ""), d.decision);
    add("code", d.code);
    add("by policy", d.policy);
    add("told the client", d.detail);
    add("internal cause", d.cause, "mono");
    add("took", d.duration_ms !== undefined && d.source === "memory" ? d.duration_ms.toFixed(3) + " ms" : "");
    add("source", d.source);
    out.appendChild(dl);
    if (d.policies && d.policies.length) {
      const t = el("table");
      t.id = "explain-policies";
      const head = el("tr");
      for (const h of ["#", "policy", "verdict", "time"]) head.appendChild(el("th", h));
      t.appendChild(el("thead")).appendChild(head);
      const tb = t.appendChild(el("tbody"));
      d.policies.forEach((p, i) => row(tb, [i + 1, p.policy, el("span", p.verdict, p.verdict), p.duration_ms.toFixed(3) + " ms"]));
      out.appendChild(t);
    }
    for (const e of d.events || []) out.appendChild(el("p", "audit: " + e.kind + " " + (e.code || "") + " " + (e.detail || ""), "muted"));
    out.dataset.requestId = d.request_id;
  }

  function init() {
    for (const k of ["denial", "auth_failure", "token_issue", "token_revoke", "sts_issue", "sts_cancel", "config_reload", "admin_action", "key_rotation"]) {
      const o = el("option", k); o.value = k; $("audit-kind").appendChild(o);
    }
    $("audit-filter").addEventListener("submit", (e) => { e.preventDefault(); refreshAudit().catch(() => {}); });
    $("explain-form").addEventListener("submit", (e) => { e.preventDefault(); const id = $("explain-id").value.trim(); if (id) explain(id).catch((x) => { $("explain").textContent = String(x.message || x); }); });
    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("token").value.trim();
      sessionStorage.setItem("gatehouse-admin-token", token);
      $("login").hidden = true;
      loadRoutes().catch(() => {});
      refresh();
    });
    window.addEventListener("resize", () => {
      if (rateChart) rateChart.setSize({ width: width("chart-rate"), height: 220 });
      if (denialChart) denialChart.setSize({ width: width("chart-denials"), height: 220 });
    });
    loadRoutes().catch(() => {});
    refresh();
    setInterval(refresh, POLL_MS);
    const id = new URLSearchParams(location.search).get("explain");
    if (id) explain(id).catch(() => {});
  }
  document.addEventListener("DOMContentLoaded", init);
})();
