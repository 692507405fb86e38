// The annotator's labeling page: the queue of leased assignments, the task on screen and
// its answer (by keyboard, mouse or touch), the counter, and start-up. It only knows what
// the API returns (docs/annotation-api.md): nothing names a model. Its parts are native ES
// modules beside this file: page.js, api.js, messages.js, assignment.js, task_view.js,
// loupe.js, outbox.js, on_screen.js and report.js, each saying what it holds.
//
// The imports are relative URLs. In production collectstatic rewrites them to the hashed
// names (evalhub/static_files.py), so a release never pairs this file with an old module.
import { NEXT_URL, assignmentUrl, post, sleep } from "./api.js";
import { emptyAnswer, imageName, missing } from "./assignment.js";
import { showCompletion } from "./completion.js";
import { closeLoupe, loupe, panBy, panFor, setUpLoupe, toggleLoupe, zoomBy } from "./loupe.js";
import { MESSAGES } from "./messages.js";
import { watchAnswered, watchTask, watchWindow } from "./on_screen.js";
import { keepAnswer, pendingAnswers, sendPending } from "./outbox.js";
import { $, KIND, showError } from "./page.js";
import { onReportKey, openReport, setUpReport } from "./report.js";
import { renderTask } from "./task_view.js";

const HEARTBEAT_MS = 30000;
const QUEUE_SIZE = 2;

const state = {
  queue: [],          // assignments leased to us, the first is on screen
  answer: null,       // the answer being built for the current assignment
  questionIndex: 0,   // alignment: the question the keys act on
  explain: false,     // a submit was tried with the answer incomplete: say what is missing
  finished: new Set(),  // tokens answered or skipped here: a stale "next" must not bring them back
  fetching: null,
  loading: true,  // until the first answer from "next"
  wantProgress: true,  // ask "next" for the counter unless a submitted answer will report it
  progress: null,  // the counter as the server last reported it
  submitted: 0,  // answers made on this page: a "next" raced by one reports a stale counter
  completion: null,  // a crowd participant's code and link, once their quota is spent
  refused: "",  // why "next" refused us (403: excluded, not enrolled, failed the quiz)
};

// ------------------------------------------------------------ the counter

// The server's counter plus the answers made here that it has not acknowledged yet, so
// the count moves on the moment an answer is submitted, not one round trip later.
function setProgress(progress) {
  if (progress) state.progress = progress;
  if (!state.progress) return;
  const unacknowledged = pendingAnswers.length;
  const done = state.progress.done + unacknowledged;
  const remaining = Math.max(0, state.progress.remaining - unacknowledged);
  $("lbl-counter").textContent = done + " done · " + remaining + " remaining";
}

// Sends what the outbox holds; each reply that settles an answer updates the counter.
function sendAnswers() { return sendPending(onAnswerReply); }

function onAnswerReply(status, data) {
  if (status === 200 || status === 201) {
    setProgress(data.progress);
    showError("");
  } else {
    state.wantProgress = true;  // nothing reported the counter
    setProgress(null);
    const reason = data.detail || (status === 409 ? "conflict" : JSON.stringify(data));
    showError("Not recorded: " + reason + ".");
  }
}

// ------------------------------------------------------------ the queue

