// A crowd participant's end of the study (annotate.crowd): once "next" answers with a
// completion, the "all done" section shows the completion code and a link back to the
// platform, which the page follows by itself after a few seconds.
import { $ } from "./page.js";

export const REDIRECT_SECONDS = 5;
let shown = false;

// "Prolific" for Prolific's links; "the study platform" for any other.
function platformName(url) {
  try {
    return new URL(url).hostname.endsWith("prolific.com") || new URL(url).hostname.endsWith("prolific.co")
      ? "Prolific" : "the study platform";
  } catch (e) { return "the study platform"; }
}

export function showCompletion(completion) {
  if (shown) return;
  shown = true;
  $("lbl-done-default").hidden = true;
  $("lbl-completion").hidden = false;
  $("lbl-completion-code").textContent = completion.code;
  if (!completion.url) return;
  const link = $("lbl-completion-link");
  link.href = completion.url;
  link.textContent = "Return to " + platformName(completion.url);
  link.hidden = false;
  $("lbl-completion-redirect").textContent =
    "You will be taken there in " + REDIRECT_SECONDS + " seconds.";
  setTimeout(() => { window.location.assign(completion.url); }, REDIRECT_SECONDS * 1000);
}
