// The report dialog: the annotator names the broken image (by click, digit or, on A/B, an
// arrow key), may say what is wrong, and the report is sent; the task is then skipped.
import { assignmentUrl, post } from "./api.js";
import { imageName } from "./assignment.js";
import { MESSAGES } from "./messages.js";
import { $, showError } from "./page.js";

// Given by labeling.js at start-up: the assignment on screen, and what follows a report.
let current = () => undefined;
let afterReport = () => {};

export function openReport() {
  const assignment = current();
  if (!assignment) return;
  const box = $("lbl-report-choices");
  box.innerHTML = "";
  for (const image of assignment.images) {
    const label = document.createElement("label");
    label.className = "lbl-report-choice";
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "lbl-report-position";
    radio.value = image.position;
    radio.checked = assignment.images.length === 1;
    label.append(radio, " " + imageName(assignment, image.position));
    box.appendChild(label);
  }
  $("lbl-report-reason").value = "";
  $("lbl-report-message").hidden = true;
  $("lbl-report").showModal();
}

function reportChoose(position) {
  const radio = document.querySelector("#lbl-report-choices input[value='" + position + "']");
  if (!radio) return;
  radio.checked = true;
  radio.focus();
  $("lbl-report-message").hidden = true;
}

async function sendReport() {
  const assignment = current();
  if (!$("lbl-report").open) return;
  const chosen = document.querySelector("#lbl-report-choices input:checked");
  if (!chosen) {
    $("lbl-report-message").textContent = MESSAGES.reportWhich;
    $("lbl-report-message").hidden = false;
    return;
  }
  $("lbl-report").close();
  if (!assignment) return;
  const body = { position: Number(chosen.value), reason: $("lbl-report-reason").value };
  const { status, data } = await post(assignmentUrl(assignment.token, "report"), body);
  if (status !== 201 && status !== 200) showError(data.detail || "Could not send the report.");  // 200: reported before
  afterReport();
}

// In the report dialog, keys choose the image wherever the focus is, except while typing.
export function onReportKey(event) {
  if (event.key === "Enter") { event.preventDefault(); sendReport(); return; }
  if (event.target.matches("input[type=text]")) return;
  const assignment = current();
  if (!assignment) return;
  let position = /^[1-9]$/.test(event.key) ? Number(event.key) - 1 : null;
  if (assignment.kind === "ab" && event.key === "ArrowLeft") position = 0;
  if (assignment.kind === "ab" && event.key === "ArrowRight") position = 1;
  if (position === null || position >= assignment.images.length) return;
  event.preventDefault();
  reportChoose(position);
}

// Wires the dialog and its button in the bar; called once at start-up with
// currentAssignment() (the assignment on screen, or undefined) and then(), run once a
// report was sent.
export function setUpReport(currentAssignment, then) {
  current = currentAssignment;
  afterReport = then;
  $("lbl-report-btn").addEventListener("click", openReport);
  $("lbl-report-send").addEventListener("click", sendReport);
  $("lbl-report-cancel").addEventListener("click", () => $("lbl-report").close());
  $("lbl-report-choices").addEventListener("change", () => { $("lbl-report-message").hidden = true; });
}
