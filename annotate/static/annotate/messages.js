// What the page tells the annotator next to the submit button and in the report dialog
// (tests/annotate/test_labeling_browser.py reuses these texts).

export const MESSAGES = {
  bestAndWorst: "Choose the best image and the worst image.",
  best: "Choose the best image.",
  worst: "Choose the worst image.",
  side: "Choose Left, Tie or Right — or Reject.",
  questions: (numbers) => numbers.length === 1
    ? "Answer question " + numbers[0] + "."
    : "Answer questions " + numbers.slice(0, -1).join(", ") + " and " + numbers[numbers.length - 1] + ".",
  alreadyBest: (n) => "Image " + n + " is already the best: the worst must be another image.",
  moved: (n, was, now) => "Image " + n + " was the " + was + "; now it is the " + now + ". Choose the " + was + " image.",
  reportWhich: "Choose which image is broken.",
};
