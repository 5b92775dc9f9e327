"use strict";
// Sign-in for the bundled pages when the server has auth on. No secret lives in any static
// file: the user pastes an API key or token once, the server answers with an HttpOnly
// SameSite=Strict session cookie, and the page's API calls and WebSockets carry it.
// In open development mode /v1/auth/whoami answers 200 and nothing is shown.
(() => {
  const show = (message) => {
    if (document.getElementById("ca-login")) return;
    const box = document.createElement("form");
    box.id = "ca-login";
    box.className = "ca-login";
    box.setAttribute("aria-labelledby", "ca-login-title");
    box.innerHTML = `
      <h2 id="ca-login-title">Sign in to callassist</h2>
      <p class="ca-login-why"></p>
      <label>API key or token <input name="credential" type="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button>
      <p class="ca-login-error" role="alert"></p>`;
    box.querySelector(".ca-login-why").textContent = message;
    box.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = box.querySelector(".ca-login-error");
      error.textContent = "";
      const credential = box.elements.credential.value.trim();
      const res = await fetch("/v1/auth/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ credential }),
      });
      if (res.ok) { location.reload(); return; }
      const body = await res.json().catch(() => ({}));
      error.textContent = (body.error && body.error.message) || `sign-in failed (${res.status})`;
    });
    document.body.prepend(box);
    box.elements.credential.focus();
  };

  const signOut = () => {
    const link = document.createElement("button");
    link.type = "button";
    link.className = "ca-signout";
    link.textContent = "Sign out";
    link.addEventListener("click", async () => {
      await fetch("/v1/auth/session", { method: "DELETE" });
      location.reload();
    });
    document.body.append(link);
  };

  const check = async () => {
    let res;
    try { res = await fetch("/v1/auth/whoami"); } catch { return; }
    if (res.status === 401) { show("This server requires a credential (your administrator gives you one)."); return; }
    const body = await res.json().catch(() => ({}));
    if (body.mode === "auth") signOut();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", check);
  else check();
  window.callassistShowLogin = show; // pages call it on a 401/403 from the API
})();
