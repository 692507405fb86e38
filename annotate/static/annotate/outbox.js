// The outbox: answers waiting for the server's acknowledgement. They wait in localStorage
// until the server acknowledges them, so a closed tab or a network drop never loses one;
// each carries a client id, so a resend is harmless, and its timing (on_screen.js). Network
// failures, 5xx and 429 are retried with a growing delay; any other reply settles the answer.
import { NEXT_URL, assignmentUrl, post, sleep } from "./api.js";
import { setSaveState } from "./page.js";

const PENDING_KEY = "evalhub.pending." + NEXT_URL;
const TIMING_MAX_MS = 30 * 24 * 3600 * 1000;  // the server's bound (annotate.submission.MAX_TIMING_MS)

// The answers not yet acknowledged, oldest first, as stored: { token, client_id, answer,
// timing, answered_at }. Other modules read it; only this one changes it.
export const pendingAnswers = loadPending();
let sending = false;

function loadPending() {
  try { return JSON.parse(localStorage.getItem(PENDING_KEY) || "[]"); } catch (e) { return []; }
}

function savePending() {
  try { localStorage.setItem(PENDING_KEY, JSON.stringify(pendingAnswers)); } catch (e) { /* private mode */ }
}

function newClientId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
}

// Puts an answer in the outbox, stored at once; sendPending() sends it.
export function keepAnswer(token, answer, timing) {
  pendingAnswers.push({
    token: token,
    client_id: newClientId(),
    answer: answer,
    timing: timing,
    answered_at: Date.now(),  // kept here only: the server gets how long ago, never a time
  });
  savePending();
}

// Sends the waiting answers one by one until none is left; onReply(status, data) hears
// each reply that settles one, after it has left the outbox. A second call while one is
// sending returns at once: the running one sends what was added.
export async function sendPending(onReply) {
  if (sending) return;
  sending = true;
  let delay = 500;
  try {
    while (pendingAnswers.length) {
      const item = pendingAnswers[0];
      setSaveState("saving…");
      let result;
      try {
        result = await post(assignmentUrl(item.token, "submit"), submission(item));
      } catch (e) {
        result = { status: 0, data: {} };
      }
      if (result.status === 0 || result.status >= 500 || result.status === 429) {
        setSaveState("connection problem — retrying…");
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
        continue;
      }
      delay = 500;
      pendingAnswers.shift();
      savePending();
      onReply(result.status, result.data);
    }
    setSaveState("all answers saved");
  } finally {
    sending = false;
  }
}

// Every attempt sends the same answer and durations, and how long ago the answer was made.
function submission(item) {
  const body = { client_id: item.client_id, answer: item.answer };
  if (item.timing) {
    const timing = Object.assign({}, item.timing, { answered_ms_ago: Math.max(0, Date.now() - item.answered_at) });
    if (Object.values(timing).every((ms) => ms <= TIMING_MAX_MS)) body.timing = timing;
  }
  return body;
}
