// Supervisor wall board. No build step, no dependencies.
//
// Built to stay smooth with 500 live calls at 10+ events a second: socket messages only queue
// events; one requestAnimationFrame pass applies them, patches the changed cells of the changed
// rows (never a full re-render), and re-sorts at most once a second so rows do not jump about
// while someone is reading them. Off-screen rows skip layout and paint (content-visibility).
//
// URL parameters: mode=wall|dense, sort=<column>, as=<supervisor name for acknowledgements>,
// server=<ws(s):// base, default this page's server>.
(() => {
  "use strict";
  const params = new URLSearchParams(location.search);
  const SERVER = (params.get("server") || location.origin).replace(/^http/, "ws").replace(/\/+$/, "");
  const HTTP = SERVER.replace(/^ws/, "http");
  const RESORT_MS = 1000;
  const MAX_FEED = 300;
  const MAX_SPARK = 20;
  const MAX_LINES = 60;
  const QUEUE_STALE_MS = 60000;
  const UPSET = -0.3;
  const TIER_RANK = { platinum: 4, gold: 3, silver: 2, bronze: 1 };
  const SEVERITY = { high: 0, medium: 1, low: 2 };
  const TREND = { improving: "↗", declining: "↘", stable: "→" };
  const KIND = { negative_sentiment: "Very negative customer", sentiment_declining: "Sentiment declining", compliance_breach: "Compliance breach", emerging_issue: "Emerging issue" };
  const PREFS = "callassist.board";

  const $ = (id) => document.getElementById(id);
  const ui = {
    rows: $("rows"), table: $("table"), empty: $("empty"), filtered: $("filtered"), conn: $("conn"), connText: $("conn-text"),
    kCalls: $("k-calls"), kAlerts: $("k-alerts"), kUpset: $("k-upset"), filter: $("filter"), fIntent: $("f-intent"),
    fTier: $("f-tier"), fAlerts: $("f-alerts"), fUpset: $("f-upset"), alerts: $("alerts"), alertsOpen: $("alerts-open"),
    alertsEmpty: $("alerts-empty"), feedOpen: $("feed-open"), announce: $("announce"), drill: $("drill"),
    drillTitle: $("drill-title"), drillMeta: $("drill-meta"), drillState: $("drill-state"), drillSuggestion: $("drill-suggestion"),
    drillArticles: $("drill-articles"), drillCompliance: $("drill-compliance"), drillLines: $("drill-lines"),
    queue: [$("queue"), $("queue-wait"), $("queue-sl")], qWaiting: $("q-waiting"), qLongest: $("q-longest"), qSl: $("q-sl"),
    help: $("help"),
  };

  const clock = (t) => {
    const s = Math.max(0, Math.floor(t));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60));
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  };
  const words = (label) => (label || "").replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  const signed = (v) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
  const wallTime = (unix) => new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const svg = (tag) => document.createElementNS("http://www.w3.org/2000/svg", tag);

  // ------------------------------------------------------------------ state

  const calls = new Map(); // call_id -> Row
  const alerts = new Map(); // alert_id -> FeedItem
  const intents = new Set();
  const tiers = new Set();
  const queueEvents = [];
  let sinceFrame = 0; // events applied to the model since the last frame
  let frame = 0;
  let sortKey = params.get("sort") || "attention";
  let sortDir = 0; // set below from the column's natural direction
  let orderDirty = true;
  let lastSort = 0;
  let sortTimer = 0;
  let watched = null; // call id open in the drill-down
  let drillReturn = null;
  let socket = null;
  let attempt = 0;
  let lastHeard = 0;
  let queueAt = 0;
  let kpiDirty = true;
  let feedDirty = false;
  let renderDrillSoon = false;
  // Read by the browser tests and bench/ui_board.py: events applied, frames rendered, and the
  // duration of the last 2,000 render passes (a fixed ring, so it costs nothing to keep).
  const stats = { events: 0, frames: 0, maxBatch: 0, flushMs: new Float64Array(2000), flushes: 0 };

  const prefs = (() => { try { return JSON.parse(localStorage.getItem(PREFS) || "{}"); } catch { return {}; } })();
  const savePrefs = () => { try { localStorage.setItem(PREFS, JSON.stringify(prefs)); } catch { /* private mode */ } };
  const supervisor = params.get("as") || prefs.as || "supervisor";
  if (params.get("as")) { prefs.as = params.get("as"); savePrefs(); }

  // ------------------------------------------------------------------ rows

  function makeRow(id) {
    const row = el("div", "row");
    row.setAttribute("role", "row");
    row.tabIndex = -1;
    row.dataset.callId = id;
    const cells = {};
    for (const name of ["agent", "customer", "tier", "team", "duration", "intent", "sentiment", "alerts"]) {
      const cell = el("div", `c-${name}`);
      cell.setAttribute("role", "cell");
      row.append(cell);
      cells[name] = cell;
    }
    const spark = svg("svg");
    spark.setAttribute("viewBox", "0 0 100 24");
    spark.setAttribute("preserveAspectRatio", "none");
    spark.setAttribute("aria-hidden", "true");
    spark.setAttribute("class", "spark");
    const zero = svg("line");
    for (const [k, v] of Object.entries({ x1: 0, y1: 12, x2: 100, y2: 12 })) zero.setAttribute(k, v);
    const line = svg("polyline");
    spark.append(zero, line);
    const value = el("span", "s-value");
    const trend = el("span", "s-trend");
    cells.sentiment.append(spark, value, trend);
    const badge = el("span", "badge");
    cells.alerts.append(badge);
    return {
      id, el: row, cells, line, value, trend, badge,
      call: null, history: [], receivedAt: 0, callTime: 0, openAlerts: 0, flashUntil: 0,
      shown: {}, haystack: "", visible: true, sortCache: null,
    };
  }

  function upsert(summary) {
    let row = calls.get(summary.call_id);
    if (!row) {
      row = makeRow(summary.call_id);
      calls.set(summary.call_id, row);
      orderDirty = true;
    }
    const before = row.call;
    row.call = summary;
    row.callTime = summary.call_time;
    row.receivedAt = performance.now();
    if (!before || before.sentiment !== summary.sentiment) {
      row.history.push(summary.sentiment);
      if (row.history.length > MAX_SPARK) row.history.shift();
    }
    const customer = summary.customer || {};
    row.haystack = [summary.agent_id, customer.name, customer.id, customer.tier, summary.intent, summary.team, summary.call_id]
      .filter(Boolean).join(" ").toLowerCase().replace(/_/g, " ");
    if (summary.intent && summary.intent !== "unknown" && !intents.has(summary.intent)) { intents.add(summary.intent); addOption(ui.fIntent, summary.intent, words(summary.intent)); }
    if (customer.tier && !tiers.has(customer.tier)) { tiers.add(customer.tier); addOption(ui.fTier, customer.tier, words(customer.tier)); }
    row.sortCache = null;
    orderDirty = true;
    row.dirty = true;
    kpiDirty = true;
    return row;
  }

  function addOption(select, value, label) {
    const option = el("option", "", label);
    option.value = value;
    const after = [...select.options].slice(1).find((o) => o.textContent.localeCompare(label) > 0);
    select.insertBefore(option, after || null);
  }

  function removeCall(id) {
    const row = calls.get(id);
    if (!row) return;
    row.el.remove();
    calls.delete(id);
    for (const item of alerts.values()) if (item.alert.call_id === id) { item.dirty = true; feedDirty = true; }
    if (watched === id) setDrillState("The call has ended.");
    kpiDirty = feedDirty = true;
  }

  function liveTime(row) { return row.callTime + (performance.now() - row.receivedAt) / 1000; }

  function patch(row) {
    const c = row.call;
    const shown = row.shown;
    const customer = c.customer || {};
    const put = (name, text) => { if (shown[name] !== text) { shown[name] = text; row.cells[name].textContent = text; } };
    put("agent", c.agent_id);
    put("customer", customer.name || customer.id || "—");
    put("tier", customer.tier ? words(customer.tier) : "—");
    if (shown.tierKey !== (customer.tier || "")) { shown.tierKey = customer.tier || ""; row.cells.tier.dataset.tier = shown.tierKey; }
    put("team", c.team || "—");
    put("duration", clock(liveTime(row)));
    put("intent", c.intent && c.intent !== "unknown" ? `${words(c.intent)} ${Math.round(c.intent_confidence * 100)}%` : "—");
    const value = signed(c.sentiment);
    if (shown.value !== value) { shown.value = value; row.value.textContent = value; }
    const trend = `${TREND[c.sentiment_trend] || ""} ${c.sentiment_trend}`;
    if (shown.trend !== trend) { shown.trend = trend; row.trend.textContent = trend; row.el.dataset.trend = c.sentiment_trend; }
    const mood = c.sentiment <= UPSET ? "negative" : c.sentiment >= 0.3 ? "positive" : "neutral";
    if (shown.mood !== mood) { shown.mood = mood; row.el.dataset.mood = mood; }
    const points = sparkPoints(row.history);
    if (shown.points !== points) { shown.points = points; row.line.setAttribute("points", points); }
    const badge = row.openAlerts ? `${row.openAlerts} open` : c.alert_count ? String(c.alert_count) : "—";
    if (shown.badge !== badge) {
      shown.badge = badge;
      row.badge.textContent = badge;
      row.badge.title = `${c.alert_count} alerts in this call, ${row.openAlerts} not acknowledged`;
      row.el.dataset.alerts = row.openAlerts ? "open" : c.alert_count ? "acked" : "none";
    }
    const flashing = row.flashUntil > performance.now();
    if (shown.flashing !== flashing) { shown.flashing = flashing; row.el.classList.toggle("flash", flashing); }
    row.dirty = false;
  }

  function sparkPoints(values) {
    if (!values.length) return "";
    if (values.length === 1) return `0,${(12 - values[0] * 11).toFixed(1)} 100,${(12 - values[0] * 11).toFixed(1)}`;
    const step = 100 / (values.length - 1);
    return values.map((v, i) => `${(i * step).toFixed(1)},${(12 - v * 11).toFixed(1)}`).join(" ");
  }

  // ------------------------------------------------------------------ filter and sort

  function matches(row) {
    const c = row.call;
    const q = ui.filter.value.trim().toLowerCase();
    if (q && !q.split(/\s+/).every((term) => row.haystack.includes(term))) return false;
    if (ui.fIntent.value && c.intent !== ui.fIntent.value) return false;
    if (ui.fTier.value && (c.customer || {}).tier !== ui.fTier.value) return false;
    if (ui.fAlerts.checked && !row.openAlerts) return false;
    if (ui.fUpset.checked && !(c.sentiment <= UPSET || c.sentiment_trend === "declining")) return false;
    return true;
  }

  function sortValue(row) {
    const c = row.call;
    const customer = c.customer || {};
    switch (sortKey) {
      case "agent": return c.agent_id;
      case "customer": return (customer.name || customer.id || "").toLowerCase();
      case "tier": return TIER_RANK[customer.tier] || 0;
      case "team": return c.team || "";
      case "duration": return -c.started_at; // descending = longest first; ticking never reorders
      case "intent": return c.intent || "";
      case "sentiment": return c.sentiment; // ascending = most negative first
      default: // attention: open alerts, then how upset, then all alerts, then longest
        return [row.openAlerts, c.sentiment_trend === "declining" ? 1 : 0, -c.sentiment, c.alert_count, -c.started_at];
    }
  }

  function compare(a, b) {
    const x = a.sortCache ?? (a.sortCache = sortValue(a));
    const y = b.sortCache ?? (b.sortCache = sortValue(b));
    let order = 0;
    if (Array.isArray(x)) { for (let i = 0; i < x.length && !order; i++) order = x[i] < y[i] ? -1 : x[i] > y[i] ? 1 : 0; }
    else if (typeof x === "string") order = x.localeCompare(y);
    else order = x < y ? -1 : x > y ? 1 : 0;
    return order * sortDir || a.id.localeCompare(b.id);
  }

  /** Indexes (into `seq`) of a longest strictly increasing subsequence, O(n log n). */
  function longestIncreasing(seq) {
    const tails = [];
    const prev = new Int32Array(seq.length);
    for (let i = 0; i < seq.length; i++) {
      let lo = 0;
      let hi = tails.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (seq[tails[mid]] < seq[i]) lo = mid + 1; else hi = mid; }
      prev[i] = lo > 0 ? tails[lo - 1] : -1;
      tails[lo] = i;
    }
    const keep = new Set();
    for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) keep.add(i);
    return keep;
  }

  /** Put rows in order with the fewest DOM moves: rows that keep their relative order (a
   *  longest increasing run of their current positions) stay put; only the others move. */
  function reorder() {
    const ordered = [...calls.values()].sort(compare);
    const position = new Map();
    let index = 0;
    for (let node = ui.rows.firstElementChild; node; node = node.nextElementSibling) position.set(node, index++);
    const current = ordered.map((row) => position.get(row.el) ?? -1);
    const stay = longestIncreasing(current);
    let next = null; // insert from the end backwards, so each anchor is already in place
    for (let i = ordered.length - 1; i >= 0; i--) {
      const node = ordered[i].el;
      if (!stay.has(i) || current[i] < 0) ui.rows.insertBefore(node, next);
      next = node;
    }
    ordered.forEach((row, i) => { const index = String(i + 2); if (row.el.getAttribute("aria-rowindex") !== index) row.el.setAttribute("aria-rowindex", index); });
    ui.table.setAttribute("aria-rowcount", String(ordered.length + 1));
    orderDirty = false;
    lastSort = performance.now();
  }

  function applyFilter(row) {
    const visible = matches(row);
    if (visible !== row.visible) { row.visible = visible; row.el.hidden = !visible; }
  }

  const defaultDir = (key) => (key === "attention" || key === "tier" || key === "duration" ? -1 : 1);

  /** Click on a header: sort by it, or flip the direction if it is already the sort. */
  function setSort(key) {
    if (sortKey === key) sortDir = -sortDir;
    else { sortKey = key; sortDir = defaultDir(key); }
    for (const row of calls.values()) row.sortCache = null;
    showSort();
    reorder();
  }

  function showSort() {
    for (const header of document.querySelectorAll("[role=columnheader]")) {
      const button = header.querySelector("button");
      header.setAttribute("aria-sort", button.dataset.sort === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  // ------------------------------------------------------------------ alert feed

  function addAlert(alert, ack) {
    let item = alerts.get(alert.alert_id);
    if (item) {
      if (ack && !item.ack) { item.ack = ack; item.dirty = true; feedDirty = true; }
      return item;
    }
    item = { alert, ack: ack || null, receivedAt: alert.received_at || Date.now() / 1000, el: null, dirty: true, pending: false };
    alerts.set(alert.alert_id, item);
    feedDirty = true;
    kpiDirty = true;
    return item;
  }

  function renderAlert(item) {
    const a = item.alert;
    if (!item.el) {
      const li = el("li", "alert");
      li.dataset.alertId = a.alert_id;
      li.dataset.severity = a.severity;
      const head = el("div", "a-head");
      head.append(el("span", "sev", a.severity), el("span", "a-kind", KIND[a.kind] || words(a.kind)), el("time", "a-time"));
      const message = el("p", "a-msg", a.message);
      const meta = el("p", "a-meta");
      const actions = el("div", "a-actions");
      const ack = el("button", "ack", "Acknowledge");
      ack.type = "button";
      const view = el("button", "view ghost", "View call");
      view.type = "button";
      actions.append(ack, view);
      const acked = el("p", "a-acked");
      li.append(head, message, meta, actions, acked);
      item.el = li;
      item.parts = { time: head.querySelector(".a-time"), meta, ack, view, acked };
    }
    const row = a.call_id ? calls.get(a.call_id) : null;
    const customer = row ? row.call.customer || {} : {};
    if (!a.call_id) {
      // Not about one call (e.g. an emerging issue from analytics): no call time, nothing to view.
      setText(item.parts.time, wallTime(item.receivedAt));
      item.el.dataset.ended = "false";
      setText(item.parts.meta, [a.label, (a.top_terms || []).slice(0, 3).join(", ")].filter(Boolean).join(" · "));
    } else {
      setText(item.parts.time, `${wallTime(item.receivedAt)} · ${clock(a.timestamp)} into the call`);
      item.el.dataset.ended = row ? "false" : "true";
      setText(item.parts.meta, [a.agent_id, customer.name || customer.id || item.customer, row ? null : "call ended"].filter(Boolean).join(" · "));
    }
    const ended = !row;
    if (row) item.customer = customer.name || customer.id;
    item.el.dataset.acked = item.ack ? "true" : "false";
    item.parts.ack.hidden = !!item.ack;
    item.parts.ack.disabled = item.pending;
    item.parts.ack.setAttribute("aria-label", `Acknowledge: ${KIND[a.kind] || a.kind}${a.agent_id ? ", " + a.agent_id : ""}`);
    item.parts.view.hidden = ended;
    setText(item.parts.acked, item.ack ? `Acknowledged by ${item.ack.by} at ${wallTime(item.ack.at)}` : "");
    item.dirty = false;
  }

  function renderFeed() {
    // Newest first; with "open only", acknowledged alerts leave the list.
    let items = [...alerts.values()].sort((x, y) => y.receivedAt - x.receivedAt || (SEVERITY[x.alert.severity] ?? 3) - (SEVERITY[y.alert.severity] ?? 3));
    if (items.length > MAX_FEED) {
      for (const old of items.slice(MAX_FEED)) { if (old.el) old.el.remove(); alerts.delete(old.alert.alert_id); }
      items = items.slice(0, MAX_FEED);
    }
    const openOnly = ui.feedOpen.checked;
    let cursor = ui.alerts.firstElementChild;
    for (const item of items) {
      if (item.dirty || !item.el) renderAlert(item);
      const show = !(openOnly && item.ack);
      if (!show) { if (item.el.parentNode) { if (cursor === item.el) cursor = cursor.nextElementSibling; item.el.remove(); } continue; }
      if (item.el === cursor) { cursor = cursor.nextElementSibling; continue; }
      ui.alerts.insertBefore(item.el, cursor);
    }
    ui.alertsEmpty.hidden = ui.alerts.children.length > 0;
    feedDirty = false;
  }

  /** Unacknowledged alerts of live calls (an ended call's alerts stay in the feed, out of the count). */
  function recountOpen() {
    const open = new Map();
    for (const item of alerts.values()) {
      if (!item.ack && calls.has(item.alert.call_id)) open.set(item.alert.call_id, (open.get(item.alert.call_id) || 0) + 1);
    }
    for (const row of calls.values()) {
      const count = open.get(row.id) || 0;
      if (row.openAlerts !== count) { row.openAlerts = count; row.dirty = true; row.sortCache = null; orderDirty = true; }
    }
    let total = 0;
    for (const count of open.values()) total += count;
    return total;
  }

  async function acknowledge(item) {
    if (item.ack || item.pending) return;
    item.pending = true;
    item.dirty = true;
    schedule();
    try {
      const response = await fetch(`${HTTP}/v1/supervisor/alerts/${encodeURIComponent(item.alert.alert_id)}/ack`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ by: supervisor }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
      item.ack = { by: body.by, at: body.at };
    } catch (error) {
      announce(`Could not acknowledge: ${error.message}`);
    } finally {
      item.pending = false;
      item.dirty = true;
      feedDirty = true;
      kpiDirty = true;
      schedule();
    }
  }

  async function loadRecentAlerts() {
    try {
      const response = await fetch(`${HTTP}/v1/supervisor/alerts`);
      if (!response.ok) return;
      const body = await response.json();
      for (const alert of body.alerts) addAlert(alert, alert.ack);
      kpiDirty = feedDirty = true;
      schedule();
    } catch { /* the live feed still works without the backlog */ }
  }

  // ------------------------------------------------------------------ drill-down

  function openDrill(id, returnFocus) {
    if (watched && watched !== id) send({ type: "unwatch", call_id: watched });
    watched = id;
    drillReturn = returnFocus || document.activeElement;
    ui.drill.hidden = false;
    ui.drill.dataset.callId = id;
    ui.drillLines.textContent = "";
    ui.drillLines.dataset.count = "0";
    drillLines.clear();
    drillAssist = null;
    drillCompliance = new Map();
    setDrillState("");
    renderDrill();
    send({ type: "watch", call_id: id });
    ui.drill.focus();
  }

  function closeDrill() {
    if (!watched) return;
    send({ type: "unwatch", call_id: watched });
    watched = null;
    ui.drill.hidden = true;
    if (drillReturn && drillReturn.isConnected) drillReturn.focus();
  }

  const drillLines = new Map();
  let drillAssist = null;
  let drillCompliance = new Map();

  function setDrillState(text) { setText(ui.drillState, text); ui.drillState.hidden = !text; }

  function drillEvent(ev) {
    if (ev.type === "call_state") {
      for (const line of ev.transcript) drillLine(line);
      if (ev.last_assist) drillAssist = ev.last_assist;
      drillCompliance = new Map(ev.compliance_alerts.map((a) => [a.rule_id, a]));
    } else if (ev.type === "transcript") drillLine(ev);
    else if (ev.type === "assist") { drillAssist = ev; drillCompliance = new Map(ev.compliance_alerts.map((a) => [a.rule_id, a])); }
    else if (ev.type === "compliance") { if (ev.alert.resolved) drillCompliance.delete(ev.alert.rule_id); else drillCompliance.set(ev.alert.rule_id, ev.alert); }
    renderDrillSoon = true;
  }

  function drillLine(ev) {
    const key = ev.utterance_id ? `${ev.speaker}:${ev.utterance_id}` : ev.is_final ? `${ev.speaker}@${ev.timestamp}` : `${ev.speaker}:interim`;
    if (ev.is_final && !ev.utterance_id) drillLines.delete(`${ev.speaker}:interim`);
    const known = drillLines.get(key);
    if (known && known.final && !ev.is_final) return;
    drillLines.set(key, { speaker: ev.speaker, text: ev.text, final: ev.is_final });
    while (drillLines.size > MAX_LINES) drillLines.delete(drillLines.keys().next().value);
  }

  function renderDrill() {
    if (!watched) return;
    const row = calls.get(watched);
    const c = row ? row.call : null;
    const customer = c ? c.customer || {} : {};
    setText(ui.drillTitle, c ? `${customer.name || customer.id || "Caller"} · ${c.agent_id}` : watched);
    setText(ui.drillMeta, c ? [customer.tier && words(customer.tier), c.team, words(c.intent), `sentiment ${signed(c.sentiment)} ${c.sentiment_trend}`, `${c.alert_count} alerts`].filter(Boolean).join(" · ") : "");
    setText(ui.drillSuggestion, drillAssist ? drillAssist.suggested_action : "No suggestion yet.");
    const articles = drillAssist ? drillAssist.knowledge_articles.map((a) => `${a.title} (${Math.round(a.score * 100)}%)`) : [];
    syncList(ui.drillArticles, articles.map((text, i) => [String(i), text]));
    const compliance = [...drillCompliance.values()].sort((a, b) => (SEVERITY[a.severity] ?? 3) - (SEVERITY[b.severity] ?? 3));
    syncList(ui.drillCompliance, compliance.length ? compliance.map((a) => [a.rule_id, `${a.severity.toUpperCase()} · ${a.message}`]) : [["none", "No open compliance issues."]]);
    const list = ui.drillLines;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    syncList(list, [...drillLines.entries()].map(([key, line]) => [key, line.text, line]));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  /** Keyed list patching: reuse items, move only what moved. */
  function syncList(list, entries) {
    const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
    entries.forEach(([key, text, line], index) => {
      let li = existing.get(key);
      if (!li) {
        li = el("li");
        li.dataset.key = key;
        if (line) li.append(el("span", "who"), el("span", "text"));
      }
      existing.delete(key);
      if (line) {
        setText(li.children[0], line.speaker === "customer" ? "Customer" : "Agent");
        setText(li.children[1], text);
        li.dataset.speaker = line.speaker;
        li.classList.toggle("interim", !line.final);
      } else setText(li, text);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    for (const stale of existing.values()) stale.remove();
  }

  // ------------------------------------------------------------------ queue stats (routing)

  function renderQueue(ev) {
    queueAt = performance.now();
    ui.queue.forEach((node) => { node.hidden = false; node.dataset.stale = "false"; });
    const waiting = ev.waiting ?? ev.queued; // routing.queue calls it "queued"
    setText(ui.qWaiting, waiting != null ? String(waiting) : "—");
    setText(ui.qLongest, ev.longest_wait_s != null ? clock(ev.longest_wait_s) : "—");
    const sl = ev.service_level;
    setText(ui.qSl, sl == null ? "—" : `${Math.round(sl <= 1 ? sl * 100 : sl)}%`);
    ui.queue[0].dataset.level = waiting > 0 ? "busy" : "calm";
  }

  // ------------------------------------------------------------------ events

  function onEvent(ev) {
    stats.events += 1;
    sinceFrame += 1;
    switch (ev.type) {
      case "snapshot": {
        const live = new Set(ev.calls.map((c) => c.call_id));
        for (const id of [...calls.keys()]) if (!live.has(id)) removeCall(id);
        for (const call of ev.calls) upsert(call);
        break;
      }
      case "call_started":
      case "call_update":
        upsert(ev.call);
        if (ev.call.call_id === watched) renderDrillSoon = true;
        break;
      case "call_ended":
        removeCall(ev.call_id);
        break;
      case "alert": {
        const item = addAlert({ ...ev, received_at: Date.now() / 1000 }, null);
        const row = calls.get(ev.call_id);
        if (row) {
          row.flashUntil = performance.now() + 4000;
          row.dirty = true;
          setTimeout(() => { row.dirty = true; schedule(); }, 4100);
        }
        announce(`${ev.severity === "high" ? "High" : "New"} alert: ${KIND[ev.kind] || ev.kind}, ${ev.agent_id}. ${ev.message}`);
        item.dirty = true;
        break;
      }
      case "alert_ack": {
        const item = alerts.get(ev.alert_id);
        if (item && !item.ack) { item.ack = { by: ev.by, at: ev.at }; item.dirty = true; feedDirty = kpiDirty = true; }
        break;
      }
      case "queue_stats":
      case "routing.queue":
        queueEvents.push(ev);
        break;
      case "call_state":
      case "transcript":
      case "assist":
      case "compliance":
        if (ev.call_id === watched || (ev.call && ev.call.call_id === watched)) drillEvent(ev);
        break;
      default:
        break; // pong, error, and event types newer than this page
    }
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function flush() {
    const started = performance.now();
    render();
    stats.flushMs[stats.flushes++ % stats.flushMs.length] = performance.now() - started;
  }

  function render() {
    frame = 0;
    stats.frames += 1;
    stats.maxBatch = Math.max(stats.maxBatch, sinceFrame);
    sinceFrame = 0;
    if (queueEvents.length) { renderQueue(queueEvents[queueEvents.length - 1]); queueEvents.length = 0; }
    let openTotal = null;
    if (kpiDirty || feedDirty) openTotal = recountOpen();
    for (const row of calls.values()) {
      if (!row.dirty) continue;
      patch(row);
      applyFilter(row);
    }
    if (orderDirty) {
      const wait = RESORT_MS - (performance.now() - lastSort);
      if (wait <= 0 || ui.rows.childElementCount < calls.size) reorder();
      else if (!sortTimer) sortTimer = setTimeout(() => { sortTimer = 0; schedule(); }, wait);
    }
    if (feedDirty) renderFeed();
    else for (const item of alerts.values()) if (item.dirty && item.el) renderAlert(item);
    if (kpiDirty) renderKpis(openTotal ?? recountOpen());
    if (renderDrillSoon) { renderDrillSoon = false; renderDrill(); }
  }

  function renderKpis(openTotal) {
    let upset = 0;
    let visible = 0;
    for (const row of calls.values()) {
      if (row.call.sentiment <= UPSET) upset += 1;
      if (row.visible) visible += 1;
    }
    setText(ui.kCalls, String(calls.size));
    setText(ui.kAlerts, String(openTotal));
    setText(ui.kUpset, String(upset));
    ui.kAlerts.parentElement.dataset.level = openTotal ? "bad" : "ok";
    ui.kUpset.parentElement.dataset.level = upset ? "warn" : "ok";
    setText(ui.alertsOpen, openTotal ? `(${openTotal} open)` : "");
    document.title = openTotal ? `(${openTotal}) callassist · wall board` : "callassist · wall board";
    ui.empty.hidden = calls.size > 0;
    ui.filtered.hidden = !(calls.size > 0 && visible === 0);
    kpiDirty = false;
  }

  function announce(text) {
    ui.announce.textContent = "";
    setTimeout(() => { ui.announce.textContent = text; }, 50);
  }

  // ------------------------------------------------------------------ connection

  function send(payload) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
  }

  function setConn(state, text) {
    ui.conn.dataset.state = state;
    setText(ui.connText, text);
    document.body.dataset.conn = state;
  }

  function connect() {
    clearTimeout(connect.timer);
    setConn("connecting", "Connecting…");
    const ws = new WebSocket(`${SERVER}/v1/supervisor`);
    socket = ws;
    lastHeard = Date.now();
    ws.onmessage = (message) => {
      lastHeard = Date.now();
      let ev;
      try { ev = JSON.parse(message.data); } catch { return; }
      if (ev.type === "snapshot") {
        attempt = 0;
        setConn("live", "Live");
        loadRecentAlerts();
        if (watched) send({ type: "watch", call_id: watched });
      }
      onEvent(ev);
      schedule();
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      const cap = Math.min(15000, 500 * 2 ** attempt++);
      const delay = cap / 2 + Math.random() * (cap / 2);
      setConn("reconnecting", `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
      connect.timer = setTimeout(connect, delay);
    };
  }

  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      if (Date.now() - lastHeard > 40000) socket.close(4000, "silent");
      else send({ type: "ping" });
    }
  }, 15000);

  // Durations tick once a second; only the text of visible rows changes.
  setInterval(() => {
    for (const row of calls.values()) {
      if (!row.visible) continue;
      const text = clock(liveTime(row));
      if (row.shown.duration !== text) { row.shown.duration = text; row.cells.duration.textContent = text; }
    }
    if (queueAt && performance.now() - queueAt > QUEUE_STALE_MS) ui.queue.forEach((node) => { node.dataset.stale = "true"; });
  }, 1000);

  // ------------------------------------------------------------------ input

  function setMode(mode) {
    if (mode !== "wall" && mode !== "dense") return;
    document.body.dataset.mode = mode;
    for (const button of document.querySelectorAll(".mode button")) button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    prefs.mode = mode;
    savePrefs();
  }

  function refilter() {
    for (const row of calls.values()) applyFilter(row);
    kpiDirty = true;
    schedule();
  }

  function rowsInOrder() { return [...ui.rows.children].filter((r) => !r.hidden); }

  function focusRow(target) {
    if (!target) return;
    for (const r of ui.rows.querySelectorAll('[tabindex="0"]')) r.tabIndex = -1;
    target.tabIndex = 0;
    target.focus();
  }

  document.querySelector(".thead").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-sort]");
    if (button) setSort(button.dataset.sort);
  });
  ui.rows.addEventListener("click", (e) => {
    const row = e.target.closest(".row");
    if (row) { focusRow(row); openDrill(row.dataset.callId, row); }
  });
  ui.rows.addEventListener("keydown", (e) => {
    const row = e.target.closest(".row");
    if (!row) return;
    const rows = rowsInOrder();
    const index = rows.indexOf(row);
    if (e.key === "ArrowDown" || e.key === "j") focusRow(rows[Math.min(rows.length - 1, index + 1)]);
    else if (e.key === "ArrowUp" || e.key === "k") focusRow(rows[Math.max(0, index - 1)]);
    else if (e.key === "Home") focusRow(rows[0]);
    else if (e.key === "End") focusRow(rows[rows.length - 1]);
    else if (e.key === "Enter" || e.key === " ") openDrill(row.dataset.callId, row);
    else return;
    e.preventDefault();
  });
  ui.alerts.addEventListener("click", (e) => {
    const li = e.target.closest(".alert");
    if (!li) return;
    const item = alerts.get(li.dataset.alertId);
    if (!item) return;
    if (e.target.closest(".ack")) acknowledge(item);
    else if (e.target.closest(".view")) openDrill(item.alert.call_id, e.target.closest("button"));
  });
  for (const control of [ui.filter, ui.fIntent, ui.fTier, ui.fAlerts, ui.fUpset]) control.addEventListener("input", refilter);
  ui.feedOpen.addEventListener("change", () => { prefs.openOnly = ui.feedOpen.checked; savePrefs(); feedDirty = true; schedule(); });
  document.querySelector(".mode").addEventListener("click", (e) => { const b = e.target.closest("button"); if (b) setMode(b.dataset.mode); });
  $("drill-close").addEventListener("click", closeDrill);
  $("help-open").addEventListener("click", () => ui.help.showModal());

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = e.target.closest && e.target.closest("input, select, textarea");
    if (e.key === "Escape") {
      if (ui.help.open) return;
      if (watched) { closeDrill(); e.preventDefault(); return; }
      if (typing && ui.filter === e.target && ui.filter.value) { ui.filter.value = ""; refilter(); }
      return;
    }
    if (typing) return;
    if (e.key === "/") { ui.filter.focus(); ui.filter.select(); }
    else if (e.key === "w" || e.key === "W") setMode("wall");
    else if (e.key === "d" || e.key === "D") setMode("dense");
    else if (e.key === "?") ui.help.showModal();
    else if (e.key === "a" || e.key === "A") {
      const open = [...ui.alerts.querySelectorAll(".alert[data-acked=false] .ack")];
      if (open.length) open[open.length - 1].focus();
    } else if ((e.key === "ArrowDown" || e.key === "j") && !e.target.closest(".row, .drill, dialog")) focusRow(rowsInOrder()[0]);
    else return;
    e.preventDefault();
  });

  // ------------------------------------------------------------------ start

  setMode(params.get("mode") || prefs.mode || "dense");
  ui.feedOpen.checked = !!prefs.openOnly;
  sortDir = defaultDir(sortKey);
  showSort();
  window.callassistBoard = { stats, calls, alerts }; // for the browser tests and the performance bench
  connect();
})();
