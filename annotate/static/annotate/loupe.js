// The loupe (A/B only): both images zoomed by the same factor around the same spot, so
// the same detail of each is under the eye. The mouse moves the spot and the wheel zooms;
// keys toggle, zoom and pan (the key map in labeling.js calls these); on a touch screen two
// fingers pinch and move it, one finger drags it once it is on.
import { $, KIND } from "./page.js";

const ZOOM_MIN = 1.5, ZOOM_MAX = 12;

// Whether it is on, its zoom factor, and the spot it magnifies as fractions of the frame.
export const loupe = { on: false, zoom: 3, x: 0.5, y: 0.5 };

// Loupe panning, by key: a tenth of the image per press.
const PAN = {
  ArrowUp: [0, -0.1], ArrowDown: [0, 0.1], ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0],
  i: [0, -0.1], k: [0, 0.1], j: [-0.1, 0], l: [0.1, 0],
};

function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

// The [dx, dy] a key press pans by (arrows only with Shift), or undefined.
export function panFor(event) {
  const key = event.key;
  return PAN[event.shiftKey && key.startsWith("Arrow") ? key : key.toLowerCase()];
}

// The mouse over a frame moves the spot; the wheel zooms. For each image's frame.
export function followPointer(frame) {
  frame.addEventListener("mousemove", (event) => onLoupeMove(frame, event));
  frame.addEventListener("wheel", onLoupeWheel, { passive: false });
}

function onLoupeMove(frame, event) {
  if (!loupe.on) return;
  const rect = frame.getBoundingClientRect();
  loupe.x = clamp((event.clientX - rect.left) / rect.width, 0, 1);
  loupe.y = clamp((event.clientY - rect.top) / rect.height, 0, 1);
  updateLoupe();
}

function onLoupeWheel(event) {
  if (!loupe.on) return;
  event.preventDefault();
  zoomBy(event.deltaY < 0 ? 1.25 : 0.8);
}

export function zoomBy(factor) {
  loupe.zoom = clamp(loupe.zoom * factor, ZOOM_MIN, ZOOM_MAX);
  updateLoupe();
}

export function toggleLoupe() {
  loupe.on = !loupe.on;
  updateLoupe();
}

// Off, as each new task starts; the zoom is kept.
export function closeLoupe() {
  loupe.on = false;
  updateLoupe();
}

export function panBy(dx, dy) {
  loupe.x = clamp(loupe.x + dx, 0, 1);
  loupe.y = clamp(loupe.y + dy, 0, 1);
  updateLoupe();
}

// Both images get the same transform, so the same spot of each is under the eye.
function updateLoupe() {
  const on = loupe.on && KIND === "ab";
  document.body.classList.toggle("loupe-on", on);
  const toggle = $("lbl-loupe-btn");
  if (toggle) {
    toggle.setAttribute("aria-pressed", String(on));
    $("lbl-loupe-state").textContent = "Loupe " + loupe.zoom.toFixed(1) + "×";
    $("lbl-loupe-state").hidden = $("lbl-zoom-in").hidden = $("lbl-zoom-out").hidden = !on;
  }
  for (const frame of document.querySelectorAll(".lbl-frame")) {
    const img = frame.querySelector("img");
    if (!on) { img.style.transform = ""; continue; }
    const z = loupe.zoom;
    const tx = -(loupe.x * frame.clientWidth * (z - 1));
    const ty = -(loupe.y * frame.clientHeight * (z - 1));
    img.style.transform = "translate(" + tx + "px," + ty + "px) scale(" + z + ")";
  }
}

// Touch: two fingers pinch the shared zoom (turning the loupe on) and move both images
// with their midpoint; one finger drags both once the loupe is on. The frames' CSS
// touch-action keeps the browser from zooming the page instead.
const touch = { points: new Map(), pinch: null, drag: null };

function touchPoint(event) { return { x: event.clientX, y: event.clientY }; }

function onTouchDown(event) {
  const frame = event.target.closest(".lbl-frame");
  if (event.pointerType !== "touch" || !frame || KIND !== "ab") return;
  touch.points.set(event.pointerId, touchPoint(event));
  if (touch.points.size === 2) {
    const [a, b] = touch.points.values();
    if (!loupe.on) { loupe.on = true; updateLoupe(); }
    touch.pinch = { frame: frame, spread: Math.hypot(a.x - b.x, a.y - b.y) || 1, zoom: loupe.zoom };
    touch.drag = null;
  } else if (touch.points.size === 1 && loupe.on) {
    touch.drag = { frame: frame, last: touchPoint(event) };
  }
}

function onTouchMove(event) {
  if (!touch.points.has(event.pointerId)) return;
  touch.points.set(event.pointerId, touchPoint(event));
  if (touch.pinch && touch.points.size === 2) {
    const [a, b] = touch.points.values();
    const rect = touch.pinch.frame.getBoundingClientRect();
    loupe.zoom = clamp(touch.pinch.zoom * Math.hypot(a.x - b.x, a.y - b.y) / touch.pinch.spread, ZOOM_MIN, ZOOM_MAX);
    loupe.x = clamp(((a.x + b.x) / 2 - rect.left) / rect.width, 0, 1);
    loupe.y = clamp(((a.y + b.y) / 2 - rect.top) / rect.height, 0, 1);
    updateLoupe();
  } else if (touch.drag) {
    const now = touchPoint(event), frame = touch.drag.frame, z = loupe.zoom;
    panBy(-(now.x - touch.drag.last.x) / (frame.clientWidth * (z - 1)), -(now.y - touch.drag.last.y) / (frame.clientHeight * (z - 1)));
    touch.drag.last = now;
  }
}

function onTouchUp(event) {
  touch.points.delete(event.pointerId);
  if (touch.points.size < 2) touch.pinch = null;
  if (!touch.points.size) touch.drag = null;
}

// Follows the window's size (the loupe's offsets are in pixels of the frame) and, on A/B
// pages, the loupe's buttons and touch gestures; called once at start-up.
export function setUpLoupe() {
  window.addEventListener("resize", updateLoupe);
  if (KIND !== "ab") return;
  $("lbl-loupe-btn").addEventListener("click", toggleLoupe);
  $("lbl-zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("lbl-zoom-out").addEventListener("click", () => zoomBy(0.8));
  const images = $("lbl-images");
  images.addEventListener("pointerdown", onTouchDown);
  images.addEventListener("pointermove", onTouchMove);
  images.addEventListener("pointerup", onTouchUp);
  images.addEventListener("pointercancel", onTouchUp);
}

