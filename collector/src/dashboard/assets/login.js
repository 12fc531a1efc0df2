// The login page: checks the token with GET /api/v1/whoami (Bearer) so a mistake is shown in
// place, then submits the form to POST /api/v1/login, which sets the cookie and redirects to
// the dashboard.

import { initTheme } from "./app.js";

initTheme();
const form = document.getElementById("login");
const error = form.querySelector(".error");
const say = text => { error.textContent = text; error.hidden = !text; };
const reasons = {
  invalid: "That token is not valid: unknown, revoked or expired.",
  throttled: "Too many failed attempts from this address; wait a minute and try again.",
  expired: "Your session ended; log in again.",
};
const given = new URLSearchParams(location.search).get("error");
if (given) say(reasons[given] || "Log in failed.");

form.addEventListener("submit", async event => {
  event.preventDefault();
  const token = form.token.value.trim();
  if (!token) return;
  say("");
  let response;
  try {
    response = await fetch("/api/v1/whoami", { headers: { Authorization: `Bearer ${token}` } });
  } catch {
    say("Cannot reach the collector.");
    return;
  }
  if (response.status === 401) { say(reasons.invalid); return; }
  if (response.status === 429) { say(reasons.throttled); return; }
  form.token.value = token;
  form.submit();
});
