// Small behaviours htmx would otherwise need inline JavaScript (hx-on) for, which the
// Content-Security-Policy forbids. Listeners sit on the document, so forms that htmx swaps in later
// are covered too.
(() => {
  "use strict";
  // <form data-reset-on-success>: clear the fields once htmx's request succeeded.
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-reset-on-success")
        && event.detail.elt === form && event.detail.successful) {
      form.reset();
    }
  });
})();
