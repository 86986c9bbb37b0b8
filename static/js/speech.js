// 朗读: a reply read aloud sentence by sentence (docs/voice.md). Sentence n of message m is
// /chat/m/<m>/speech/<n>.mp3; the server cuts the reply, waits for a sentence still being written,
// and answers 204 past the last one. A few sentences are fetched ahead so each follows the last.
(() => {
  "use strict";
  const root = document.getElementById("chat");
  const audio = document.getElementById("chat-speech");
  if (!root || !audio) return;
  const status = document.getElementById("chat-speech-status");
  const AHEAD = 2;     // sentences fetched beyond the one playing
  const PATIENCE = 4;  // "not final yet" answers in a row before giving up on a sentence
  let reading = null;  // { id, pending: Map<n, Promise>, stopped }
  const autoSeen = new Set(); // replies 自动朗读 has begun, so a reply's end does not start it again
  const queued = [];      // in a scene, the second figure's reply waits for the first to be read

  function say(text) { if (status) status.textContent = text || ""; }
  function urlFor(id, n) { return root.dataset.speechUrl.replace(/\/m\/0\/speech\/0\.mp3$/, `/m/${id}/speech/${n}.mp3`); }
  function buttonsFor(id) { return root.querySelectorAll(`button[data-action=speak][data-message-id="${id}"]`); }
  function mark(id, on) {
    buttonsFor(id).forEach((button) => {
      const label = on ? "停止朗读" : "朗读";
      if (button.textContent !== label) button.textContent = label; // unchanged: no mutation to observe again
      button.setAttribute("aria-pressed", String(on));
    });
  }

  // "audio" once the server has the sentence's audio, "end" past the last sentence, or { error }.
  async function fetchSentence(read, n) {
    for (let tries = 0; tries < PATIENCE; tries += 1) {
      let response;
      try {
        response = await fetch(urlFor(read.id, n), { credentials: "same-origin" });
      } catch {
        return { error: "网络中断，朗读已停止。" };
      }
      if (read.stopped) return "end";
      if (response.status === 200) { await response.arrayBuffer(); return "audio"; }
      if (response.status === 204) return "end";
      if (response.status === 202) continue; // still being written: ask again
      let message = "朗读失败，请稍后再试。";
      try { message = (await response.json()).error || message; } catch { /* not JSON */ }
      return { error: message };
    }
    return { error: "这一句迟迟没有写完，朗读已停止。" };
  }

  function ahead(read, n) {
    for (let k = n; k <= n + AHEAD; k += 1) {
      if (!read.pending.has(k)) read.pending.set(k, fetchSentence(read, k));
    }
  }

  function play(read, n) {
    return new Promise((resolve) => {
      const done = () => { audio.onended = null; audio.onerror = null; resolve(); };
      audio.onended = done;
      audio.onerror = done;
      read.resume = done;
      audio.src = urlFor(read.id, n);
      audio.play().catch(() => { say("浏览器没有允许播放声音：请点一下「朗读」。"); done(); });
    });
  }

  async function run(read) {
    for (let n = 0; !read.stopped; n += 1) {
      ahead(read, n);
      const result = await read.pending.get(n);
      read.pending.delete(n);
      if (read.stopped || result === "end") break;
      if (result.error) { say(result.error); break; }
      await play(read, n);
    }
    if (reading === read) {
      stop();
      if (queued.length) start(queued.shift(), true);
      else root.dispatchEvent(new CustomEvent("guyue:speech-idle")); // 语音对话 listens again
    }
  }

  function stop() {
    if (!reading) return;
    const read = reading;
    reading = null;
    read.stopped = true;
    audio.pause();
    if (read.resume) read.resume();
    mark(read.id, false);
  }

  function start(id, auto) {
    stop();
    if (!auto) queued.length = 0;
    if (root.dataset.speech !== "on") { say("当前密钥不支持朗读：请在设置中为密钥填写朗读模型。"); return; }
    reading = { id, auto, pending: new Map(), stopped: false, resume: null };
    say("");
    mark(id, true);
    run(reading);
  }

  window.guyueSpeech = { busy: () => reading !== null || queued.length > 0, stop: () => { queued.length = 0; stop(); } };

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action=speak]");
    if (!button) return;
    const id = Number(button.dataset.messageId);
    if (reading && reading.id === id) { queued.length = 0; stop(); } else start(id);
  });

  // 自动朗读: this tab's new reply is read as it is written (by id once the reply has one, else when saved).
  // 语音对话 (handsfree.js) reads every reply of its turns, whatever the switch says.
  const autoRead = () => document.getElementById("chat-auto-read")?.checked || root.dataset.handsFree === "on";
  root.addEventListener("guyue:reply", (event) => {
    const { phase, id, status: state, mine } = event.detail;
    if (!mine || !autoRead() || !id) return;
    if (autoSeen.has(id) || (phase === "end" && state !== "complete")) return;
    autoSeen.add(id);
    if (reading && reading.auto) queued.push(id); else start(id, true);
  });
  // The finished bubble replaces the streamed one (and htmx swaps whole lists): the button of the
  // reply being read shows it.
  new MutationObserver(() => { if (reading) mark(reading.id, true); })
    .observe(document.getElementById("message-scroller") || root, { childList: true, subtree: true });
})();
