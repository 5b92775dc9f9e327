// callassist agent widget: one file, no build step, no dependencies, no CDN.
//
//   <script src="https://callassist.example.com/static/widget.js" defer></script>
//   <callassist-widget agent-id="agent-7"></callassist-widget>
// or, from the host desktop's own code:
//   CallAssist.mount(document.querySelector("#assist-slot"), { agentId: "agent-7" });
//
// Attributes (mount options in camelCase): agent-id (required); server (ws(s):// or
// http(s):// base URL, default: the server this script was loaded from); theme ("dark" or
// "light"); shortcuts ("off" disables the Alt+Shift keys); max-backoff (seconds, default 15);
// token (when the server has auth on and the widget is on another origin: a short-lived agent
// token your desktop's backend mints with POST /v1/auth/token; sent as a WebSocket subprotocol).
//
// The widget renders into its own shadow root with widget.css (next to this file), so the host
// page's CSS cannot break it and its CSS cannot leak out; theme it with --ca-* custom properties.
// It tells the host what happens through DOM events (they bubble out of the shadow root):
// callassist:connection {state}, callassist:call {call, ended}, callassist:assist {assist},
// callassist:feedback {saved}.
//
// Calm by design: the DOM is built once and patched in place at most once per animation frame;
// an unchanged suggestion is not touched; the suggestion never moves (sections below it absorb
// size changes); reduced motion turns every transition off.
(() => {
  "use strict";
  if (customElements.get("callassist-widget")) return;

  const SCRIPT = document.currentScript;
  const SCRIPT_URL = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href) : new URL("/static/widget.js", location.href);
  const STYLESHEET = new URL("widget.css", SCRIPT_URL).href;
  const DEFAULT_SERVER = SCRIPT_URL.origin.replace(/^http/, "ws");
  const SEVERITY = { high: 0, medium: 1, low: 2 };
  const TREND = { improving: "↗", declining: "↘", stable: "→" };
  const MAX_LINES = 80;
  const MAX_SPARK = 24;
  const PING_MS = 15000;
  const SILENCE_MS = 40000; // no frame (not even a pong) for this long: the socket is dead

  /** Key of one assist for feedback: its utterance id, else "@<call time>" (as the server keys it). */
  const assistKey = (a) => a.utterance_id || `@${a.timestamp}`;
  const suggestionUnit = (a) => `s:${a.intent}\u0000${a.suggested_action}`;
  const clock = (t) => {
    const s = Math.max(0, Math.floor(t));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60));
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  };
  const words = (label) => (label || "").replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  const signed = (v) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  const setAttr = (node, name, value) => {
    if (value === null || value === undefined || value === false) { if (node.hasAttribute(name)) node.removeAttribute(name); }
    else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, String(value));
  };

  const TEMPLATE = document.createElement("template");
  TEMPLATE.innerHTML = `
    <section class="ca" part="widget" aria-label="Call assist" data-call="none">
      <header class="head">
        <div class="caller"><span class="name">No live call</span> <span class="tier" hidden></span></div>
        <span class="clock" title="Call time" aria-hidden="true"></span>
        <span class="conn" data-state="connecting">
          <span class="dot" aria-hidden="true"></span><span class="conn-text" role="status">Connecting…</span>
          <span class="conn-detail"></span>
          <button type="button" class="retry" hidden>Retry now</button>
        </span>
      </header>
      <div class="tabs" role="tablist" aria-label="Your calls" hidden></div>
      <p class="banner" hidden></p>
      <section class="action" aria-labelledby="h-action">
        <h2 id="h-action">Suggested action</h2>
        <p class="suggestion" tabindex="-1">Waiting for the customer…</p>
        <p class="reason"></p>
        <div class="fb" role="group" aria-label="Feedback on the suggested action"></div>
      </section>
      <div class="signals">
        <div class="intent"><span class="k">Intent</span> <span class="v">—</span>
          <span class="meter" aria-hidden="true"><span class="fill"></span></span> <span class="conf"></span></div>
        <div class="sentiment"><span class="k">Sentiment</span>
          <svg class="spark" viewBox="0 0 100 24" preserveAspectRatio="none" aria-hidden="true" focusable="false">
            <line x1="0" y1="12" x2="100" y2="12"></line><polyline points=""></polyline></svg>
          <span class="v">—</span> <span class="trend"></span></div>
      </div>
      <section class="compliance" aria-labelledby="h-compliance">
        <h2 id="h-compliance">Compliance</h2>
        <ul class="alerts"></ul>
        <p class="none">No open compliance issues.</p>
      </section>
      <section class="articles" aria-labelledby="h-articles">
        <h2 id="h-articles">Knowledge</h2>
        <ol class="article-list"></ol>
        <p class="none">No matching article yet.</p>
      </section>
      <section class="transcript" aria-labelledby="h-transcript">
        <h2 id="h-transcript">Transcript</h2>
        <ol class="lines" tabindex="0" aria-label="Live transcript"></ol>
      </section>
      <p class="error" role="alert" hidden></p>
      <div class="sr" aria-live="polite" aria-atomic="true"></div>
      <div class="sr" aria-live="assertive" aria-atomic="true"></div>
    </section>`;

  // Icons are inline SVG, not emoji: agent desktops often lack an emoji font.
  // Thumb: Material Icons "thumb_up" path (Apache License 2.0).
  const THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";
  const CHECK = "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z";
  const ICONS = { used: [CHECK, ""], helpful: [THUMB, ""], not_helpful: [THUMB, "rotate(180 12 12)"] };

  function icon(kind) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[kind][0]);
    if (ICONS[kind][1]) path.setAttribute("transform", ICONS[kind][1]);
    svg.append(path);
    return svg;
  }

  function feedbackButtons(group, labelSuffix, shortcuts) {
    const specs = [
      ["used", "Used", shortcuts && "Alt+Shift+U"],
      ["helpful", "Helpful", shortcuts && "Alt+Shift+H"],
      ["not_helpful", "Not helpful", shortcuts && "Alt+Shift+N"],
    ];
    for (const [kind, label, keys] of specs) {
      const button = el("button", `fb-${kind}`);
      button.type = "button";
      button.dataset.fb = kind;
      button.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-label", `${label}${labelSuffix}`);
      if (keys) button.setAttribute("aria-keyshortcuts", keys);
      button.append(icon(kind), el("span", "label", label));
      group.append(button);
    }
  }

  /** The server's reason code ("playbook:billing_inquiry", "compliance:recording_notice",
   *  "sentiment:declining;playbook:...") as a few words the agent can read at a glance. */
  function reasonText(reason) {
    const parts = (reason || "").split(";").filter(Boolean).map((part) => {
      const [kind, value] = part.split(":");
      if (kind === "playbook") return `${words(value)} playbook`;
      if (kind === "compliance") return `Compliance: ${words(value).toLowerCase()}`;
      if (kind === "sentiment") return value === "declining" ? "Customer getting upset" : "Customer upset";
      if (kind === "intent" && value === "unknown") return "Intent not clear yet";
      return words(part);
    });
    return parts.length ? `Why: ${parts.join(" · ")}` : "";
  }

  class CallassistWidget extends HTMLElement {
    static get observedAttributes() { return ["agent-id", "server", "shortcuts", "token"]; }

    constructor() {
      super();
      this.root = this.attachShadow({ mode: "open" });
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = STYLESHEET;
      this.root.append(link);
      this.root.append(TEMPLATE.content.cloneNode(true));
      const $ = (s) => this.root.querySelector(s);
      this.ui = {
        box: $(".ca"), name: $(".name"), tier: $(".tier"), clock: $(".clock"), conn: $(".conn"),
        connText: $(".conn-text"), connDetail: $(".conn-detail"), retry: $(".retry"), tabs: $(".tabs"),
        banner: $(".banner"), suggestion: $(".suggestion"), reason: $(".reason"), fb: $(".action .fb"),
        intent: $(".intent .v"), meter: $(".intent .fill"), conf: $(".intent .conf"),
        sentiment: $(".sentiment .v"), trend: $(".sentiment .trend"), spark: $(".spark polyline"),
        sentimentBox: $(".sentiment"), alerts: $(".alerts"), noAlerts: $(".compliance .none"),
        articles: $(".article-list"), noArticles: $(".articles .none"), lines: $(".lines"),
        error: $(".error"), polite: $(".sr[aria-live=polite]"), assertive: $(".sr[aria-live=assertive]"),
      };
      feedbackButtons(this.ui.fb, " — suggested action", true);
      this.calls = new Map();
      this.currentId = null;
      this.pinned = false; // the agent chose a tab: new calls do not steal focus
      this.expanded = new Set();
      this.dirty = new Set();
      this.frame = 0;
      this.attempt = 0;
      this.socket = null;
      this.inflight = []; // feedback frames awaiting feedback_saved / error, in order
      this.outgoing = new Map(); // feedback to send once connected (latest per target wins)
      this.state = "connecting";
      this.onKey = this.onKey.bind(this);
      this.onOnline = () => { if (this.state !== "live") this.connect(); };
      this.ui.retry.addEventListener("click", () => this.connect());
      this.ui.box.addEventListener("click", (e) => this.onClick(e));
      this.ui.box.addEventListener("keydown", (e) => this.onLocalKey(e));
    }

    connectedCallback() {
      this.closed = false;
      this.started = true;
      document.addEventListener("keydown", this.onKey);
      window.addEventListener("online", this.onOnline);
      this.ticker = setInterval(() => this.tick(), 1000);
      this.connect();
    }

    disconnectedCallback() {
      this.closed = true;
      this.started = false;
      document.removeEventListener("keydown", this.onKey);
      window.removeEventListener("online", this.onOnline);
      clearInterval(this.ticker);
      this.teardown();
    }

    attributeChangedCallback(name, before, after) {
      if (before === after || !this.started || this.closed) return;
      if (name === "agent-id") { this.calls.clear(); this.currentId = null; this.markAll(); }
      if (name !== "shortcuts") this.connect();
    }

    get agentId() { return this.getAttribute("agent-id"); }
    get server() { return (this.getAttribute("server") || DEFAULT_SERVER).replace(/^http/, "ws").replace(/\/+$/, ""); }
    get maxBackoff() { return 1000 * (Number(this.getAttribute("max-backoff")) || 15); }
    get shortcutsOn() { return this.getAttribute("shortcuts") !== "off"; }

    // ------------------------------------------------------------------ connection

    teardown() {
      clearTimeout(this.retryTimer);
      clearInterval(this.countdown);
      clearInterval(this.heartbeat);
      const socket = this.socket;
      this.socket = null;
      if (socket) { socket.onclose = socket.onmessage = socket.onopen = socket.onerror = null; socket.close(1000); }
      this.requeueInflight();
    }

    /** Feedback sent but not answered when the socket went away goes again after the reconnect. */
    requeueInflight() {
      const unanswered = this.inflight;
      this.inflight = [];
      for (const frame of unanswered) {
        const key = `${frame.call_id}|${frame.unit}|${"used" in frame ? "used" : "rating"}`;
        if (this.outgoing.has(key)) { const call = this.calls.get(frame.call_id); if (call) this.feedbackState(call, frame.unit).pending -= 1; }
        else this.outgoing.set(key, frame);
      }
    }

    connect() {
      this.teardown();
      if (this.closed) return;
      if (!this.agentId) { this.setState("failed", "no agent-id"); return; }
      this.setState(navigator.onLine === false ? "offline" : "connecting");
      let socket;
      try {
        // A token (minted by the desktop's backend) rides in the subprotocol list, never the URL;
        // without one the same-origin session cookie authenticates (static/auth.js).
        const url = `${this.server}/v1/agents/${encodeURIComponent(this.agentId)}`;
        const token = this.getAttribute("token");
        socket = token ? new WebSocket(url, ["callassist.v1", `bearer.${token}`]) : new WebSocket(url);
      } catch (error) {
        this.setState("failed", String(error.message || error));
        return;
      }
      this.socket = socket;
      this.lastHeard = Date.now();
      socket.onmessage = (message) => {
        this.lastHeard = Date.now();
        let event;
        try { event = JSON.parse(message.data); } catch { return; }
        this.onEvent(event);
      };
      socket.onclose = (close) => { if (this.socket === socket) this.scheduleReconnect(close); };
      this.heartbeat = setInterval(() => {
        if (socket.readyState !== WebSocket.OPEN) return;
        if (Date.now() - this.lastHeard > SILENCE_MS) { socket.close(4000, "silent"); return; }
        socket.send('{"type":"ping"}');
      }, PING_MS);
    }

    scheduleReconnect(close) {
      this.socket = null;
      clearInterval(this.heartbeat);
      this.requeueInflight();
      if (this.closed) return;
      // Equal jitter: between half and all of the capped exponential delay.
      const cap = Math.min(this.maxBackoff, 500 * 2 ** this.attempt++);
      const delay = cap / 2 + Math.random() * (cap / 2);
      const due = Date.now() + delay;
      this.setState(navigator.onLine === false ? "offline" : "reconnecting", close && close.code === 1013 ? "server busy" : "");
      const countdown = () => setText(this.ui.connDetail, `retry in ${Math.max(1, Math.ceil((due - Date.now()) / 1000))} s`);
      countdown();
      this.countdown = setInterval(countdown, 1000);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }

    setState(state, detail = "") {
      const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline", failed: "Not connected" };
      const changed = this.state !== state;
      this.state = state;
      this.ui.conn.dataset.state = state;
      this.ui.box.dataset.conn = state;
      setText(this.ui.connText, labels[state] || state);
      setText(this.ui.connDetail, detail);
      this.ui.retry.hidden = state === "live" || state === "connecting";
      if (changed) this.emit("connection", { state });
    }

    /** Send a feedback frame now, or keep it (latest per target wins) until the socket is live. */
    sendFeedback(frame) {
      const { unit, before, ...wire } = frame;
      if (this.socket && this.socket.readyState === WebSocket.OPEN && this.state === "live") {
        this.socket.send(JSON.stringify(wire));
        this.inflight.push(frame);
        return;
      }
      const key = `${frame.call_id}|${unit}|${"used" in frame ? "used" : "rating"}`;
      const replaced = this.outgoing.get(key);
      if (replaced) {
        const call = this.calls.get(replaced.call_id);
        if (call) this.feedbackState(call, unit).pending -= 1;
      }
      this.outgoing.set(key, frame);
    }

    // ------------------------------------------------------------------ events in

    call(id) {
      let call = this.calls.get(id);
      if (!call) {
        call = { id, summary: null, receivedAt: performance.now(), lines: new Map(), assist: null, alerts: new Map(),
                 sentiment: [], ended: null, feedback: new Map(), order: this.calls.size };
        this.calls.set(id, call);
        this.mark("tabs");
      }
      return call;
    }

    onEvent(ev) {
      switch (ev.type) {
        case "snapshot": {
          this.attempt = 0;
          this.setState("live");
          const live = new Set(ev.calls.map((c) => c.call_id));
          for (const call of this.calls.values()) {
            if (!call.ended && !live.has(call.id)) this.endCall(call, { reason: "ended while you were disconnected" });
          }
          for (const summary of ev.calls) this.updateSummary(this.call(summary.call_id), summary);
          if (!this.current() || this.current().ended) this.pickCurrent();
          const queued = [...this.outgoing.values()];
          this.outgoing.clear();
          queued.forEach((frame) => this.sendFeedback(frame));
          break;
        }
        case "call_state": {
          const call = this.call(ev.call.call_id);
          this.updateSummary(call, ev.call);
          for (const line of ev.transcript) this.addLine(call, line);
          if (ev.last_assist && (!call.assist || assistKey(call.assist) !== assistKey(ev.last_assist))) {
            this.applyAssist(call, ev.last_assist, { quiet: true });
          }
          call.alerts = new Map(ev.compliance_alerts.map((a) => [a.rule_id, a]));
          if (!this.current() || this.current().ended) this.pickCurrent();
          this.markCall(call, "action", "signals", "compliance", "articles", "transcript");
          break;
        }
        case "call_started": {
          const call = this.call(ev.call.call_id);
          this.updateSummary(call, ev.call);
          this.pruneEnded();
          if (!this.pinned || !this.current() || this.current().ended) this.select(call.id);
          this.emit("call", { call: ev.call, ended: false });
          break;
        }
        case "transcript": {
          const call = this.call(ev.call_id);
          this.addLine(call, ev);
          if (ev.is_final && call.summary) this.advanceClock(call, ev.timestamp);
          this.markCall(call, "transcript");
          if (!this.currentId) this.select(call.id);
          break;
        }
        case "assist": {
          const call = this.call(ev.call_id);
          this.applyAssist(call, ev, { quiet: false });
          this.emit("assist", { assist: ev });
          break;
        }
        case "compliance": {
          const call = this.call(ev.call_id);
          const alert = ev.alert;
          if (alert.resolved) call.alerts.delete(alert.rule_id);
          else {
            const fresh = !call.alerts.has(alert.rule_id);
            call.alerts.set(alert.rule_id, alert);
            if (fresh && call.id === this.currentId) this.say(`Compliance, ${alert.severity}: ${alert.message}`, alert.severity === "high");
          }
          this.markCall(call, "compliance");
          break;
        }
        case "call_ended":
          this.endCall(this.call(ev.call_id), ev);
          this.emit("call", { call: { call_id: ev.call_id, agent_id: ev.agent_id }, ended: true });
          break;
        case "call.routed": {
          // The router chose this agent: say who is coming and why, before the call starts.
          const caller = ev.caller || {};
          const who = caller.name || caller.customer_id || caller.call_id || "a caller";
          this.say(`Incoming call from ${who}${caller.tier ? ", " + caller.tier + " tier" : ""}. ${ev.why || ""}`, false);
          this.emit("routed", { routing: ev });
          break;
        }
        case "feedback_saved":
          this.onFeedbackAnswer(ev, null);
          break;
        case "error":
          if (this.inflight.length) this.onFeedbackAnswer(null, ev);
          break;
        default:
          return; // pong and anything newer than this widget
      }
    }

    updateSummary(call, summary) {
      call.summary = summary;
      call.receivedAt = performance.now();
      call.callTime = summary.call_time;
      this.markCall(call, "head");
    }

    advanceClock(call, timestamp) {
      if (timestamp > this.callTime(call)) { call.callTime = timestamp; call.receivedAt = performance.now(); }
    }

    callTime(call) {
      if (call.ended) return call.ended.duration ?? call.callTime ?? 0;
      return (call.callTime || 0) + (performance.now() - call.receivedAt) / 1000;
    }

    endCall(call, ev) {
      if (call.ended) return;
      call.ended = { reason: ev.reason || "completed", duration: ev.duration ?? this.callTime(call) };
      for (const [key, line] of call.lines) if (!line.final) call.lines.delete(key);
      this.markCall(call, "head", "transcript", "tabs");
      this.mark("tabs");
    }

    /** A new call starts: ended calls (kept for after-call work and late feedback) go. */
    pruneEnded() {
      for (const call of [...this.calls.values()]) {
        if (!call.ended) continue;
        this.calls.delete(call.id);
        if (this.currentId === call.id) this.currentId = null;
      }
      this.mark("tabs");
    }

    addLine(call, ev) {
      const key = ev.utterance_id ? `${ev.speaker}:${ev.utterance_id}` : ev.is_final ? `${ev.speaker}@${ev.timestamp}` : `${ev.speaker}:interim`;
      if (ev.is_final && !ev.utterance_id) call.lines.delete(`${ev.speaker}:interim`);
      const known = call.lines.get(key);
      if (known && known.final && !ev.is_final) return; // a late interim never overwrites the final text
      call.lines.set(key, { speaker: ev.speaker, text: ev.text, final: ev.is_final, timestamp: ev.timestamp });
      while (call.lines.size > MAX_LINES) call.lines.delete(call.lines.keys().next().value);
    }

    applyAssist(call, assist, { quiet }) {
      const previous = call.assist;
      call.assist = assist;
      call.alerts = new Map(assist.compliance_alerts.map((a) => [a.rule_id, a]));
      call.sentiment.push(assist.sentiment);
      if (call.sentiment.length > MAX_SPARK) call.sentiment.shift();
      this.advanceClock(call, assist.timestamp);
      const changed = !previous || previous.suggested_action !== assist.suggested_action;
      if (changed && !quiet && call.id === this.currentId) this.say(`Suggestion: ${assist.suggested_action}`, false);
      if (changed && !quiet) call.freshSuggestion = true;
      this.markCall(call, "action", "signals", "compliance", "articles", "head");
    }

    pickCurrent() {
      const live = [...this.calls.values()].filter((c) => !c.ended);
      const pick = live.sort((a, b) => (b.summary?.started_at || 0) - (a.summary?.started_at || 0))[0];
      if (pick) this.select(pick.id);
      else if (!this.current()) this.select([...this.calls.keys()].pop() || null);
    }

    current() { return this.currentId ? this.calls.get(this.currentId) || null : null; }

    select(id, byAgent = false) {
      if (byAgent) this.pinned = true;
      if (id === this.currentId) return;
      this.currentId = id;
      this.expanded.clear();
      this.markAll();
    }

    // ------------------------------------------------------------------ feedback

    feedbackState(call, unit) {
      return call.feedback.get(unit) || { used: false, rating: null, pending: 0 };
    }

    toggleFeedback(kind, articleId = null) {
      const call = this.current();
      const assist = call && call.assist;
      if (!assist) return;
      const article = articleId && assist.knowledge_articles.find((a) => a.id === articleId);
      if (articleId && !article) return;
      const unit = article ? `a:${article.id}` : suggestionUnit(assist);
      const state = { ...this.feedbackState(call, unit) };
      const before = { used: state.used, rating: state.rating };
      const frame = { type: "feedback", call_id: call.id, utterance_id: assistKey(assist), target: article ? "article" : "suggestion" };
      if (article) frame.article_id = article.id;
      if (kind === "used") { state.used = !state.used; frame.used = state.used; }
      else { state.rating = state.rating === kind ? null : kind; frame.rating = state.rating; }
      state.pending += 1;
      call.feedback.set(unit, state);
      this.sendFeedback({ ...frame, unit, before });
      this.markCall(call, article ? "articles" : "action");
    }

    onFeedbackAnswer(saved, error) {
      const frame = this.inflight.shift();
      if (!frame) return;
      const call = this.calls.get(frame.call_id);
      if (call) {
        const state = this.feedbackState(call, frame.unit);
        state.pending = Math.max(0, state.pending - 1);
        if (error) {
          // Roll back what this frame changed; tell the agent once, quietly.
          if ("used" in frame) state.used = frame.before.used;
          if ("rating" in frame) state.rating = frame.before.rating;
          this.showError(`Feedback not saved: ${error.message}`);
        }
        call.feedback.set(frame.unit, state);
        this.markCall(call, frame.target === "article" ? "articles" : "action");
      }
      if (saved) this.emit("feedback", { saved });
    }

    showError(text) {
      setText(this.ui.error, text);
      this.ui.error.hidden = false;
      clearTimeout(this.errorTimer);
      this.errorTimer = setTimeout(() => { this.ui.error.hidden = true; }, 6000);
    }

    // ------------------------------------------------------------------ input

    onClick(e) {
      const button = e.target.closest("button");
      if (!button || !this.ui.box.contains(button)) return;
      if (button.dataset.fb) {
        const item = button.closest(".article");
        this.toggleFeedback(button.dataset.fb, item ? item.dataset.id : null);
      } else if (button.classList.contains("art-toggle")) {
        this.toggleArticle(button.closest(".article").dataset.id);
      } else if (button.dataset.call) {
        this.select(button.dataset.call, true);
      }
    }

    toggleArticle(id, focus = false) {
      if (this.expanded.has(id)) this.expanded.delete(id); else this.expanded.add(id);
      this.mark("articles");
      this.flush();
      if (focus) {
        const toggle = [...this.ui.articles.children].find((li) => li.dataset.id === id);
        if (toggle) toggle.querySelector(".art-toggle").focus();
      }
    }

    onLocalKey(e) {
      if (e.key === "Escape" && this.expanded.size) { this.expanded.clear(); this.mark("articles"); e.stopPropagation(); }
      if (e.target.getAttribute && e.target.getAttribute("role") === "tab" && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
        const tabs = [...this.ui.tabs.children];
        const next = tabs[(tabs.indexOf(e.target) + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
        if (next) { this.select(next.dataset.call, true); this.flush(); next.focus(); }
      }
    }

    onKey(e) {
      if (!this.shortcutsOn || !e.altKey || !e.shiftKey || e.ctrlKey || e.metaKey) return;
      if (CallassistWidget.shortcutOwner() !== this) return;
      const code = e.code;
      const articles = this.current() && this.current().assist ? this.current().assist.knowledge_articles.slice(0, 3) : [];
      if (code === "KeyU") this.toggleFeedback("used");
      else if (code === "KeyH") this.toggleFeedback("helpful");
      else if (code === "KeyN") this.toggleFeedback("not_helpful");
      else if (/^Digit[1-3]$/.test(code)) { const a = articles[Number(code.slice(5)) - 1]; if (!a) return; this.toggleArticle(a.id, true); }
      else if (code === "KeyA") { this.flush(); this.ui.suggestion.focus(); }
      else if (code === "KeyT") this.ui.lines.focus();
      else return;
      e.preventDefault();
    }

    static shortcutOwner() {
      // With several widgets on a page, the first one with shortcuts on answers them.
      return [...document.querySelectorAll("callassist-widget")].find((w) => w.shortcutsOn) || null;
    }

    // ------------------------------------------------------------------ rendering

    say(text, urgent) {
      const region = urgent ? this.ui.assertive : this.ui.polite;
      region.textContent = "";
      // A separate task so screen readers see a change even when the text repeats.
      setTimeout(() => { region.textContent = text; }, 50);
    }

    emit(name, detail) {
      this.dispatchEvent(new CustomEvent(`callassist:${name}`, { detail, bubbles: true, composed: true }));
    }

    markAll() { for (const part of ["head", "tabs", "action", "signals", "compliance", "articles", "transcript"]) this.mark(part); }
    markCall(call, ...parts) { if (call.id === this.currentId) parts.forEach((p) => this.mark(p)); else this.mark("tabs"); }

    mark(part) {
      this.dirty.add(part);
      if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    }

    flush() {
      if (this.frame) { cancelAnimationFrame(this.frame); this.frame = 0; }
      const dirty = this.dirty;
      this.dirty = new Set();
      const call = this.current();
      if (dirty.has("head")) this.renderHead(call);
      if (dirty.has("tabs")) this.renderTabs();
      if (dirty.has("action")) this.renderAction(call);
      if (dirty.has("signals")) this.renderSignals(call);
      if (dirty.has("compliance")) this.renderCompliance(call);
      if (dirty.has("articles")) this.renderArticles(call);
      if (dirty.has("transcript")) this.renderTranscript(call);
    }

    tick() {
      const call = this.current();
      if (call && !call.ended) setText(this.ui.clock, clock(this.callTime(call)));
    }

    renderHead(call) {
      const customer = (call && call.summary && call.summary.customer) || {};
      setText(this.ui.name, call ? customer.name || customer.id || "Caller" : "No live call");
      setText(this.ui.tier, customer.tier ? customer.tier : "");
      this.ui.tier.hidden = !customer.tier;
      this.ui.tier.dataset.tier = customer.tier || "";
      setText(this.ui.clock, call ? clock(this.callTime(call)) : "");
      this.ui.box.dataset.call = call ? (call.ended ? "ended" : "live") : "none";
      const banner = call && call.ended ? `Call ended · ${clock(call.ended.duration)}${call.ended.reason && call.ended.reason !== "completed" ? ` · ${words(call.ended.reason)}` : ""}` : "";
      setText(this.ui.banner, banner);
      this.ui.banner.hidden = !banner;
    }

    renderTabs() {
      const calls = [...this.calls.values()];
      const show = calls.length > 1; // a consult or transfer next to the main call
      this.ui.tabs.hidden = !show;
      if (!show) return;
      const existing = new Map([...this.ui.tabs.children].map((b) => [b.dataset.call, b]));
      calls.forEach((call, index) => {
        let tab = existing.get(call.id);
        if (!tab) {
          tab = el("button", "tab");
          tab.type = "button";
          tab.setAttribute("role", "tab");
          tab.dataset.call = call.id;
        }
        existing.delete(call.id);
        const customer = (call.summary && call.summary.customer) || {};
        setText(tab, `${customer.name || customer.id || call.id}${call.ended ? " (ended)" : ""}`);
        setAttr(tab, "aria-selected", call.id === this.currentId ? "true" : "false");
        setAttr(tab, "tabindex", call.id === this.currentId ? "0" : "-1");
        if (this.ui.tabs.children[index] !== tab) this.ui.tabs.insertBefore(tab, this.ui.tabs.children[index] || null);
      });
      for (const stale of existing.values()) stale.remove();
    }

    renderFeedback(group, state, enabled) {
      for (const button of group.children) {
        const kind = button.dataset.fb;
        const pressed = kind === "used" ? state.used : state.rating === kind;
        setAttr(button, "aria-pressed", pressed ? "true" : "false");
        setAttr(button, "data-pending", state.pending > 0 ? "true" : null);
        button.disabled = !enabled;
      }
    }

    renderAction(call) {
      const assist = call && call.assist;
      const text = assist ? assist.suggested_action : call ? "Listening for the customer…" : "Waiting for a call…";
      const node = this.ui.suggestion;
      if (node.textContent !== text) {
        node.textContent = text;
        if (call && call.freshSuggestion) {
          node.classList.remove("fresh");
          void node.offsetWidth; // restart the highlight
          node.classList.add("fresh");
        }
      }
      if (call) call.freshSuggestion = false;
      setAttr(node, "data-utterance-id", assist ? assistKey(assist) : null);
      setAttr(node, "data-empty", assist ? null : "true");
      setText(this.ui.reason, assist ? reasonText(assist.suggested_action_reason) : "");
      setAttr(this.ui.reason, "title", assist ? assist.suggested_action_reason : null);
      this.renderFeedback(this.ui.fb, assist ? this.feedbackState(call, suggestionUnit(assist)) : { used: false, rating: null, pending: 0 }, !!assist);
    }

    renderSignals(call) {
      const assist = call && call.assist;
      const unknown = !assist || assist.intent === "unknown";
      setText(this.ui.intent, assist ? (unknown ? "Not clear yet" : words(assist.intent)) : "—");
      this.ui.intent.dataset.unknown = unknown ? "true" : "false";
      const confidence = assist ? Math.round(assist.intent_confidence * 100) : 0;
      setText(this.ui.conf, assist && !unknown ? `${confidence}%` : "");
      this.ui.meter.style.transform = `scaleX(${assist && !unknown ? assist.intent_confidence : 0})`;
      if (!assist) {
        setText(this.ui.sentiment, "—");
        setText(this.ui.trend, "");
        this.ui.sentimentBox.dataset.trend = "";
        this.ui.spark.setAttribute("points", "");
        return;
      }
      setText(this.ui.sentiment, `${words(assist.sentiment_label)} ${signed(assist.sentiment)}`);
      setText(this.ui.trend, `${TREND[assist.sentiment_trend] || ""} ${assist.sentiment_trend}`);
      this.ui.sentimentBox.dataset.trend = assist.sentiment_trend;
      this.ui.sentimentBox.dataset.label = assist.sentiment_label;
      const series = call.sentiment;
      const step = series.length > 1 ? 100 / (series.length - 1) : 0;
      const points = series.map((v, i) => `${(i * step).toFixed(1)},${(12 - v * 11).toFixed(1)}`).join(" ");
      if (this.ui.spark.getAttribute("points") !== points) this.ui.spark.setAttribute("points", series.length > 1 ? points : `0,${12 - series[0] * 11} 100,${12 - series[0] * 11}`);
    }

    renderCompliance(call) {
      const alerts = call ? [...call.alerts.values()].sort((a, b) => (SEVERITY[a.severity] ?? 3) - (SEVERITY[b.severity] ?? 3) || a.timestamp - b.timestamp) : [];
      const list = this.ui.alerts;
      const existing = new Map([...list.children].map((li) => [li.dataset.rule, li]));
      alerts.forEach((alert, index) => {
        let li = existing.get(alert.rule_id);
        if (!li) {
          li = el("li", "alert");
          li.dataset.rule = alert.rule_id;
          li.append(el("span", "sev"), el("span", "msg"), el("span", "at"));
        }
        existing.delete(alert.rule_id);
        li.dataset.severity = alert.severity;
        setText(li.children[0], alert.severity);
        setText(li.children[1], alert.message);
        setText(li.children[2], clock(alert.timestamp));
        if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      });
      for (const stale of existing.values()) stale.remove();
      this.ui.noAlerts.hidden = alerts.length > 0;
    }

    articleItem(id) {
      const li = el("li", "article");
      li.dataset.id = id;
      const toggle = el("button", "art-toggle");
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "false");
      const body = el("div", "art-body");
      body.id = `art-${Math.random().toString(36).slice(2, 9)}`;
      body.hidden = true;
      toggle.setAttribute("aria-controls", body.id);
      toggle.append(el("span", "art-n"), el("span", "art-title"), el("span", "art-score"));
      toggle.querySelector(".art-n").setAttribute("aria-hidden", "true");
      const link = el("a", "art-link", "Open article");
      link.target = "_blank";
      link.rel = "noopener";
      body.append(el("p", "art-snippet"), link);
      const group = el("div", "fb fb-small");
      group.setAttribute("role", "group");
      li.append(toggle, body, group);
      return li;
    }

    renderArticles(call) {
      const articles = call && call.assist ? call.assist.knowledge_articles.slice(0, 3) : [];
      const list = this.ui.articles;
      const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
      articles.forEach((article, index) => {
        let li = existing.get(article.id);
        if (!li) li = this.articleItem(article.id);
        existing.delete(article.id);
        const [toggle, body, group] = li.children;
        if (!group.children.length || group.dataset.title !== article.title) {
          group.textContent = "";
          group.dataset.title = article.title;
          group.setAttribute("aria-label", `Feedback on article: ${article.title}`);
          feedbackButtons(group, ` — article ${article.title}`, false);
        }
        setText(toggle.querySelector(".art-n"), String(index + 1));
        setAttr(toggle, "aria-keyshortcuts", this.shortcutsOn ? `Alt+Shift+${index + 1}` : null);
        setText(toggle.querySelector(".art-title"), article.title);
        setText(toggle.querySelector(".art-score"), `${Math.round(article.score * 100)}%`);
        setAttr(toggle.querySelector(".art-score"), "title", "Relevance");
        const open = this.expanded.has(article.id);
        setAttr(toggle, "aria-expanded", open ? "true" : "false");
        body.hidden = !open;
        setText(body.children[0], article.snippet);
        const link = body.children[1];
        link.hidden = !article.url;
        if (article.url) setAttr(link, "href", `${article.url}${article.anchor ? `#${article.anchor}` : ""}`);
        this.renderFeedback(group, this.feedbackState(call, `a:${article.id}`), true);
        if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      });
      for (const stale of existing.values()) stale.remove();
      this.ui.noArticles.hidden = articles.length > 0;
      this.ui.noArticles.textContent = call ? "No matching article yet." : "Articles appear here during a call.";
    }

    renderTranscript(call) {
      const list = this.ui.lines;
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
      const lines = call ? [...call.lines.entries()] : [];
      const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
      lines.forEach(([key, line], index) => {
        let li = existing.get(key);
        if (!li) {
          li = el("li", "line");
          li.dataset.key = key;
          li.append(el("span", "who"), el("span", "text"));
        }
        existing.delete(key);
        li.dataset.speaker = line.speaker;
        li.classList.toggle("interim", !line.final);
        setAttr(li, "aria-hidden", line.final ? null : "true");
        setText(li.children[0], line.speaker === "customer" ? "Customer" : "You");
        setText(li.children[1], line.text);
        if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      });
      for (const stale of existing.values()) stale.remove();
      if (atBottom) list.scrollTop = list.scrollHeight;
    }
  }

  customElements.define("callassist-widget", CallassistWidget);

  /** One-line mount: CallAssist.mount(target, {agentId, server, theme, shortcuts, maxBackoff, token}). */
  function mount(target, options = {}) {
    const host = typeof target === "string" ? document.querySelector(target) : target;
    if (!host) throw new Error("CallAssist.mount: target not found");
    const widget = document.createElement("callassist-widget");
    const attrs = { "agent-id": options.agentId, server: options.server, theme: options.theme,
                    shortcuts: options.shortcuts === false ? "off" : options.shortcuts, "max-backoff": options.maxBackoff, token: options.token };
    for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null) widget.setAttribute(name, String(value));
    host.append(widget);
    return widget;
  }

  window.CallAssist = Object.freeze({ mount, Widget: CallassistWidget, assistKey, version: "1" });
})();
