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

  // A failed htmx request that brings no form back (a 403, 404 or 5xx, or no answer at all) is
  // said beside the element the user acted on; base.html's responseHandling swaps form errors.
  const FAILURES = {
    403: "操作未被允许：页面可能已过期，请刷新后重试。",
    404: "找不到要操作的内容：它可能已被删除，请刷新页面。",
    413: "提交的内容过大。",
  };

  function failureText(status) {
    if (!status) return "无法连接到服务器，请检查网络后重试。";
    return FAILURES[status] || `服务器出错（${status}），请稍后重试。`;
  }

  function showFailure(elt, text) {
    const anchor = elt.closest("form") || elt;
    let note = anchor.nextElementSibling;
    if (!(note && note.classList.contains("request-error"))) {
      note = document.createElement("p");
      note.className = "request-error error";
      note.setAttribute("role", "alert");
      anchor.after(note);
    }
    if (note.textContent !== text) note.textContent = text; // a poll failing again says nothing new
  }

  document.addEventListener("htmx:responseError", (event) => {
    showFailure(event.detail.elt, failureText(event.detail.xhr.status));
  });
  document.addEventListener("htmx:sendError", (event) => {
    showFailure(event.detail.elt, failureText(0));
  });
  // A later success from the same place clears the old note.
  document.addEventListener("htmx:afterRequest", (event) => {
    if (!event.detail.successful) return;
    const anchor = event.detail.elt.closest("form") || event.detail.elt;
    const note = anchor.isConnected ? anchor.nextElementSibling : null;
    if (note && note.classList.contains("request-error")) note.remove();
  });

  // <textarea data-max-chars="N">: a counter appears near the limit, goes red past it, and a paste
  // that would not fit is refused with a message rather than silently cut (no maxlength attribute).
  const NEAR = 0.8;

  function charCount(text) { return [...text.trim()].length; }

  function counterFor(area) {
    let counter = area.nextElementSibling;
    if (!(counter && counter.classList.contains("char-count"))) {
      counter = document.createElement("p");
      counter.className = "char-count hint";
      counter.setAttribute("aria-live", "polite");
      area.after(counter);
    }
    return counter;
  }

  function showCount(area, refused) {
    const max = Number(area.dataset.maxChars);
    const count = charCount(area.value);
    const counter = counterFor(area);
    const over = count > max;
    counter.classList.toggle("is-over", over || Boolean(refused));
    if (refused) counter.textContent = refused;
    else if (over) counter.textContent = `${count} / ${max} 字：超出 ${count - max} 字，请删减后再发送。`;
    else counter.textContent = count >= max * NEAR ? `${count} / ${max} 字` : "";
  }

  document.addEventListener("input", (event) => {
    if (event.target.matches?.("textarea[data-max-chars]")) showCount(event.target);
  });
  document.addEventListener("paste", (event) => {
    const area = event.target;
    if (!area.matches?.("textarea[data-max-chars]")) return;
    const pasted = event.clipboardData?.getData("text") ?? "";
    const max = Number(area.dataset.maxChars);
    const kept = area.value.slice(0, area.selectionStart) + area.value.slice(area.selectionEnd);
    const total = charCount(kept + pasted);
    if (total <= max) return;
    event.preventDefault();
    showCount(area, `粘贴的内容有 ${[...pasted].length} 字，粘贴后共 ${total} 字，超过 ${max} 字的上限，未粘贴。请分段发送。`);
  });

  // For chat.js: whether the text fits, so a message over the limit is never sent.
  window.guyueFits = (area) => charCount(area.value) <= Number(area.dataset.maxChars);
})();
