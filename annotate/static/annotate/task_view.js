// The task's elements, built afresh from an assignment: the instruction and prompt above
// it, its images (for best/worst with Best/Worst buttons and an enlarge button), its
// yes/no questions (alignment) and its choices (A/B). Clicks call the handlers labeling.js
// gives, which build the answer; labeling.js's refresh() shows the marks.
import { imageName, instruction } from "./assignment.js";
import { followPointer } from "./loupe.js";
import { $ } from "./page.js";

// on: { imageClick(position, event), pick(position, role), enlarge(position),
// answer(questionIndex, "yes" | "no"), choose(choice) }.
export function renderTask(assignment, on) {
  $("lbl-instruction").textContent = instruction(assignment);
  $("lbl-prompt").textContent = assignment.prompt || "";
  $("lbl-prompt").hidden = !assignment.prompt;
  renderImages(assignment, on);
  renderQuestions(assignment, on);
  renderChoices(assignment, on);
}

function button(text, className, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.addEventListener("click", onClick);
  return element;
}

// A key's name after a button's text, left out on touch screens (labeling.css).
function keyHint(text) {
  const hint = document.createElement("span");
  hint.className = "lbl-key-hint";
  hint.textContent = text;
  return hint;
}

function renderImages(assignment, on) {
  const box = $("lbl-images");
  box.innerHTML = "";
  for (const image of assignment.images) {
    const position = image.position;
    const figure = document.createElement("figure");
    figure.className = "lbl-image";
    figure.dataset.position = position;
    const frame = document.createElement("div");
    frame.className = "lbl-frame";
    const label = document.createElement("span");
    label.className = "lbl-label";
    label.textContent = assignment.kind === "ab" ? imageName(assignment, position) : String(position + 1);
    const badge = document.createElement("span");
    badge.className = "lbl-badge";
    const img = document.createElement("img");
    img.src = image.url;
    img.alt = imageName(assignment, position);
    img.draggable = false;
    frame.append(img, label, badge);
    frame.addEventListener("click", (event) => on.imageClick(position, event));
    followPointer(frame);
    figure.appendChild(frame);
    if (assignment.kind === "best_worst") {
      const enlarge = button("⤢", "secondary lbl-enlarge", (event) => { event.stopPropagation(); on.enlarge(position); });
      enlarge.setAttribute("aria-label", "Enlarge image " + (position + 1));
      frame.appendChild(enlarge);
      const picks = document.createElement("div");
      picks.className = "lbl-pick";
      picks.append(
        button("Best", "secondary", () => on.pick(position, "positive")),
        button("Worst", "secondary", () => on.pick(position, "negative")),
      );
      picks.children[0].dataset.role = "positive";
      picks.children[1].dataset.role = "negative";
      figure.appendChild(picks);
    }
    box.appendChild(figure);
  }
}

function renderQuestions(assignment, on) {
  const list = $("lbl-questions");
  list.innerHTML = "";
  list.hidden = assignment.kind !== "alignment";
  assignment.questions.forEach((question, index) => {
    const item = document.createElement("li");
    item.dataset.id = question.id;
    const row = document.createElement("div");
    row.className = "lbl-question";
    const text = document.createElement("span");
    text.textContent = question.text;
    const buttons = document.createElement("span");
    buttons.className = "lbl-yesno";
    for (const [value, label, key] of [["yes", "Yes", " (Y)"], ["no", "No", " (N)"]]) {
      const choice = button(label, "secondary", () => on.answer(index, value));
      choice.dataset.value = value;
      choice.appendChild(keyHint(key));
      buttons.appendChild(choice);
    }
    row.append(text, buttons);
    item.appendChild(row);
    list.appendChild(item);
  });
}

function renderChoices(assignment, on) {
  const box = $("lbl-choices");
  box.innerHTML = "";
  box.hidden = assignment.kind !== "ab";
  const labels = { left: ["← Left wins", ""], tie: ["↓ Tie", ""], right: ["Right wins →", ""], reject: ["Reject", " (R)"] };
  for (const choice of assignment.choices) {
    const [text, key] = labels[choice] || [choice, ""];
    const element = button(text, "secondary", () => on.choose(choice));
    element.dataset.choice = choice;
    if (key) element.appendChild(keyHint(key));
    box.appendChild(element);
  }
}
