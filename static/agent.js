"use strict";
// Out of agent.html: the page runs under a CSP without inline script.
(() => {
  // Attributes first, then the script: the element connects once, to the right agent.
  const params = new URLSearchParams(location.search);
  const widget = document.getElementById("widget");
  widget.setAttribute("agent-id", params.get("agent") || "agent-1");
  if (params.get("theme")) widget.setAttribute("theme", params.get("theme"));
  if (params.get("max-backoff")) widget.setAttribute("max-backoff", params.get("max-backoff"));
})();
