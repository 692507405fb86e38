// Talking to the annotation API (docs/annotation-api.md): its URLs, as the page's data
// attributes give them, and a JSON POST that carries the CSRF token.
import { root } from "./page.js";

export const NEXT_URL = root.dataset.nextUrl;

function csrfToken() {
  const input = root.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

export function assignmentUrl(token, action) {
  return root.dataset.assignmentUrl.replace("TOKEN", token).replace("ACTION", action);
}

// The response's status and its JSON body ({} when it has none); a network failure throws.
export async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty body */ }
  return { status: response.status, data: data };
}

// The pause before a retry.
export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
