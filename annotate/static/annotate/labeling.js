// The annotator's labeling page: a queue of leased assignments, keyboard-first answers,
// a synchronized loupe for A/B, submissions that are retried until acknowledged, and the
// time each task was really on screen.
// It only knows what the API returns (docs/annotation-api.md): nothing names a model.
(function () {
  "use strict";

  const root = document.getElementById("labeling");
  const KIND = root.dataset.kind;
  const NEXT_URL = root.dataset.nextUrl;
  const PENDING_KEY = "evalhub.pending." + NEXT_URL;
  const HEARTBEAT_MS = 30000;
  const QUEUE_SIZE = 2;
  const TIMING_MAX_MS = 30 * 24 * 3600 * 1000;  // the server's bound (annotate.submission.MAX_TIMING_MS)
  const $ = (id) => document.getElementById(id);

  const state = {
    queue: [],          // assignments leased to us, the first is on screen
    answer: null,       // the answer being built for the current assignment
    questionIndex: 0,   // alignment: the question the keys act on
    loupe: { on: false, zoom: 3, x: 0.5, y: 0.5 },
    pending: loadPending(),
    finished: new Set(),  // tokens answered or skipped here: a stale "next" must not bring them back
    sending: false,
    fetching: null,
    loading: true,  // until the first answer from "next"
    wantProgress: true,  // ask "next" for the counter unless a submitted answer will report it
  };

  document.body.classList.add("kind-" + KIND);

  // ------------------------------------------------------------ HTTP

  function csrfToken() {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function assignmentUrl(token, action) {
    return root.dataset.assignmentUrl.replace("TOKEN", token).replace("ACTION", action);
  }

  async function post(url, body) {
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

  function showError(message) {
    const box = $("lbl-error");
    box.textContent = message;
    box.hidden = !message;
  }

  function setSaveState(text) { $("lbl-save").textContent = text; }

  function setProgress(progress) {
    if (progress) {
      $("lbl-counter").textContent = progress.done + " done · " + progress.remaining + " remaining";
    }
  }

  // ------------------------------------------------------------ the queue

  async function fillQueue() {
    if (state.fetching) return state.fetching;
    state.fetching = (async () => {
      try {
        const { status, data } = await post(NEXT_URL, { count: QUEUE_SIZE, progress: state.wantProgress });
        if (status !== 200) {
          showError(data.detail || "Could not load tasks (" + status + ").");
          return;
        }
        if (data.progress) {
          setProgress(data.progress);
          state.wantProgress = false;
        }
        const known = new Set(state.queue.map((a) => a.token));
        for (const assignment of data.assignments) {
          if (!known.has(assignment.token) && !state.finished.has(assignment.token)) {
            state.queue.push(assignment);
            preload(assignment);
          }
        }
      } catch (e) {
        showError("Network problem while loading tasks; retrying…");
        await sleep(2000);
        state.fetching = null;
        return fillQueue();
      } finally {
        state.fetching = null;
      }
    })();
    return state.fetching;
  }

  function preload(assignment) {
    for (const image of assignment.images) {
      const img = new Image();
      img.src = image.url;
    }
  }

  async function advance() {
    const left = state.queue.shift();
    if (left) state.finished.add(left.token);
    if (state.queue.length) {
      render();
      fillQueue();
      return;
    }
    state.loading = true;
    render();
    // Answers still in flight keep their leases held on the server; once they are
    // acknowledged, a fresh request tells whether anything is really left.
    await untilSaved();
    await fillQueue();
    if (!state.queue.length) await fillQueue();
    state.loading = false;
    render();
  }

  async function untilSaved() {
    for (let waited = 0; state.pending.length && waited < 30000; waited += 100) await sleep(100);
  }

  // ------------------------------------------------------------ rendering

  function current() { return state.queue[0]; }

  function render() {
    const assignment = current();
    $("lbl-task").hidden = !assignment;
    $("lbl-done").hidden = !!assignment || state.loading;
    if (!assignment) { watchTask(null); return; }
    watchTask(assignment.token);
    state.answer = emptyAnswer(assignment);
    state.questionIndex = 0;
    state.loupe.on = false;
    document.body.classList.remove("loupe-on");
    $("lbl-instruction").textContent = instruction(assignment);
    $("lbl-prompt").textContent = assignment.prompt || "";
    $("lbl-prompt").hidden = !assignment.prompt;
    renderImages(assignment);
    renderQuestions(assignment);
    renderChoices(assignment);
    refresh();
  }

  function instruction(assignment) {
    if (assignment.kind === "ab") {
      return assignment.criterion === "flaws"
        ? "Visual flaws: which image has fewer flaws (distorted parts, broken shapes, artifacts)?"
        : "Visual appeal: which image is more appealing? Reject if one is photo-realistic and the other stylized.";
    }
    if (assignment.kind === "best_worst") {
      return "Pick the best image (fewest visual flaws first) and the worst image.";
    }
    return "Answer each question about the image with yes or no.";
  }

  function emptyAnswer(assignment) {
    if (assignment.kind === "best_worst") return { positive: null, negative: null };
    if (assignment.kind === "ab") return { choice: null };
    return { answers: {} };
  }

  function renderImages(assignment) {
    const box = $("lbl-images");
    box.innerHTML = "";
    for (const image of assignment.images) {
      const figure = document.createElement("figure");
      figure.className = "lbl-image";
      figure.dataset.position = image.position;
      const label = document.createElement("span");
      label.className = "lbl-label";
      label.textContent = assignment.kind === "ab" ? (image.position === 0 ? "Left" : "Right") : String(image.position + 1);
      const badge = document.createElement("span");
      badge.className = "lbl-badge";
      const img = document.createElement("img");
      img.src = image.url;
      img.alt = "image " + (image.position + 1);
      img.draggable = false;
      figure.append(label, badge, img);
      figure.addEventListener("click", (event) => onImageClick(image.position, event));
      figure.addEventListener("mousemove", (event) => onLoupeMove(figure, event));
      figure.addEventListener("wheel", (event) => onLoupeWheel(event), { passive: false });
      box.appendChild(figure);
    }
  }

  function renderQuestions(assignment) {
    const list = $("lbl-questions");
    list.innerHTML = "";
    list.hidden = assignment.kind !== "alignment";
    assignment.questions.forEach((question, index) => {
      const item = document.createElement("li");
      item.dataset.id = question.id;
      const text = document.createElement("span");
      text.textContent = question.text;
      const buttons = document.createElement("span");
      buttons.className = "lbl-yesno";
      for (const [value, label] of [["yes", "Yes (Y)"], ["no", "No (N)"]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        button.dataset.value = value;
        button.textContent = label;
        button.addEventListener("click", () => { state.questionIndex = index; answerQuestion(value); });
        buttons.appendChild(button);
      }
      item.append(text, buttons);
      list.appendChild(item);
    });
  }

  function renderChoices(assignment) {
    const box = $("lbl-choices");
    box.innerHTML = "";
    box.hidden = assignment.kind !== "ab";
    const labels = { left: "← Left wins", tie: "↓ Tie", right: "Right wins →", reject: "Reject (R)" };
    for (const choice of assignment.choices) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.dataset.choice = choice;
      button.textContent = labels[choice] || choice;
      button.addEventListener("click", () => choose(choice));
      box.appendChild(button);
    }
  }

  function refresh() {
    const assignment = current();
    if (!assignment) return;
    const answer = state.answer;
    for (const figure of document.querySelectorAll(".lbl-image")) {
      const position = Number(figure.dataset.position);
      const badge = figure.querySelector(".lbl-badge");
      figure.classList.toggle("is-positive", answer.positive === position);
      figure.classList.toggle("is-negative", answer.negative === position);
      const chosenSide = (answer.choice === "left" && position === 0) || (answer.choice === "right" && position === 1);
      figure.classList.toggle("is-chosen", !!chosenSide);
      badge.textContent = answer.positive === position ? "BEST" : answer.negative === position ? "WORST" : "";
      applyLoupe(figure);
    }
    for (const button of document.querySelectorAll("#lbl-choices button")) {
      button.classList.toggle("is-chosen", button.dataset.choice === answer.choice);
    }
    document.querySelectorAll("#lbl-questions li").forEach((item, index) => {
      item.classList.toggle("is-current", index === state.questionIndex);
      const given = answer.answers ? answer.answers[item.dataset.id] : undefined;
      for (const button of item.querySelectorAll("button")) {
        button.classList.toggle("is-chosen", button.dataset.value === given);
      }
    });
    $("lbl-submit").disabled = !complete(assignment, answer);
  }

  function complete(assignment, answer) {
    if (assignment.kind === "best_worst") {
      return answer.positive !== null && answer.negative !== null && answer.positive !== answer.negative;
    }
    if (assignment.kind === "ab") return answer.choice !== null;
    return assignment.questions.every((q) => answer.answers[q.id] !== undefined);
  }

  // ------------------------------------------------------------ answering

  function pick(position, role) {
    const answer = state.answer;
    const assignment = current();
    if (!assignment || assignment.kind !== "best_worst" || position >= assignment.images.length) return;
    if (!role) role = answer.positive === null || answer.positive === position ? "positive" : "negative";
    const other = role === "positive" ? "negative" : "positive";
    if (answer[other] === position) answer[other] = null;
    answer[role] = position;
    refresh();
  }

  function onImageClick(position, event) {
    const assignment = current();
    if (!assignment) return;
    if (assignment.kind === "best_worst") pick(position, event.shiftKey ? "negative" : null);
    else if (assignment.kind === "ab") choose(position === 0 ? "left" : "right");
  }

  function choose(choice) {
    if (!current() || current().kind !== "ab") return;
    state.answer.choice = choice;
    refresh();
  }

  function answerQuestion(value) {
    const assignment = current();
    if (!assignment || assignment.kind !== "alignment") return;
    const question = assignment.questions[state.questionIndex];
    if (!question) return;
    state.answer.answers[question.id] = value;
    if (state.questionIndex < assignment.questions.length - 1) state.questionIndex += 1;
    refresh();
  }

  function submit() {
    const assignment = current();
    if (!assignment || !complete(assignment, state.answer)) return;
    const answer = assignment.kind === "alignment" ? { answers: state.answer.answers } : state.answer;
    state.pending.push({
      token: assignment.token,
      client_id: newClientId(),
      answer: answer,
      timing: watchAnswered(),
      answered_at: Date.now(),  // kept here only: the server gets how long ago, never a time
    });
    savePending();
    sendPending();
    state.wantProgress = false;  // the answer's acknowledgement carries the counter
    advance();
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // Answers wait in localStorage until the server acknowledges them, so a closed tab
  // or a network drop never loses one; the same client_id makes a resend harmless.
  function loadPending() {
    try { return JSON.parse(localStorage.getItem(PENDING_KEY) || "[]"); } catch (e) { return []; }
  }

  function savePending() {
    try { localStorage.setItem(PENDING_KEY, JSON.stringify(state.pending)); } catch (e) { /* private mode */ }
  }

  async function sendPending() {
    if (state.sending) return;
    state.sending = true;
    let delay = 500;
    try {
      while (state.pending.length) {
        const item = state.pending[0];
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
        state.pending.shift();
        savePending();
        if (result.status === 200 || result.status === 201) {
          setProgress(result.data.progress);
          showError("");
        } else {
          state.wantProgress = true;  // nothing reported the counter
          const reason = result.data.detail || (result.status === 409 ? "conflict" : JSON.stringify(result.data));
          showError("Not recorded: " + reason + ".");
        }
      }
      setSaveState("all answers saved");
    } finally {
      state.sending = false;
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

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  // ------------------------------------------------------------ time on screen

  // The task on screen: when it became visible (rendered with the tab visible, or the tab
  // shown later) and how long it was on screen (the tab visible and the window focused),
  // on the page's monotonic clock. Preloaded tasks wait off screen and are not counted.
  const watch = { token: null, visibleAt: null, onScreenMs: 0, since: null, focused: document.hasFocus() };

  function watchTask(token) {
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

  function watchAnswered() {
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

  // ------------------------------------------------------------ skip, report, heartbeat

  async function skip() {
    const assignment = current();
    if (!assignment) return;
    const { status, data } = await post(assignmentUrl(assignment.token, "skip"));
    if (status !== 200) showError(data.detail || "Could not skip.");
    state.wantProgress = true;
    advance();
  }

  function openReport() {
    const assignment = current();
    if (!assignment) return;
    const select = $("lbl-report-position");
    select.innerHTML = "";
    for (const image of assignment.images) {
      const option = document.createElement("option");
      option.value = image.position;
      option.textContent = assignment.kind === "ab" ? (image.position === 0 ? "Left" : "Right") : "Image " + (image.position + 1);
      select.appendChild(option);
    }
    $("lbl-report-reason").value = "";
    $("lbl-report").showModal();
  }

  async function sendReport() {
    const assignment = current();
    $("lbl-report").close();
    if (!assignment) return;
    const body = { position: Number($("lbl-report-position").value), reason: $("lbl-report-reason").value };
    const { status, data } = await post(assignmentUrl(assignment.token, "report"), body);
    if (status !== 201 && status !== 200) showError(data.detail || "Could not send the report.");  // 200: reported before
    state.wantProgress = true;
    advance();
  }

  async function heartbeat() {
    for (const assignment of state.queue) {
      try {
        const { status, data } = await post(assignmentUrl(assignment.token, "heartbeat"));
        if (status === 409 && assignment === current()) {
          showError((data.detail || "This task is no longer yours") + "; moving on.");
          advance();
          return;
        }
      } catch (e) { /* the next beat tries again */ }
    }
  }

  // ------------------------------------------------------------ loupe (A/B)

  function onLoupeMove(figure, event) {
    if (!state.loupe.on) return;
    const rect = figure.getBoundingClientRect();
    state.loupe.x = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    state.loupe.y = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
    document.querySelectorAll(".lbl-image").forEach(applyLoupe);
  }

  function onLoupeWheel(event) {
    if (!state.loupe.on) return;
    event.preventDefault();
    zoomBy(event.deltaY < 0 ? 1.25 : 0.8);
  }

  function zoomBy(factor) {
    state.loupe.zoom = Math.min(12, Math.max(1.5, state.loupe.zoom * factor));
    document.querySelectorAll(".lbl-image").forEach(applyLoupe);
  }

  function toggleLoupe() {
    state.loupe.on = !state.loupe.on;
    document.body.classList.toggle("loupe-on", state.loupe.on);
    document.querySelectorAll(".lbl-image").forEach(applyLoupe);
  }

  function panBy(dx, dy) {
    state.loupe.x = Math.min(1, Math.max(0, state.loupe.x + dx));
    state.loupe.y = Math.min(1, Math.max(0, state.loupe.y + dy));
    document.querySelectorAll(".lbl-image").forEach(applyLoupe);
  }

  // Both images get the same transform, so the same spot of each is under the eye.
  function applyLoupe(figure) {
    const img = figure.querySelector("img");
    if (!img) return;
    if (!state.loupe.on) { img.style.transform = ""; return; }
    const z = state.loupe.zoom;
    const w = figure.clientWidth, h = figure.clientHeight;
    const tx = -(state.loupe.x * w * (z - 1));
    const ty = -(state.loupe.y * h * (z - 1));
    img.style.transform = "translate(" + tx + "px," + ty + "px) scale(" + z + ")";
  }

  // ------------------------------------------------------------ keyboard

  const KEYS = {
    best_worst: [
      ["1–5", "mark that image: first press the best, then the worst"],
      ["Shift+1–5", "mark that image as the worst"],
      ["Backspace", "clear the marks"],
    ],
    ab: [
      ["←", "left wins"], ["↓", "tie"], ["→", "right wins"], ["R", "reject"],
      ["Z", "loupe on/off (mouse or W A S D pans both images)"], ["+ / −", "zoom in / out"],
    ],
    alignment: [["Y / N", "answer the highlighted question, then go to the next"], ["↑ / ↓", "move between questions"]],
    all: [["Enter", "submit"], ["S", "skip"], ["B", "report a broken image"], ["G or ?", "guidelines"]],
  };

  function renderKeys() {
    const list = $("lbl-keys-list");
    for (const [key, text] of KEYS[KIND].concat(KEYS.all)) {
      const item = document.createElement("li");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      item.append(kbd, " " + text);
      list.appendChild(item);
    }
  }

  function onKey(event) {
    if (event.target.matches("input, textarea, select") && event.key !== "Enter" && event.key !== "Escape") return;
    if ($("lbl-report").open) {
      if (/^[1-5]$/.test(event.key)) { $("lbl-report-position").value = Number(event.key) - 1; }
      if (event.key === "Enter") { event.preventDefault(); sendReport(); }
      return;
    }
    if ($("lbl-guidelines").open || event.ctrlKey || event.metaKey || event.altKey) return;
    const assignment = current();
    const key = event.key;
    if (key === "?" || key === "g" || key === "G") { $("lbl-guidelines").showModal(); event.preventDefault(); return; }
    if (!assignment) return;
    let handled = true;
    if (key === "Enter") submit();
    else if (key === "s" || key === "S") {
      if (state.loupe.on && assignment.kind === "ab") panBy(0, 0.1); else skip();
    } else if (key === "b" || key === "B") openReport();
    else if (assignment.kind === "best_worst" && /^Digit[1-5]$/.test(event.code)) {
      pick(Number(event.code.slice(5)) - 1, event.shiftKey ? "negative" : null);
    } else if (assignment.kind === "best_worst" && key === "Backspace") {
      state.answer = emptyAnswer(assignment); refresh();
    } else if (assignment.kind === "ab" && key === "ArrowLeft") choose("left");
    else if (assignment.kind === "ab" && key === "ArrowRight") choose("right");
    else if (assignment.kind === "ab" && key === "ArrowDown") choose("tie");
    else if (assignment.kind === "ab" && (key === "r" || key === "R")) choose("reject");
    else if (assignment.kind === "ab" && (key === "z" || key === "Z")) toggleLoupe();
    else if (assignment.kind === "ab" && (key === "+" || key === "=")) zoomBy(1.25);
    else if (assignment.kind === "ab" && key === "-") zoomBy(0.8);
    else if (assignment.kind === "ab" && state.loupe.on && "wad".includes(key.toLowerCase())) {
      const d = { w: [0, -0.1], a: [-0.1, 0], d: [0.1, 0] }[key.toLowerCase()];
      panBy(d[0], d[1]);
    } else if (assignment.kind === "alignment" && (key === "y" || key === "Y")) answerQuestion("yes");
    else if (assignment.kind === "alignment" && (key === "n" || key === "N")) answerQuestion("no");
    else if (assignment.kind === "alignment" && key === "ArrowDown") {
      state.questionIndex = Math.min(state.questionIndex + 1, assignment.questions.length - 1); refresh();
    } else if (assignment.kind === "alignment" && key === "ArrowUp") {
      state.questionIndex = Math.max(state.questionIndex - 1, 0); refresh();
    } else handled = false;
    if (handled) event.preventDefault();
  }

  // ------------------------------------------------------------ start

  $("lbl-submit").addEventListener("click", submit);
  $("lbl-skip-btn").addEventListener("click", skip);
  $("lbl-report-btn").addEventListener("click", openReport);
  $("lbl-report-send").addEventListener("click", sendReport);
  $("lbl-report-cancel").addEventListener("click", () => $("lbl-report").close());
  $("lbl-guidelines-btn").addEventListener("click", () => $("lbl-guidelines").showModal());
  document.addEventListener("keydown", onKey);
  document.addEventListener("visibilitychange", watchUpdate);
  window.addEventListener("focus", onFocusChange);
  window.addEventListener("blur", onFocusChange);
  window.addEventListener("online", sendPending);
  setInterval(heartbeat, HEARTBEAT_MS);
  renderKeys();
  state.pending.forEach((item) => state.finished.add(item.token));
  sendPending();
  fillQueue().then(() => { state.loading = false; render(); });
})();
