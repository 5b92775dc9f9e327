"use strict";
// Out of index.html: the page runs under a CSP without inline script.
(() => {
  document.getElementById("run-demo").addEventListener("click", async () => {
    const status = document.getElementById("demo-status");
    status.textContent = "starting…";
    const res = await fetch("/v1/demo/run", {method: "POST"});
    const body = await res.json();
    status.textContent = res.ok ? `streaming ${body.started.length} calls` : (body.error && body.error.message) || "failed";
  });
})();
