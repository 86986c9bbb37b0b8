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
  const announcer = document.getElementById("chat-announcer");
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)");
  const wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.wsPath;

  let socket = null;
  let connected = false;
  let everConnected = false;
  let retries = 0;
  let streaming = false;
  let awaiting = null; // the type of the frame sent, until its message, reply or error comes back
  let composing = false;
  let streamBubble = null;
  let turnMine = false; // this tab asked for the replies now arriving (自动朗读 reads only those)

  // The brush: every character gets the moment it should appear as a CSS animation-delay, so the
  // pace stays even when the network delivers text in bursts, and no timer runs per character.
  const STROKE_MS = 45;       // one character
  const PAUSE_MS = { "，": 160, "、": 140, "；": 200, "：": 180, "。": 320, "！": 320, "？": 320, "\n": 240 };
  const MAX_BACKLOG_MS = 2500; // never fall further behind the model than this: write faster instead
  let penAt = 0;               // when the brush will be free, in performance.now() time
  let sentence = "";           // text of the sentence being written, for the live region
  const SENTENCE_END = /[。！？!?\n]/;
  const list = () => document.getElementById("message-list"); // htmx swaps replace the element
  const bubbles = () => Array.from(list().querySelectorAll("article.message[data-id]"));
  const lastId = () => { const all = bubbles(); return all.length ? Number(all[all.length - 1].dataset.id) : null; };

  // The conversation scrolls in #message-scroller, a column-reverse box: scrollTop 0 is the newest
  // message and scrolling up goes negative, so "at the bottom" needs no height arithmetic.
  const scroller = document.getElementById("message-scroller");
  function nearBottom() { return Math.abs(scroller.scrollTop) < 160; }
  function scrollDown(force) { if (force || nearBottom()) scroller.scrollTop = 0; }

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
    const shown = document.getElementById(`message-${message.id}`); // already there after a reload
    if (replacing && replacing.isConnected) {
      replacing.replaceWith(el);
      if (shown && shown !== replacing) shown.remove();
    } else if (shown) {
      shown.replaceWith(el);
    } else {
      if (message.parent_id !== null) truncateAfter(message.parent_id);
      list().append(el);
    }
    if (window.htmx) htmx.process(el);
    applyVertical(el);
    scrollDown(false);
  }

  // Reading mode (竖排): poems and quoted passages set top to bottom, right to left. The choice is the
  // reader's, remembered in this browser, and applies to every reply that has such text.
  const VERTICAL_KEY = "guyue.vertical";
  function verticalWanted() {
    try { return localStorage.getItem(VERTICAL_KEY) === "1"; } catch { return false; }
  }
  function applyVertical(scope) {
    const on = verticalWanted();
    scope.querySelectorAll?.("button[data-action=vertical]").forEach((button) => {
      button.closest("article.message")?.classList.toggle("is-vertical", on);
      button.setAttribute("aria-pressed", String(on));
    });
    if (scope.matches?.("article.message") && scope.querySelector("button[data-action=vertical]")) {
      scope.classList.toggle("is-vertical", on);
    }
  }
  function setVertical(on) {
    try { localStorage.setItem(VERTICAL_KEY, on ? "1" : "0"); } catch { /* private mode: this page only */ }
    applyVertical(document);
    if (streamBubble) streamBubble.classList.toggle("is-vertical", on);
  }

  // `written`: a continued reply's text so far (续写), shown at once as already-dry ink.
  function startStream(replyTo, speaker, written) {
    truncateAfter(replyTo);
    streamBubble = document.createElement("article");
    streamBubble.className = "message message-assistant streaming";
    streamBubble.setAttribute("aria-busy", "true");
    const head = document.createElement("header");
    head.className = "message-head";
    head.setAttribute("aria-hidden", "true");
    head.textContent = speaker ? `${speaker} 执笔中……` : "执笔中……"; // textContent: a name, never markup
    const body = document.createElement("div");
    body.className = "message-body streaming-text";
    if (written) body.append(document.createTextNode(written)); // text, never markup
    streamBubble.append(head, body);
    streamBubble.classList.toggle("is-vertical", verticalWanted());
    list().append(streamBubble);
    penAt = performance.now();
    sentence = "";
    announcer.textContent = "";
    if (window.guyueCite) window.guyueCite.reset();
    scrollDown(true);
  }

  // Screen readers hear the reply a sentence at a time, when the brush reaches the sentence's end.
  function announce(text) {
    const line = text.trim();
    if (!line) return;
    const p = document.createElement("p");
    p.textContent = line;
    announcer.append(p);
    while (announcer.childElementCount > 3) announcer.firstElementChild.remove();
  }
  function announceAt(text, at) {
    const wait = at - performance.now();
    if (wait <= 0) announce(text); else setTimeout(() => announce(text), wait);
  }

  // Each delta becomes spans of plain text (never HTML); CSS lets them soak in like ink.
  function appendDelta(text) {
    if (!streamBubble) return;
    const body = streamBubble.querySelector(".streaming-text");
    const now = performance.now();
    const chars = Array.from(text);
    const backlog = Math.max(0, penAt - now);
    // Behind by more than the cap: shorten the strokes of this burst rather than lag further.
    const squeeze = Math.min(1, Math.max(0.15, (MAX_BACKLOG_MS - backlog) / (chars.length * STROKE_MS || 1)));
    penAt = Math.max(penAt, now);
    let para = body.lastElementChild;
    if (!para || !para.classList.contains("stream-para")) para = newPara(body);
    const cite = window.guyueCite;
    for (const ch of cite ? chars.flatMap((c) => cite.feed(c)) : chars) {
      if (typeof ch !== "string") { para.append(ch); continue; } // a source mark (cite.js)
      const span = document.createElement("span");
      span.className = "ink";
      if (!calm.matches) span.style.animationDelay = `${Math.round(penAt - now)}ms`;
      span.textContent = ch;
      para.append(span);
      penAt += (STROKE_MS + (PAUSE_MS[ch] || 0)) * squeeze;
      sentence += ch;
      if (SENTENCE_END.test(ch)) { announceAt(sentence, calm.matches ? now : penAt); sentence = ""; }
      // A blank line ends a paragraph, so a poem in the reply can be set on its own (竖排).
      if (ch === "\n" && para.textContent.endsWith("\n\n")) { markVerse(para); para = newPara(body); }
    }
    markVerse(para);
    scrollDown(false);
  }

  function newPara(body) {
    const para = document.createElement("div");
    para.className = "stream-para";
    body.append(para);
    return para;
  }

  // The same test as the server's (chat/rendering.py): two or more lines of 3–16 Chinese characters.
  const NOT_HAN = /[\s，。！？、；：…—·「」『』《》（）“”‘’,.!?;:()-]/g;
  const ONLY_HAN = /^[\u3400-\u9fff\uf900-\ufaff]+$/;
  function markVerse(para) {
    const lines = para.textContent.split("\n").filter((line) => line.trim());
    const verse = lines.length >= 2 && lines.every((line) => {
      const core = line.replace(NOT_HAN, "");
      return core.length >= 3 && core.length <= 16 && ONLY_HAN.test(core);
    });
    para.classList.toggle("verse", verse);
  }

  // The finished bubble replaces the streamed one once the brush has caught up with the text.
  function finishStream(frame) {
    const bubble = streamBubble;
    // The reply is saved: while the pen catches up, a message sent now must still follow it.
    if (bubble) bubble.dataset.id = frame.message.id;
    const wait = calm.matches ? 0 : Math.max(0, penAt - performance.now());
    const rest = sentence;
    sentence = "";
    const swap = () => {
      const detached = bubble && !bubble.isConnected;
      place(frame.message, bubble);
      const placed = document.getElementById(`message-${frame.message.id}`);
      if (placed && frame.message.status === "complete") placed.classList.add("is-fresh");
      announce(rest);
      if (frame.message.status === "stopped") announce("（已停止）");
      // The user switched branches mid-stream: the server moved to the new reply, so follow it.
      if (detached) reloadMessages();
    };
    if (wait > 0) setTimeout(swap, wait); else swap();
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
      if (frame.message.role === "user" && awaiting === "send") { input.value = ""; window.guyueAttachment?.clear(); }
      if (frame.message.role === "user" && awaiting === null) turnMine = false; // another tab's question
      awaiting = null;
      place(frame.message, null);
    },
    reply_start(frame) {
      awaiting = null;
      streaming = true;
      startStream(frame.reply_to, frame.speaker, frame.text || "");
      tellReply("start", frame.id);
    },
    delta(frame) { appendDelta(frame.text); },
    reply_pass(frame) {
      // A salon figure had nothing to add (静听): its open bubble goes; the next one may follow.
      if (streamBubble) streamBubble.remove();
      streamBubble = null;
      streaming = false;
      tellReply("end", frame.id, "passed");
    },
    reply_end(frame) {
      finishStream(frame);
      tellReply("end", frame.message.id, frame.message.status);
      streamBubble = null;
      streaming = false;
    },
    error(frame) {
      awaiting = null;
      showNotice(frame.message); // the typed text stays in the input
    },
    tool(frame) {
      // A tool card (server-rendered, escaped) goes above the text of the reply being written.
      if (!streamBubble) return;
      if (window.guyueCite) window.guyueCite.add(frame.sources); // the entries the reply may now cite
      streamBubble.insertBefore(fromHtml(frame.html), streamBubble.querySelector(".streaming-text"));
    },
    media_job(frame) {
      // A picture, clip or song changed in the worker: its card asks for itself again (chat/media/views.py).
      const card = document.getElementById(`image-job-${Number(frame.job)}`);
      if (card && window.htmx) window.htmx.trigger(card, "media-job");
    },
    title(frame) {
      // The conversation got its title after the first exchange: the heading and the list follow.
      const heading = document.getElementById("chat-title");
      if (heading) heading.textContent = frame.title; // textContent: never markup
      const link = document.querySelector(".conversation-item[aria-current] .conversation-link");
      if (link) link.textContent = frame.title;
      document.title = `${frame.title} · 古月今话`;
    },
    memory_saved(frame) {
      const status = document.getElementById("chat-memory");
      if (status) status.textContent = `已记住：${frame.content}`; // textContent: the user's words, never markup
    },
    memory_refused(frame) {
      const status = document.getElementById("chat-memory");
      if (status) status.textContent = frame.message;
    },
  };

  // static/js/speech.js listens: a reply of this tab's turn may be read aloud as it is written.
  function tellReply(phase, id, status) {
    root.dispatchEvent(new CustomEvent("guyue:reply", { detail: { phase, id, status, mine: turnMine } }));
  }

  function send(frame) {
    if (!connected) { showNotice("尚未连接，请稍候。"); return false; }
    if (streaming) { showNotice("回答还在书写中，请稍候，或先停止。"); return false; }
    socket.send(JSON.stringify(frame));
    awaiting = frame.type;
    turnMine = true;
    showNotice("");
    updateControls();
    return true;
  }

  // In a scene or salon the user may tick who answers; none lets the server go by who is named.
  function addressee() {
    const ticked = Array.from(document.querySelectorAll("#chat-to input:checked"), (box) => box.value);
    return ticked.length ? { to: ticked } : {};
  }
  // 飞花令 / 联句 / 结束: the button writes the command into the input, to adjust and send.
  document.querySelectorAll("[data-game]").forEach((button) => {
    button.addEventListener("click", () => {
      input.value = button.dataset.game;
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    });
  });

  // Tools run only when the user asks: a toolbar button, a slash command, or this box for one message.
  const allowTools = document.getElementById("chat-allow-tools");

  function sendInput(tool) {
    const text = input.value.trim();
    if (!text) { showNotice(tool ? "请先在输入框里写上要查、要画或要记的内容。" : "请输入要说的话。"); return; }
    if (!window.guyueFits(input)) { showNotice(`消息太长了，请控制在 ${input.dataset.maxChars} 字以内。`); return; }
    const extra = tool ? { tool } : (allowTools && allowTools.checked ? { tools: true } : {});
    // A picture chosen with 附图 (vision.js) goes with this message.
    const attachment = window.guyueAttachment;
    if (attachment?.busy()) { showNotice("图片还在上传，请稍候。"); return; }
    if (attachment?.id()) extra.image_id = attachment.id();
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
    area.dataset.maxChars = input.dataset.maxChars;
    area.value = bubble.querySelector(".message-body")?.innerText.trim() || "";
    area.setAttribute("aria-label", "修改这句话");
    const save = Object.assign(document.createElement("button"), { type: "submit", className: "button small", textContent: "保存并重新发送" });
    const cancel = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: "取消" });
    editor.append(area, save, cancel);
    cancel.addEventListener("click", () => editor.remove());
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = area.value.trim();
      if (!window.guyueFits(area)) { showNotice(`消息太长了，请控制在 ${area.dataset.maxChars} 字以内。`); return; }
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
    if (button.dataset.action === "continue") send({ type: "continue", message_id: messageId });
    if (button.dataset.action === "edit") openEditor(bubble, messageId);
    if (button.dataset.action === "vertical") setVertical(button.getAttribute("aria-pressed") !== "true");
  });
  applyVertical(document);
  document.addEventListener("htmx:afterSwap", (event) => applyVertical(event.target));

  // The input's typewriter feel: each keystroke strikes a faint line under the paper.
  input.addEventListener("input", () => {
    input.classList.remove("is-typing");
    void input.offsetWidth; // restart the CSS animation
    input.classList.add("is-typing");
  });

  // On phones the side column is a drawer over the conversation; on wider screens it is always open.
  const wide = window.matchMedia("(min-width: 721px)");
  const fitSide = () => { if (side) side.open = wide.matches; };
  wide.addEventListener("change", fitSide);
  fitSide();
  if (side) {
    const closeDrawer = () => {
      if (wide.matches || !side.open) return;
      side.open = false;
      side.querySelector("summary").focus();
    };
    side.addEventListener("toggle", () => {
      if (side.open && !wide.matches) side.querySelector("[data-drawer-close]").focus();
    });
    side.querySelector("[data-drawer-close]").addEventListener("click", closeDrawer);
    // A tap on the dimmed conversation (the details box itself, outside the panel) closes it.
    side.addEventListener("click", (event) => { if (event.target === side) closeDrawer(); });
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDrawer(); });
  }

  updateControls(); // no initial scroll: the column-reverse box already opens at the newest message
  connect();
})();
