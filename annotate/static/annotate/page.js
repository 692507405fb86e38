// The labeling page's shell, shared by every module of it: the root element and the study
// kind it names, element lookup by id, and the two status lines above the task (the
// error box and the save state).

export const root = document.getElementById("labeling");
export const KIND = root.dataset.kind;
export const $ = (id) => document.getElementById(id);

export function showError(message) {
  const box = $("lbl-error");
  box.textContent = message;
  box.hidden = !message;
}

export function setSaveState(text) { $("lbl-save").textContent = text; }
