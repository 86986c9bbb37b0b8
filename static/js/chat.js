// Chat page client: speaks the JSON frames of docs/websocket.md. Streamed text is only ever
// inserted as text nodes; finished bubbles arrive as server-rendered, sanitised HTML.
(() => {
  "use strict";
  const root = document.getElementById("chat");
  if (!root) return;
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const sendButton = document.getElementById("chat-send");
  const stopButton = document.getElementById("chat-stop");
  const notice = document.getElementById("chat-notice");
  const status = document.getElementById("chat-connection");
  const side = root.querySelector(".chat-side");
  const wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.wsPath;

  let socket = null;
  let connected = false;
  let everConnected = false;
  let retries = 0;
  let streaming = false;
  let awaiting = null; // the type of the frame sent, until its message, reply or error comes back
  let composing = false;
  let streamBubble = null;

  const list = () => document.getElementById("message-list"); // htmx swaps replace the element
  const bubbles = () => Array.from(list().querySelectorAll("article.message[data-id]"));
  const lastId = () => { const all = bubbles(); return all.length ? Number(all[all.length - 1].dataset.id) : null; };

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
  }
  function scrollDown(force) {
    if (force || nearBottom()) window.scrollTo({ top: document.documentElement.scrollHeight });
  }

  function showNotice(text) { notice.textContent = text || ""; }

  function updateControls() {
    input.disabled = !connected; // only the connection locks typing; a reply in progress does not
    sendButton.disabled = !connected || streaming || awaiting;
    stopButton.hidden = !streaming;
    root.classList.toggle("is-streaming", streaming);
    status.textContent = connected ? "" : (everConnected ? "连接已断开，正在重连……" : "正在连接……");
  }

  function fromHtml(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim(); // server-rendered and sanitised (chat/bubbles.py)
    return template.content.firstElementChild;
  }

  // Show the branch ending at parentId: drop whatever the page shows below it.
  function truncateAfter(parentId) {
    const all = bubbles();
    const index = all.findIndex((el) => Number(el.dataset.id) === parentId);
    if (index === -1) return;
    all.slice(index + 1).forEach((el) => el.remove());
  }

  function place(message, replacing) {
    const el = fromHtml(message.html);
    if (replacing && replacing.isConnected) {
      replacing.replaceWith(el);
    } else {
      if (message.parent_id !== null) truncateAfter(message.parent_id);
      list().append(el);
    }
    if (window.htmx) htmx.process(el);
    scrollDown(false);
  }

  function startStream(replyTo) {
    truncateAfter(replyTo);
    streamBubble = document.createElement("article");
    streamBubble.className = "message message-assistant streaming";
    streamBubble.setAttribute("aria-busy", "true");
    const body = document.createElement("div");
    body.className = "message-body streaming-text";
    streamBubble.append(body);
    list().append(streamBubble);
    scrollDown(true);
  }

  // Each delta becomes spans of plain text; CSS fades them in like ink soaking into paper.
  function appendDelta(text) {
    if (!streamBubble) return;
    const body = streamBubble.querySelector(".streaming-text");
    const chars = Array.from(text);
    const step = Math.min(30, 50 / Math.max(chars.length, 1));
    chars.forEach((ch, i) => {
      const span = document.createElement("span");
      span.className = "ink";
      span.style.animationDelay = `${Math.round(i * step)}ms`;
      span.textContent = ch;
      body.append(span);
    });
    scrollDown(false);
  }

  function reloadMessages() {
    const url = root.dataset.messagesUrl;
    if (window.htmx) {
      htmx.ajax("GET", url, { target: "#message-list", swap: "outerHTML" }).then(() => scrollDown(true));
      return;
    }
    fetch(url, { credentials: "same-origin" }).then((r) => r.text()).then((html) => {
      list().replaceWith(fromHtml(html));
      scrollDown(true);
    });
  }

  const handlers = {
    message(frame) {
      // Only a sent message empties the input; an edit leaves the draft there alone.
      if (frame.message.role === "user" && awaiting === "send") input.value = "";
      awaiting = null;
      place(frame.message, null);
    },
    reply_start(frame) {
      awaiting = null;
      streaming = true;
      startStream(frame.reply_to);
    },
    delta(frame) { appendDelta(frame.text); },
    reply_end(frame) {
      const detached = streamBubble && !streamBubble.isConnected;
      place(frame.message, streamBubble);
      streamBubble = null;
      streaming = false;
      // The user switched branches mid-stream: the server moved to the new reply, so follow it.
      if (detached) reloadMessages();
    },
    error(frame) {
      awaiting = null;
      showNotice(frame.message); // the typed text stays in the input
    },
    tool(frame) {
      // A tool card (server-rendered, escaped) goes above the text of the reply being written.
      if (!streamBubble) return;
      streamBubble.insertBefore(fromHtml(frame.html), streamBubble.querySelector(".streaming-text"));
    },
    memory_saved(frame) {
      const status = document.getElementById("chat-memory");
      if (status) status.textContent = `已记住：${frame.content}`; // textContent: the user's words, never markup
    },
  };

  function send(frame) {
    if (!connected) { showNotice("尚未连接，请稍候。"); return false; }
    if (streaming) { showNotice("回答还在书写中，请稍候，或先停止。"); return false; }
    socket.send(JSON.stringify(frame));
    awaiting = frame.type;
    showNotice("");
    updateControls();
    return true;
  }

  // In a two-figure scene the user may pick who answers; "" lets the server go by who is named.
  function addressee() {
    const select = document.getElementById("chat-to");
    return select && select.value ? { to: select.value } : {};
  }

  // Tools run only when the user asks: a toolbar button, a slash command, or this box for one message.
  const allowTools = document.getElementById("chat-allow-tools");

  function sendInput(tool) {
    const text = input.value.trim();
    if (!text) { showNotice(tool ? "请先在输入框里写上要查、要画或要记的内容。" : "请输入要说的话。"); return; }
    const extra = tool ? { tool } : (allowTools && allowTools.checked ? { tools: true } : {});
    if (send({ type: "send", text, parent_id: lastId(), ...addressee(), ...extra }) && allowTools) allowTools.checked = false;
  }

  document.querySelectorAll(".tool-button").forEach((button) => {
    button.addEventListener("click", () => sendInput(button.dataset.tool));
  });

  function connect() {
    socket = new WebSocket(wsUrl);
    socket.addEventListener("open", () => {
      connected = true;
      retries = 0;
      // Anything that finished while we were away (a stopped reply, say) is on the server.
      if (everConnected) reloadMessages();
      everConnected = true;
      updateControls();
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      const handler = handlers[frame.type];
      if (handler) handler(frame);
      updateControls();
    });
    socket.addEventListener("close", () => {
      connected = false;
      streaming = false;
      awaiting = null;
      if (streamBubble) { streamBubble.remove(); streamBubble = null; }
      updateControls();
      const delay = Math.min(30000, 500 * 2 ** retries) + Math.random() * 500;
      retries += 1;
      setTimeout(connect, delay);
    });
  }

  // Enter sends, Shift+Enter breaks the line; an IME composition in progress never sends.
  input.addEventListener("compositionstart", () => { composing = true; });
  input.addEventListener("compositionend", () => { composing = false; });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey) return;
    if (event.isComposing || composing || event.keyCode === 229) return;
    event.preventDefault();
    sendInput();
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); sendInput(null); });
  stopButton.addEventListener("click", () => { if (connected) socket.send(JSON.stringify({ type: "stop" })); });

  function copyText(text, button) {
    const done = () => { button.textContent = "已复制"; setTimeout(() => { button.textContent = "复制"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text) && done());
    } else if (fallbackCopy(text)) {
      done();
    }
  }
  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }

  function openEditor(bubble, messageId) {
    if (bubble.querySelector(".message-editor")) return;
    const editor = document.createElement("form");
    editor.className = "message-editor";
    const area = document.createElement("textarea");
    area.rows = 3;
    area.value = bubble.querySelector(".message-body")?.innerText.trim() || "";
    area.setAttribute("aria-label", "修改这句话");
    const save = Object.assign(document.createElement("button"), { type: "submit", className: "button small", textContent: "保存并重新发送" });
    const cancel = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: "取消" });
    editor.append(area, save, cancel);
    cancel.addEventListener("click", () => editor.remove());
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = area.value.trim();
      if (text) send({ type: "edit", message_id: messageId, text, ...addressee() }); // the editor stays until the new message arrives
    });
    bubble.append(editor);
    area.focus();
  }

  // Actions inside bubbles, delegated so that swapped-in bubbles need no wiring.
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const bubble = button.closest("article.message");
    const messageId = Number(button.dataset.messageId);
    if (button.dataset.action === "copy") copyText(bubble.querySelector(".message-body")?.innerText || "", button);
    if (button.dataset.action === "regenerate") send({ type: "regenerate", message_id: messageId });
    if (button.dataset.action === "edit") openEditor(bubble, messageId);
  });

  // On phones the side column is a closed drawer; on wider screens it is always open.
  const wide = window.matchMedia("(min-width: 721px)");
  const fitSide = () => { if (side) side.open = wide.matches; };
  wide.addEventListener("change", fitSide);
  fitSide();

  updateControls();
  scrollDown(true);
  connect();
})();
