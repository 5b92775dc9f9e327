// KPI dashboard: figures from /v1/analytics/*, charts drawn on <canvas> (no library, no CDN).
(() => {
  const $ = (id) => document.getElementById(id);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim() || "#888";
  const PALETTE = [color("--accent"), color("--ok"), color("--warn"), color("--bad"), "#b388ff"];
  const pct = (v, digits = 1) => (v == null ? "n/a" : `${(v * 100).toFixed(digits)}%`);
  const num = (v, digits = 0) => (v == null ? "n/a" : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }));
  const money = (v) => (v == null ? "n/a" : `$${Math.round(v).toLocaleString()}`);

  async function getJSON(url, options) {
    const res = await fetch(url, options);
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error((body.error && body.error.message) || res.statusText), { status: res.status, body });
    return body;
  }

  // ------------------------------------------------------------------ charts

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 400;
    const height = Number(canvas.getAttribute("height")) || 220;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, width, height };
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // Bars (first series) and lines (other series, optionally on a right axis).
  function chart(canvas, labels, series, { yFormat = (v) => num(v), rightFormat = (v) => num(v) } = {}) {
    const { ctx, width, height } = setup(canvas);
    const pad = { l: 46, r: series.some((s) => s.right) ? 46 : 10, t: 22, b: 22 };
    const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
    const left = series.filter((s) => !s.right), right = series.filter((s) => s.right);
    const maxOf = (list) => niceMax(Math.max(0, ...list.flatMap((s) => s.values.filter((v) => v != null))));
    const yMaxL = series.find((s) => !s.right && s.max) ? left[0].max : maxOf(left);
    const yMaxR = right.length ? (right[0].max || maxOf(right)) : 1;
    ctx.strokeStyle = "#2b3a4a"; ctx.fillStyle = color("--muted");
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + h - (h * i) / 4;
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + w, y); ctx.stroke();
      ctx.textAlign = "right"; ctx.fillText(yFormat((yMaxL * i) / 4), pad.l - 4, y + 3);
      if (right.length) { ctx.textAlign = "left"; ctx.fillText(rightFormat((yMaxR * i) / 4), pad.l + w + 4, y + 3); }
    }
    const n = labels.length || 1;
    const step = w / n;
    ctx.textAlign = "center";
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(w / 60))));
    labels.forEach((label, i) => { if (i % every === 0) ctx.fillText(label, pad.l + step * (i + 0.5), height - 6); });
    series.forEach((s, k) => {
      const max = s.right ? yMaxR : yMaxL;
      const y = (v) => pad.t + h - (h * v) / max;
      ctx.fillStyle = ctx.strokeStyle = s.color || PALETTE[k % PALETTE.length];
      if (s.kind === "bar") {
        s.values.forEach((v, i) => { if (v != null) ctx.fillRect(pad.l + step * i + step * 0.15, y(v), step * 0.7, pad.t + h - y(v)); });
      } else {
        ctx.lineWidth = 2; ctx.beginPath(); let open = false;
        s.values.forEach((v, i) => {
          if (v == null) { open = false; return; }
          const x = pad.l + step * (i + 0.5);
          if (open) ctx.lineTo(x, y(v)); else { ctx.moveTo(x, y(v)); open = true; }
        });
        ctx.stroke(); ctx.lineWidth = 1;
      }
    });
    // legend
    let x = pad.l;
    series.forEach((s, k) => {
      ctx.fillStyle = s.color || PALETTE[k % PALETTE.length];
      ctx.fillRect(x, 6, 10, 10);
      ctx.fillStyle = color("--text"); ctx.textAlign = "left";
      ctx.fillText(s.name, x + 14, 15);
      x += ctx.measureText(s.name).width + 30;
    });
  }

  function hbars(canvas, labels, values, format) {
    const rowH = 24;
    canvas.setAttribute("height", Math.max(60, labels.length * rowH + 10));
    const { ctx, width } = setup(canvas);
    const pad = { l: Math.min(320, width * 0.45), r: 60 };
    const max = niceMax(Math.max(...values, 0));
    labels.forEach((label, i) => {
      const y = 5 + i * rowH;
      ctx.fillStyle = color("--text"); ctx.textAlign = "right";
      const text = label.length > 48 ? `${label.slice(0, 47)}…` : label;
      ctx.fillText(text, pad.l - 8, y + 15);
      const bw = ((width - pad.l - pad.r) * values[i]) / max;
      ctx.fillStyle = PALETTE[0]; ctx.fillRect(pad.l, y + 4, bw, rowH - 8);
      ctx.fillStyle = color("--muted"); ctx.textAlign = "left";
      ctx.fillText(format(values[i]), pad.l + bw + 6, y + 15);
    });
  }

  // ------------------------------------------------------------------ sections

  function tile(label, value, sub) {
    const div = document.createElement("div");
    div.className = "tile";
    div.innerHTML = '<div class="label"></div><div class="value"></div><div class="sub"></div>';
    div.children[0].textContent = label; div.children[1].textContent = value; div.children[2].textContent = sub || "";
    return div;
  }

  function row(table, cells) {
    const tr = document.createElement("tr");
    cells.forEach((c) => {
      const td = document.createElement("td");
      if (c instanceof Node) td.append(c); else if (typeof c === "object" && c) { td.textContent = c.text; if (c.num) td.className = "num"; if (c.cls) td.classList.add(c.cls); }
      else td.textContent = c == null ? "" : String(c);
      tr.append(td);
    });
    table.tBodies[0].append(tr);
  }

  function clear(table, empty) {
    table.tBodies[0].textContent = "";
    if (empty) { const tr = table.tBodies[0].insertRow(); const td = tr.insertCell(); td.colSpan = table.tHead.rows[0].cells.length; td.className = "empty"; td.textContent = empty; }
  }

  function renderKpis(k) {
    const tiles = $("tiles");
    tiles.textContent = "";
    const qa = k.qa;
    tiles.append(
      tile("Calls", num(k.calls), `${num(k.customers)} customers`),
      tile("AHT", k.aht_s == null ? "n/a" : `${Math.floor(k.aht_s / 60)}:${String(Math.round(k.aht_s % 60)).padStart(2, "0")}`, "talk time"),
      tile("First-contact resolution", pct(k.fcr), `no repeat within 7 days · ${num(k.fcr_eligible)} judged`),
      tile("Repeat rate", pct(k.repeat_rate), "same customer, same issue"),
      tile("Service level", pct(k.service_level), k.service_level == null ? "no routing data" : `answered ≤ ${k.service_level_threshold_s} s`),
      tile("Avg sentiment", k.avg_sentiment == null ? "n/a" : k.avg_sentiment.toFixed(2), "customer, −1..1"),
      tile("QA score", qa ? num(qa.mean, 1) : "n/a", qa ? `σ ${num(qa.std, 1)} · ${num(qa.scorecards)} scorecards` : "no QA scorecards"),
      tile("Churn risk", `${num(k.churn.high)} high`, `${num(k.churn.medium)} medium of ${num(k.churn.customers_scored)}`),
    );
    const days = k.daily.map((d) => d.day.slice(5));
    chart($("c-volume"), days, [
      { name: "calls", kind: "bar", values: k.daily.map((d) => d.calls) },
      { name: "AHT (s)", values: k.daily.map((d) => d.aht_s), right: true, color: color("--warn") },
    ]);
    chart($("c-rates"), days, [
      { name: "FCR", values: k.daily.map((d) => d.fcr), max: 1 },
      { name: "repeat rate", values: k.daily.map((d) => d.repeat_rate), color: color("--bad") },
      { name: "service level", values: k.daily.map((d) => d.service_level), color: color("--ok") },
    ].map((s) => ({ ...s, max: 1 })), { yFormat: (v) => pct(v, 0) });
    if (qa && qa.scorecards) {
      chart($("c-qa"), qa.histogram.map((b) => `${b.from}`), [{ name: `scorecards (mean ${num(qa.mean, 1)}, σ ${num(qa.std, 1)})`, kind: "bar", values: qa.histogram.map((b) => b.count) }]);
    } else {
      const { ctx, width } = setup($("c-qa")); ctx.fillStyle = color("--muted"); ctx.textAlign = "center"; ctx.fillText("No QA scorecards in this period", width / 2, 100);
    }
    chart($("c-churn"), k.churn.histogram.map((_, i) => (i / 10).toFixed(1)), [{ name: "customers by churn score", kind: "bar", values: k.churn.histogram, color: color("--bad") }]);
    const top = k.top_clusters || [];
    hbars($("c-clusters"), top.map((c) => c.label), top.map((c) => c.share), (v) => pct(v));
    const table = $("clusters");
    clear(table, top.length ? null : "No clusters yet");
    top.forEach((c) => row(table, [c.label, { text: pct(c.share), num: true }, { text: num(c.size), num: true }, { text: num(c.aht_s), num: true }, { text: c.avg_sentiment == null ? "" : c.avg_sentiment.toFixed(2), num: true }, { text: pct(c.repeat_rate), num: true }, (c.samples || [])[0] || ""]));
    const alerts = $("alerts");
    alerts.textContent = "";
    (k.alerts || []).forEach((a) => {
      const li = document.createElement("li");
      li.textContent = a.message;
      const small = document.createElement("small");
      small.textContent = `${a.day} · ${a.basis}${a.article ? ` · article: ${a.article}` : ""}${a.samples && a.samples[0] ? ` · “${a.samples[0]}”` : ""}`;
      li.append(small); alerts.append(li);
    });
    if (!alerts.children.length) { const li = document.createElement("li"); li.className = "empty"; li.textContent = "None raised"; li.style.borderColor = "transparent"; alerts.append(li); }
    $("status").textContent = `computed ${new Date(k.computed_at * 1000).toLocaleString()}`;
  }

  async function renderChurn() {
    const body = await getJSON("/v1/analytics/churn?limit=10&min_score=0.4");
    const table = $("churn");
    clear(table, body.customers.length ? null : "No customer at medium or high risk");
    body.customers.forEach((c) => {
      const why = document.createElement("span");
      c.factors.filter((f) => f.strength > 0).sort((a, b) => b.contribution - a.contribution).forEach((f) => {
        const s = document.createElement("span"); s.className = "factor"; s.title = f.detail;
        s.textContent = `${f.factor.replace(/_/g, " ")} ${f.value} (+${f.contribution.toFixed(2)})`; why.append(s);
      });
      row(table, [c.customer_id, { text: c.score.toFixed(2), num: true }, { text: c.urgency, cls: `urgency-${c.urgency}` }, { text: money(c.clv), num: true }, why, c.recommended_actions[0]]);
    });
  }

  async function renderRepeats() {
    const body = await getJSON("/v1/analytics/repeats?limit=10");
    $("lookback").textContent = body.lookback_days;
    $("repeat-note").textContent = `${num(body.groups)} customers called ${body.threshold}+ times about one issue. Grouping by category label alone (the seed) would give ${num(body.seed_category_groups)} groups, ${num(body.category_groups_mixing_issues)} of them mixing different issues.`;
    const table = $("repeats");
    clear(table, body.repeat_callers.length ? null : "No repeat callers");
    body.repeat_callers.forEach((g) => row(table, [g.customer_id, { text: g.calls, num: true }, g.issue.label || g.category, g.agents.join(", "), g.resolutions_attempted.join("; "), { text: money(g.clv), num: true }]));
  }

  async function renderCases() {
    const body = await getJSON("/v1/analytics/retention/cases?limit=10");
    const table = $("cases");
    clear(table, body.cases.length ? null : "No retention case opened");
    body.cases.forEach((c) => row(table, [c.customer_id, { text: c.score.toFixed(2), num: true }, { text: money(c.clv), num: true }, c.status, c.agent_id || ""]));
  }

  // ------------------------------------------------------------------ ROI

  const ROI_FIELDS = {
    seats: "Seats", calls_per_agent_per_day: "Calls / agent / day", working_days: "Working days", aht_before_min: "AHT before (min)", aht_after_min: "AHT after (min)",
    loaded_cost_per_hour: "Loaded cost / hour", paid_hours_per_year: "Paid hours / year", overstaffing_before: "Overstaffing before", overstaffing_after: "Overstaffing after",
    qa_analyst_salary: "QA analyst salary", qa_headcount_reduction: "QA headcount reduction", transfer_rate_before: "Transfer rate before", transfer_rate_after: "Transfer rate after",
    cost_per_transfer: "Cost per transfer", at_risk_customers: "At-risk customers", retention_rate: "Retention rate", customer_value: "Customer value",
    platform_cost: "Platform cost", integration_cost: "Integration cost", training_cost: "Training cost",
  };

  function roiForm(inputs) {
    const form = $("roi-form");
    form.textContent = "";
    Object.entries(ROI_FIELDS).forEach(([key, label]) => {
      const l = document.createElement("label"); l.textContent = label;
      const input = document.createElement("input"); input.type = "number"; input.step = "any"; input.name = key; input.value = inputs[key];
      input.addEventListener("change", () => computeRoi());
      l.append(input); form.append(l);
    });
  }

  function renderRoi(r) {
    const out = $("roi-out");
    out.textContent = "";
    const table = document.createElement("table");
    table.innerHTML = "<thead><tr><th>Line</th><th>Per year</th></tr></thead><tbody></tbody>";
    const lines = [["Handle-time savings", r.savings.handle_time], ["Staffing savings", r.savings.staffing], ["QA savings", r.savings.qa], ["Transfer savings", r.savings.transfers],
      ["Total savings", r.total_savings], ["Retention revenue", r.retention_revenue], ["First-year cost", r.first_year_cost], ["Net benefit", r.net_benefit]];
    lines.forEach(([name, v]) => row(table, [name, { text: money(v), num: true }]));
    row(table, ["ROI", { text: r.roi_percent == null ? "n/a" : `${num(r.roi_percent, 0)}%`, num: true }]);
    row(table, ["Payback", { text: r.payback_months == null ? "n/a" : `${r.payback_months.toFixed(2)} months`, num: true }]);
    out.append(table);
    const note = document.createElement("p"); note.className = "hint";
    const s = r.seed;
    note.textContent = `The seed printed ${money(s.printed.total_savings)} savings, ${money(s.printed.retention_revenue)} revenue, ${s.printed.roi_percent}% ROI and ${s.printed.payback_months} months payback; its figures imply a first-year cost of ${money(s.implied_first_year_cost)}. Everything above is computed from the inputs.`;
    out.append(note);
    if (Object.keys(r.measured_inputs || {}).length) {
      const m = document.createElement("p"); m.className = "hint";
      m.textContent = `Measured in the store: ${Object.entries(r.measured_inputs).map(([k, v]) => `${k} ${v}`).join(", ")}`;
      out.append(m);
    }
  }

  async function computeRoi(fromStore = false) {
    const params = new URLSearchParams();
    new FormData($("roi-form")).forEach((v, k) => { if (v !== "") params.set(k, v); });
    if (fromStore) { ["seats", "calls_per_agent_per_day", "aht_after_min", "at_risk_customers"].forEach((k) => params.delete(k)); params.set("from_store", "true"); }
    try {
      const r = await getJSON(`/v1/analytics/roi?${params}`);
      if (fromStore) roiForm(r.inputs);
      renderRoi(r);
    } catch (err) { $("roi-out").textContent = err.message; }
  }

  // ------------------------------------------------------------------ wiring

  async function load() {
    const period = $("period").value;
    try {
      renderKpis(await getJSON(`/v1/analytics/kpis?period_days=${period}`));
      await Promise.all([renderChurn(), renderRepeats(), renderCases()]);
    } catch (err) {
      $("status").textContent = err.status === 503 ? "No analysis yet: press “Run analysis now”." : `error: ${err.message}`;
    }
  }

  $("period").addEventListener("change", load);
  $("run").addEventListener("click", async () => {
    $("status").textContent = "running…"; $("run").disabled = true;
    try { const r = await getJSON("/v1/analytics/run", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }); $("status").textContent = `analysed ${num(r.calls)} calls in ${r.seconds} s`; await load(); }
    catch (err) { $("status").textContent = `error: ${err.message}`; }
    finally { $("run").disabled = false; }
  });
  $("roi-measured").addEventListener("click", () => computeRoi(true));
  let resize;
  window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(load, 250); });

  getJSON("/v1/analytics/roi").then((r) => { roiForm(r.inputs); renderRoi(r); }).catch(() => {});
  load();
  setInterval(load, 60_000);
})();
