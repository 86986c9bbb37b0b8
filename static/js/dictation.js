// 语音输入: record with MediaRecorder, upload the recording, put the text in the input box for the
// user to check. It never sends the message itself. The server checks size, length and format
// again (chat/speech_input/), and keeps nothing.
(() => {
  "use strict";
  const button = document.getElementById("chat-mic");
  if (!button || button.disabled) return; // no transcription model: the button says so, disabled
  const input = document.getElementById("chat-input");
  const status = document.getElementById("chat-dictation");
  const note = document.getElementById("chat-dictation-error");
  const maxSeconds = Number(button.dataset.maxSeconds) || 60;
  const label = button.textContent;
  // Opus at 32 kbit/s: a minute is about 240 KB, and it is the rate the server estimates with.
  const BITS_PER_SECOND = 32000;
  const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
  const FAILURES = {
    403: "操作未被允许：页面可能已过期，请刷新后重试。",
    413: "录音太大，请录短一些。",
    429: "语音输入过于频繁，请稍后再试。",
  };
  let recorder = null;
  let starting = false; // waiting for the microphone permission: a second click does nothing
  let stopTimer = null;
  let ticker = null;
  let startedAt = 0;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch {
      return "";
    }
  }

  function say(text) { status.textContent = text; }

  function fail(text) {
    say("");
    note.textContent = text;
  }

  function showRecording(on) {
    button.textContent = on ? "停止录音" : label;
    button.classList.toggle("danger", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  function tick() {
    const seconds = Math.floor((Date.now() - startedAt) / 1000);
    say(`● 正在录音 ${seconds} / ${maxSeconds} 秒，再点一次结束`);
  }

  async function start() {
    note.textContent = "";
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      fail("此浏览器不支持录音，请换用新版 Chrome、Edge、Firefox 或 Safari。");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      fail(error.name === "NotAllowedError"
        ? "没有获得话筒权限：请在浏览器中允许本站使用话筒后重试。"
        : "找不到可用的话筒，请检查设备后重试。");
      return;
    }
    const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    const options = { audioBitsPerSecond: BITS_PER_SECOND, ...(mimeType ? { mimeType } : {}) };
    const chunks = [];
    recorder = new MediaRecorder(stream, options);
    recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop()); // the browser's recording light goes off
      upload(new Blob(chunks, { type: recorder.mimeType }));
    });
    recorder.start();
    startedAt = Date.now();
    showRecording(true);
    tick();
    ticker = setInterval(tick, 500);
    stopTimer = setTimeout(stop, maxSeconds * 1000); // the server refuses longer recordings
  }

  function stop() {
    clearTimeout(stopTimer);
    clearInterval(ticker);
    showRecording(false);
    button.disabled = true; // until the text is back: one recording at a time
    say("正在识别……");
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  // The recording's text, or { error } in words for the user. Shared with 语音对话 (handsfree.js).
  async function transcribe(blob) {
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST", body: blob, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
      });
      let payload = null;
      try { payload = await response.json(); } catch { /* not JSON: a login page or a gateway */ }
      if (response.ok && typeof payload?.text === "string") return { text: payload.text };
      if (response.redirected) return { error: "登录已过期，请刷新页面后重新登录。" };
      return { error: payload?.error || FAILURES[response.status] || `服务器出错（${response.status}），请稍后重试。` };
    } catch {
      return { error: "无法连接到服务器，请检查网络后重试。" };
    }
  }
  window.guyueDictation = { transcribe, bitsPerSecond: BITS_PER_SECOND, types: TYPES, maxSeconds };

  async function upload(blob) {
    const result = await transcribe(blob);
    if (result.error) fail(result.error);
    else {
      insert(result.text);
      say("已填入输入框，请检查后再发送。");
    }
    recorder = null;
    button.disabled = false;
  }

  // At the cursor when the user was in the box, else after what is there; never sent from here.
  function insert(text) {
    const focused = document.activeElement === input;
    const from = focused ? input.selectionStart : input.value.length;
    const to = focused ? input.selectionEnd : input.value.length;
    input.setRangeText(text, from, to, "end");
    input.dispatchEvent(new Event("input", { bubbles: true })); // forms.js updates the character count
    input.focus();
  }

  button.addEventListener("click", () => {
    if (recorder && recorder.state === "recording") stop();
    else if (!recorder && !starting) {
      starting = true;
      start().finally(() => { starting = false; });
    }
  });
})();
