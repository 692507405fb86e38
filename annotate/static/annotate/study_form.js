// The new-study form: shows only the fields of the chosen kind. Each field's wrapper
// names its kinds in data-kinds (none: every kind); the others are hidden and disabled, so
// the browser does not send them. Without this script every field shows, and the server
// ignores or refuses, as the service does, what does not apply. A field with an error
// stays in view, so its error can be read and fixed.
(function () {
  "use strict";
  const form = document.getElementById("study-form");
  if (!form) return;
  const kind = form.querySelector("[name=kind]");
  if (!kind) return;

  function update() {
    form.querySelectorAll("[data-kinds]").forEach((wrapper) => {
      const applies = wrapper.dataset.kinds.split(" ").includes(kind.value) || wrapper.dataset.errors === "1";
      wrapper.hidden = !applies;
      wrapper.querySelectorAll("input, select, textarea").forEach((input) => {
        input.disabled = !applies;
      });
    });
  }

  kind.addEventListener("change", update);
  update();
})();