async function fillQueue() {
  if (state.fetching) return state.fetching;
  state.fetching = (async () => {
    try {
      const before = { submitted: state.submitted, pending: pendingAnswers.length };
      const { status, data } = await post(NEXT_URL, { count: QUEUE_SIZE, progress: state.wantProgress });
      if (status === 403 && data.detail) {
        state.refused = data.detail;  // no more tasks for us: the done section says why
        return;
      }
      if (status !== 200) {
        showError(data.detail || "Could not load tasks (" + status + ").");
        return;
      }
      // A counter read while answers were on their way may or may not count them: it is
      // used only when none were; otherwise their acknowledgements, or the next ask, say.
      const settled = !before.pending && !pendingAnswers.length && before.submitted === state.submitted;
      if (data.progress && settled) {
        setProgress(data.progress);
        state.wantProgress = false;
      }
      if (data.completion) state.completion = data.completion;
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
  for (let waited = 0; pendingAnswers.length && waited < 30000; waited += 100) await sleep(100);
}

// ------------------------------------------------------------ rendering

function current() { return state.queue[0]; }

// The done section, with the reason "next" gave instead of "All done".
function showRefused(detail) {
  $("lbl-done-title").textContent = "Thank you";
  $("lbl-done-default").hidden = true;
  $("lbl-done-refused").textContent = detail;
  $("lbl-done-refused").hidden = false;
}

function render() {
  const assignment = current();
  $("lbl-task").hidden = !assignment;
  $("lbl-done").hidden = !!assignment || state.loading;
  // Nothing to skip, report or answer with keys once the queue is empty.
  $("lbl-skip-btn").hidden = $("lbl-report-btn").hidden = $("lbl-keys").hidden = !assignment;
  closeLoupe();
  if (!assignment && state.completion && !state.loading) showCompletion(state.completion);
  if (!assignment && state.refused && !state.loading) showRefused(state.refused);
  if (!assignment) { watchTask(null); return; }
  watchTask(assignment.token);
  state.answer = emptyAnswer(assignment);
  state.questionIndex = 0;
  state.explain = false;
  say("");
  renderTask(assignment, TASK_HANDLERS);
  refresh();
}

// What clicks on the task's elements do (task_view.js builds them).
const TASK_HANDLERS = {
  imageClick: onImageClick,
  pick: pick,
  enlarge: openEnlarged,
  answer: (index, value) => { state.questionIndex = index; answerQuestion(value); },
  choose: choose,
};

function refresh() {
  const assignment = current();
  if (!assignment) return;
  const answer = state.answer;
  for (const figure of document.querySelectorAll(".lbl-image")) {
    const position = Number(figure.dataset.position);
    figure.classList.toggle("is-positive", answer.positive === position);
    figure.classList.toggle("is-negative", answer.negative === position);
    const chosenSide = (answer.choice === "left" && position === 0) || (answer.choice === "right" && position === 1);
    figure.classList.toggle("is-chosen", !!chosenSide);
    figure.querySelector(".lbl-badge").textContent =
      answer.positive === position ? "BEST" : answer.negative === position ? "WORST" : "";
    for (const choice of figure.querySelectorAll(".lbl-pick button")) {
      choice.setAttribute("aria-pressed", String(answer[choice.dataset.role] === position));
    }
  }
  for (const choice of document.querySelectorAll("#lbl-choices button")) {
    choice.classList.toggle("is-chosen", choice.dataset.choice === answer.choice);
  }
  document.querySelectorAll("#lbl-questions li").forEach((item, index) => {
    item.classList.toggle("is-current", index === state.questionIndex);
    const given = answer.answers ? answer.answers[item.dataset.id] : undefined;
    for (const choice of item.querySelectorAll("button")) {
      choice.classList.toggle("is-chosen", choice.dataset.value === given);
    }
  });
  const gap = missing(assignment, answer);
  $("lbl-submit").classList.toggle("is-incomplete", !!gap);  // dimmed, yet it answers a press
  if (state.explain) say(gap);
}

function say(text) {
  const box = $("lbl-message");
  box.textContent = text;
  box.hidden = !text;
}

// ------------------------------------------------------------ answering

// Best/worst: a digit or a tap marks the best, then the worst; "Best"/"Worst" buttons,
// Shift+digit and the enlarged view mark a role directly (pressed again: unmarked).
function pick(position, role) {
  const answer = state.answer;
  const assignment = current();
  if (!assignment || assignment.kind !== "best_worst" || position >= assignment.images.length) return;
  say("");  // refresh() says again what is missing, once a submit asked
  let note = "";
  if (!role) {
    if (answer.positive === position) {
      refresh();
      say(MESSAGES.alreadyBest(position + 1));
      return;
    }
    role = answer.positive === null ? "positive" : "negative";
  } else if (answer[role] === position) {
    answer[role] = null;
    refresh();
    return;
  }
  const other = role === "positive" ? "negative" : "positive";
  if (answer[other] === position) {
    answer[other] = null;
    note = MESSAGES.moved(position + 1, other === "positive" ? "best" : "worst", role === "positive" ? "best" : "worst");
  }
  answer[role] = position;
  refresh();
  if (note) say(note);
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
  if (!assignment) return;
  if (missing(assignment, state.answer)) {
    state.explain = true;
    if (assignment.kind === "alignment") {
      state.questionIndex = assignment.questions.findIndex((q) => state.answer.answers[q.id] === undefined);
    }
    refresh();
    return;
  }
  const answer = assignment.kind === "alignment" ? { answers: state.answer.answers } : state.answer;
  keepAnswer(assignment.token, answer, watchAnswered());
  state.submitted += 1;
  setProgress(null);
  sendAnswers();
  state.wantProgress = false;  // the answer's acknowledgement carries the counter
  advance();
}

// ------------------------------------------------------------ skip, heartbeat

async function skip() {
  const assignment = current();
  if (!assignment) return;
  const { status, data } = await post(assignmentUrl(assignment.token, "skip"));
  if (status !== 200) showError(data.detail || "Could not skip.");
  moveOn();
}

// After a skip or a report: no answer will report the counter, so "next" is asked for it.
function moveOn() {
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

// ------------------------------------------------------------ enlarged image (best/worst)

function openEnlarged(position) {
  const assignment = current();
  const dialog = $("lbl-enlarge");
  if (!assignment || !dialog) return;
  dialog.dataset.position = position;
  $("lbl-enlarge-title").textContent = imageName(assignment, position);
  $("lbl-enlarge-img").src = assignment.images[position].url;
  $("lbl-enlarge-img").alt = imageName(assignment, position);
  for (const choice of dialog.querySelectorAll(".lbl-pick button")) {
    choice.setAttribute("aria-pressed", String(state.answer[choice.dataset.role] === position));
  }
  dialog.showModal();
}

function pickEnlarged(event) {
  const dialog = $("lbl-enlarge");
  dialog.close();
  pick(Number(dialog.dataset.position), event.currentTarget.dataset.role);
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
    ["Z", "loupe on/off (the mouse moves both images)"],
    ["Shift+arrows or I J K L", "move both images in the loupe"], ["+ / −", "zoom in / out"],
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
  if ($("lbl-report").open) { onReportKey(event); return; }
  if (event.target.matches("input, textarea, select") && event.key !== "Enter" && event.key !== "Escape") return;
  if (document.querySelector("dialog[open]") || event.ctrlKey || event.metaKey || event.altKey) return;
  const assignment = current();
  const key = event.key;
  if (key === "?" || key === "g" || key === "G") { $("lbl-guidelines").showModal(); event.preventDefault(); return; }
  if (!assignment) return;
  const ab = assignment.kind === "ab";
  const pan = panFor(event);
  let handled = true;
  if (key === "Enter") submit();
  else if (key === "s" || key === "S") skip();
  else if (key === "b" || key === "B") openReport();
  else if (ab && loupe.on && pan) panBy(pan[0], pan[1]);
  else if (assignment.kind === "best_worst" && /^Digit[1-5]$/.test(event.code)) {
    pick(Number(event.code.slice(5)) - 1, event.shiftKey ? "negative" : null);
  } else if (assignment.kind === "best_worst" && key === "Backspace") {
    state.answer = emptyAnswer(assignment); say(""); refresh();
  } else if (ab && event.shiftKey && key.startsWith("Arrow")) { /* panning only works with the loupe on */ }
  else if (ab && key === "ArrowLeft") choose("left");
  else if (ab && key === "ArrowRight") choose("right");
  else if (ab && key === "ArrowDown") choose("tie");
  else if (ab && (key === "r" || key === "R")) choose("reject");
  else if (ab && (key === "z" || key === "Z")) toggleLoupe();
  else if (ab && (key === "+" || key === "=")) zoomBy(1.25);
  else if (ab && key === "-") zoomBy(0.8);
  else if (assignment.kind === "alignment" && (key === "y" || key === "Y")) answerQuestion("yes");
  else if (assignment.kind === "alignment" && (key === "n" || key === "N")) answerQuestion("no");
  else if (assignment.kind === "alignment" && key === "ArrowDown") {
    state.questionIndex = Math.min(state.questionIndex + 1, assignment.questions.length - 1); refresh();
  } else if (assignment.kind === "alignment" && key === "ArrowUp") {
    state.questionIndex = Math.max(state.questionIndex - 1, 0); refresh();
  } else handled = false;
  if (handled) event.preventDefault();
}

// ------------------------------------------------------------ start

document.body.classList.add("kind-" + KIND);
$("lbl-submit").addEventListener("click", submit);
$("lbl-skip-btn").addEventListener("click", skip);
setUpReport(current, moveOn);
$("lbl-guidelines-btn").addEventListener("click", () => $("lbl-guidelines").showModal());
setUpLoupe();
if (KIND === "best_worst") {
  $("lbl-enlarge-best").addEventListener("click", pickEnlarged);
  $("lbl-enlarge-worst").addEventListener("click", pickEnlarged);
}
document.addEventListener("keydown", onKey);
watchWindow();
window.addEventListener("online", sendAnswers);
setInterval(heartbeat, HEARTBEAT_MS);
renderKeys();
pendingAnswers.forEach((item) => state.finished.add(item.token));
sendAnswers();
fillQueue().then(() => { state.loading = false; render(); });
