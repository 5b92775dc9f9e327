// <callassist-widget agent-id="agent-1" server="ws://host:8000"> — the agent desktop assist widget.
// No build step, no dependencies. Reconnects with backoff and redraws the live call from the
// server's snapshot after a reconnect.
(() => {
  const SEVERITY = { high: 0, medium: 1, low: 2 };
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmtTime = (t) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`;

  class CallassistWidget extends HTMLElement {
    static get observedAttributes() { return ["agent-id", "server"]; }

    constructor() {
      super();
      this.calls = new Map(); // call_id -> state
      this.current = null;
      this.retry = 0;
      this.socket = null;
    }

    connectedCallback() { this.render(); this.connect(); }
    disconnectedCallback() { this.closed = true; if (this.socket) this.socket.close(); }
    attributeChangedCallback() { if (this.isConnected) { if (this.socket) this.socket.close(); this.connect(); } }

    connect() {
      const agent = this.getAttribute("agent-id");
      const server = this.getAttribute("server") || location.origin.replace(/^http/, "ws");
      if (!agent || this.closed) return;
      clearTimeout(this.timer);
      this.setStatus("connecting");
      const socket = new WebSocket(`${server}/v1/agents/${encodeURIComponent(agent)}`);
      this.socket = socket;
      socket.onopen = () => { this.retry = 0; this.setStatus("live"); };
      socket.onmessage = (event) => this.onEvent(JSON.parse(event.data));
      socket.onclose = () => {
        if (this.socket !== socket || this.closed) return;
        this.setStatus("reconnecting");
        const delay = Math.min(15000, 500 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
        this.timer = setTimeout(() => this.connect(), delay);
      };
    }

    state(callId) {
      if (!this.calls.has(callId)) this.calls.set(callId, { id: callId, transcript: [], interim: new Map(), assist: null, alerts: new Map(), summary: null, ended: false });
      return this.calls.get(callId);
    }

    onEvent(ev) {
      switch (ev.type) {
        case "snapshot":
          for (const call of ev.calls) { this.state(call.call_id).summary = call; this.current = call.call_id; }
          break;
        case "call_state": {
          const s = this.state(ev.call.call_id);
          s.summary = ev.call; s.transcript = ev.transcript.filter((t) => t.is_final); s.interim.clear();
          s.assist = ev.last_assist; s.alerts = new Map(ev.compliance_alerts.map((a) => [a.rule_id, a]));
          this.current = ev.call.call_id;
          break;
        }
        case "call_started":
          this.state(ev.call.call_id).summary = ev.call; this.current = ev.call.call_id; break;
        case "transcript": {
          const s = this.state(ev.call_id);
          const key = ev.utterance_id || ev.speaker;
          if (ev.is_final) { s.interim.delete(key); s.transcript.push(ev); if (s.transcript.length > 60) s.transcript.shift(); }
          else s.interim.set(key, ev);
          if (!this.current) this.current = ev.call_id;
          break;
        }
        case "assist": {
          const s = this.state(ev.call_id);
          s.assist = ev; s.alerts = new Map(ev.compliance_alerts.map((a) => [a.rule_id, a]));
          this.announce(ev.suggested_action);
          break;
        }
        case "compliance": {
          const s = this.state(ev.call_id);
          if (ev.alert.resolved) s.alerts.delete(ev.alert.rule_id); else s.alerts.set(ev.alert.rule_id, ev.alert);
          if (!ev.alert.resolved) this.announce(`Compliance: ${ev.alert.message}`);
          break;
        }
        case "call_ended": {
          const s = this.state(ev.call_id); s.ended = true;
          setTimeout(() => { this.calls.delete(ev.call_id); if (this.current === ev.call_id) this.current = [...this.calls.keys()].pop() || null; this.render(); }, 15000);
          break;
        }
        default: return;
      }
      this.scheduleRender();
    }

    announce(text) { const live = this.querySelector(".ca-live"); if (live) live.textContent = text; }
    setStatus(status) { this.status = status; const el = this.querySelector(".ca-status"); if (el) { el.textContent = status; el.dataset.state = status; } }

    scheduleRender() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.render(); });
    }

    render() {
      const s = this.current ? this.calls.get(this.current) : null;
      const a = s && s.assist;
      const alerts = s ? [...s.alerts.values()].sort((x, y) => (SEVERITY[x.severity] ?? 3) - (SEVERITY[y.severity] ?? 3)) : [];
      const summary = s && s.summary;
      const lines = s ? s.transcript.slice(-8).map((t) => `<li class="ca-line ca-${esc(t.speaker)}"><span class="ca-who">${esc(t.speaker)}</span> ${esc(t.text)}</li>`).join("") +
        [...s.interim.values()].map((t) => `<li class="ca-line ca-${esc(t.speaker)} ca-interim" aria-hidden="true"><span class="ca-who">${esc(t.speaker)}</span> ${esc(t.text)}…</li>`).join("") : "";
      const opened = new Set([...this.querySelectorAll("details[open]")].map((d) => d.dataset.id));
      this.innerHTML = `
        <section class="ca-widget" aria-label="Call assist">
          <header class="ca-head">
            <span class="ca-title">${summary ? `${esc(summary.customer.name || summary.customer.id || "Caller")} · ${esc(summary.customer.tier || "")}` : "No live call"}</span>
            <span class="ca-status" role="status" data-state="${esc(this.status)}">${esc(this.status)}</span>
          </header>
          ${s && s.ended ? `<p class="ca-ended">Call ended</p>` : ""}
          <div class="ca-live visually-hidden" aria-live="polite"></div>
          <section class="ca-action" aria-label="Suggested action">
            <h2>Suggested action</h2>
            <p class="ca-suggestion">${a ? esc(a.suggested_action) : "Waiting for the customer…"}</p>
          </section>
          <div class="ca-signals">
            <span class="ca-intent" title="Detected intent">${a ? `${esc(a.intent.replace(/_/g, " "))} <small>${Math.round(a.intent_confidence * 100)}%</small>` : "intent —"}</span>
            <span class="ca-sentiment" data-trend="${a ? esc(a.sentiment_trend) : ""}" title="Customer sentiment">${a ? `${a.sentiment >= 0 ? "+" : ""}${a.sentiment.toFixed(2)} · ${esc(a.sentiment_trend)}` : "sentiment —"}</span>
            ${summary ? `<span class="ca-clock">${fmtTime(summary.call_time)}</span>` : ""}
          </div>
          ${alerts.length ? `<section class="ca-alerts" aria-label="Compliance"><h2>Compliance</h2><ul>${alerts.map((x) => `<li class="ca-alert ca-${esc(x.severity)}"><strong>${esc(x.severity)}</strong> ${esc(x.message)}</li>`).join("")}</ul></section>` : ""}
          <section class="ca-articles" aria-label="Knowledge articles">
            <h2>Articles</h2>
            ${a && a.knowledge_articles.length ? a.knowledge_articles.slice(0, 3).map((k) => `
              <details data-id="${esc(k.id)}" ${opened.has(k.id) ? "open" : ""}>
                <summary>${esc(k.title)} <small>${k.score.toFixed(2)}</small></summary>
                <p>${esc(k.snippet)}</p>
                ${k.url ? `<a href="${esc(k.url)}${k.anchor ? "#" + esc(k.anchor) : ""}" target="_blank" rel="noopener">Open article</a>` : ""}
              </details>`).join("") : `<p class="ca-muted">No matching article yet.</p>`}
          </section>
          <section class="ca-transcript" aria-label="Transcript"><ol>${lines}</ol></section>
        </section>`;
    }
  }

  if (!customElements.get("callassist-widget")) customElements.define("callassist-widget", CallassistWidget);
  window.CallassistWidget = CallassistWidget;
})();
