// Time on screen: for the task on screen, when it became visible (rendered with the tab
// visible, or the tab shown later) and how long it was on screen (the tab visible and the
// window focused), on the page's monotonic clock. Preloaded tasks wait off screen and are
// not counted. The durations travel with the answer (outbox.js).

const watch = { token: null, visibleAt: null, onScreenMs: 0, since: null, focused: document.hasFocus() };

// Starts counting for the task now on screen (null: none); the same token again changes nothing.
export function watchTask(token) {
  if (watch.token === token) return;
  Object.assign(watch, { token: token, visibleAt: null, onScreenMs: 0, since: null });
  watchUpdate();
}

// Called on every change of visibility or focus; returns the moment it looked.
function watchUpdate() {
  const now = performance.now();
  if (watch.since !== null) watch.onScreenMs += now - watch.since;
  watch.since = null;
  if (!watch.token) return now;
  const visible = document.visibilityState === "visible";
  if (visible && watch.visibleAt === null) watch.visibleAt = now;
  if (visible && watch.focused) watch.since = now;
  return now;
}

// The task was answered: its durations, in whole milliseconds; the watch stops.
export function watchAnswered() {
  const now = watchUpdate();
  const shown = watch.visibleAt === null ? 0 : Math.round(now - watch.visibleAt);
  const timing = { shown_for_ms: shown, on_screen_ms: Math.min(Math.round(watch.onScreenMs), shown) };
  watchTask(null);
  return timing;
}

function onFocusChange(event) {
  if (event.target !== window) return;  // an element's focus, not the window's
  watch.focused = event.type === "focus";
  watchUpdate();
}

// Follows the tab's visibility and the window's focus; called once at start-up.
export function watchWindow() {
  document.addEventListener("visibilitychange", watchUpdate);
  window.addEventListener("focus", onFocusChange);
  window.addEventListener("blur", onFocusChange);
}
