// What an assignment from the API means on the page, by its kind (A/B, best/worst,
// alignment): the instruction above it, the names of its images, the answer it starts
// with and what that answer still lacks. Pure functions: nothing here touches the page.
import { MESSAGES } from "./messages.js";

export function instruction(assignment) {
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

export function emptyAnswer(assignment) {
  if (assignment.kind === "best_worst") return { positive: null, negative: null };
  if (assignment.kind === "ab") return { choice: null };
  return { answers: {} };
}

export function imageName(assignment, position) {
  if (assignment.kind === "ab") return position === 0 ? "Left" : "Right";
  return assignment.kind === "best_worst" ? "Image " + (position + 1) : "The image";
}

// What the answer still lacks, in words; "" once it is complete.
export function missing(assignment, answer) {
  if (assignment.kind === "best_worst") {
    if (answer.positive === null && answer.negative === null) return MESSAGES.bestAndWorst;
    if (answer.positive === null) return MESSAGES.best;
    return answer.negative === null ? MESSAGES.worst : "";
  }
  if (assignment.kind === "ab") return answer.choice === null ? MESSAGES.side : "";
  const open = [];
  assignment.questions.forEach((q, index) => { if (answer.answers[q.id] === undefined) open.push(index + 1); });
  return open.length ? MESSAGES.questions(open) : "";
}
