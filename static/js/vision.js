// 附图 (docs/vision.md): a chosen picture is uploaded at once and checked by the server; its id goes
// with the next send. chat.js reads window.guyueAttachment; the preview is the server's own copy.
(() => {
  "use strict";
  let current = null;
  let uploading = false;
  window.guyueAttachment = { id: () => current, busy: () => uploading, clear: () => {} };
  const box = document.getElementById("chat-attach");
  const picker = document.getElementById("chat-image");
  if (!box || !picker) return; // no vision model on the key: the button is disabled in the markup
  const button = document.getElementById("chat-attach-button");
  const preview = document.getElementById("chat-attach-preview");
  const thumb = preview.querySelector("img");
  const notice = document.getElementById("chat-notice");
  const token = box.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxBytes = Number(box.dataset.maxBytes);

  function clear() {
    current = null;
    preview.hidden = true;
    thumb.removeAttribute("src");
    picker.value = "";
  }

  function refuse(text) {
    notice.textContent = text; // textContent: the server's message, never markup
    clear();
  }

  async function upload(file) {
    // Checked here only to spare a long upload; the server checks the bytes themselves.
    if (file.size > maxBytes) {
      refuse(`图片太大了（${(file.size / 1048576).toFixed(1)} MB），请选择 ${Math.floor(maxBytes / 1048576)} MB 以内的图片。`);
      return;
    }
    const body = new FormData();
    body.append("image", file);
    uploading = true;
    button.disabled = true;
    button.textContent = "上传中……";
    try {
      const response = await fetch(box.dataset.uploadUrl, {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": token },
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok || !data.id) { refuse(data.error || "图片没有上传成功，请稍后再试。"); return; }
      current = data.id;
      thumb.src = data.url;
      preview.hidden = false;
      notice.textContent = "";
    } catch {
      refuse("图片没有上传成功：连不上本站，请稍后再试。");
    } finally {
      uploading = false;
      button.disabled = false;
      button.textContent = "附图";
    }
  }

  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => { if (picker.files[0]) upload(picker.files[0]); });
  document.getElementById("chat-attach-remove").addEventListener("click", clear);
  window.guyueAttachment.clear = clear;
})();
