// Supervisor wall board: live calls and alerts. Rows are patched in place (no full re-render).
(() => {
  const rows = new Map();
  const tbody = document.querySelector("#calls tbody");
  const alerts = document.getElementById("alerts");
  const conn = document.getElementById("conn");
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (t) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`;
  let retry = 0;

  function upsert(call) {
    let tr = rows.get(call.call_id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.callId = call.call_id;
      tr.innerHTML = "<td class=agent></td><td class=customer></td><td class=duration></td><td class=intent></td><td class=sentiment></td><td class=alerts></td>";
      tbody.appendChild(tr);
      rows.set(call.call_id, tr);
    }
    const c = tr.children;
    c[0].textContent = call.agent_id;
    c[1].textContent = `${call.customer.name || call.customer.id || "—"}${call.customer.tier ? " · " + call.customer.tier : ""}`;
    c[2].textContent = fmt(call.call_time);
    c[3].textContent = call.intent.replace(/_/g, " ");
    c[4].textContent = `${call.sentiment >= 0 ? "+" : ""}${call.sentiment.toFixed(2)} ${call.sentiment_trend}`;
    c[4].dataset.trend = call.sentiment_trend;
    c[5].textContent = call.alert_count;
    tr.classList.toggle("has-alerts", call.alert_count > 0);
  }

  function onEvent(ev) {
    if (ev.type === "snapshot") { tbody.textContent = ""; rows.clear(); ev.calls.forEach(upsert); }
    else if (ev.type === "call_started" || ev.type === "call_update") upsert(ev.call);
    else if (ev.type === "call_ended") { const tr = rows.get(ev.call_id); if (tr) { tr.remove(); rows.delete(ev.call_id); } }
    else if (ev.type === "alert") {
      const li = document.createElement("li");
      li.className = `alert alert-${ev.severity}`;
      li.innerHTML = `<strong>${esc(ev.agent_id)}</strong> ${esc(ev.message)} <small>${esc(ev.call_id)} · ${fmt(ev.timestamp)}</small>`;
      alerts.prepend(li);
      while (alerts.children.length > 100) alerts.lastChild.remove();
    }
  }

  function connect() {
    conn.textContent = "connecting…";
    const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/v1/supervisor`);
    ws.onopen = () => { retry = 0; conn.textContent = "live"; conn.dataset.state = "live"; };
    ws.onmessage = (e) => onEvent(JSON.parse(e.data));
    ws.onclose = () => { conn.textContent = "reconnecting…"; conn.dataset.state = "reconnecting"; setTimeout(connect, Math.min(15000, 500 * 2 ** retry++)); };
  }
  connect();
})();
