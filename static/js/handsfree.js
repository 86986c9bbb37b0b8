// 语音对话 (docs/voice.md): listen → transcribe (dictation.js) → send through the chat form, so the
// message meets every guard a typed one does → the reply is read aloud as it is written (speech.js)
// → listen again. Switched on by the user, off by the same button; nothing else sends by itself.
(() => {
  "use strict";
  const root = document.getElementById("chat");
  const button = document.getElementById("chat-voice-mode");
  if (!root || !button || button.disabled) return; // needs both a transcription and a speech model
  const status = document.getElementById("chat-voice-status");
  const input = document.getElementById("chat-input");
  const form = document.getElementById("chat-form");
  const LEVEL = 0.02;          // RMS above this is voice (fake and real microphones alike)
  const QUIET_MS = 1200;       // this much quiet after speech ends the utterance
  const WAIT_MS = 30000;       // no voice at all for this long: 语音对话 pauses itself
  const UTTERANCE_MS = 30000;  // one utterance at most (the server also limits a recording's length)
  let on = false;
  let phase = "off";           // listening | transcribing | replying
  let recording = null;        // { recorder, stream, context, timer }

  function say(text) { status.textContent = text || ""; }

  function setOn(value, reason) {
    on = value;
    root.dataset.handsFree = value ? "on" : "off";
    button.setAttribute("aria-pressed", String(value));
    button.textContent = value ? "结束语音对话" : "语音对话";
    button.classList.toggle("danger", value);
    if (!value) {
      phase = "off";
      if (recording) finish(false);
      window.guyueSpeech?.stop();
      say(reason || "");
    }
  }

  async function listen() {
    if (!on) return;
    phase = "listening";
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      setOn(false, error.name === "NotAllowedError" ? "没有获得话筒权限，语音对话已结束。" : "找不到可用的话筒，语音对话已结束。");
      return;
    }
    if (!on) { stream.getTracks().forEach((track) => track.stop()); return; }
    const dictation = window.guyueDictation;
    const mimeType = dictation.types.find((type) => MediaRecorder.isTypeSupported(type));
    const recorder = new MediaRecorder(stream, { audioBitsPerSecond: dictation.bitsPerSecond, ...(mimeType ? { mimeType } : {}) });
    const chunks = [];
    recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const began = performance.now();
    let heard = 0;   // when voice was first heard
    let lastVoice = 0;
    recording = { recorder, stream, context, chunks, timer: null, heard: false };
    recorder.start();
    say("正在聆听……说完稍作停顿，即自动发送。");
    recording.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
      const now = performance.now();
      if (rms > LEVEL) { lastVoice = now; if (!heard) heard = now; recording.heard = true; }
      if (heard && (now - lastVoice > QUIET_MS || now - heard > UTTERANCE_MS)) finish(true);
      else if (!heard && now - began > WAIT_MS) setOn(false, "许久没有听到声音，语音对话已暂停。");
    }, 100);
  }

  // Stop recording; with `send`, transcribe what was heard and send it.
  function finish(send) {
    const { recorder, stream, context, chunks, timer, heard } = recording;
    recording = null;
    clearInterval(timer);
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      context.close();
      if (send && heard && on) transcribeAndSend(new Blob(chunks, { type: recorder.mimeType }));
    });
    if (recorder.state !== "inactive") recorder.stop();
  }

  async function transcribeAndSend(blob) {
    phase = "transcribing";
    say("正在识别……");
    const result = await window.guyueDictation.transcribe(blob);
    if (!on) return;
    if (result.error) { setOn(false, `${result.error}（语音对话已结束）`); return; }
    const text = result.text.trim();
    if (!text) { listen(); return; } // nothing recognisable: listen again
    input.value = text;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    phase = "replying";
    say(`已发送：「${text}」`);
    form.requestSubmit(); // chat.js sends it as if typed: the same checks, the same guards
  }

  // The reply has ended and, when it was read, its reading too: listen for the next turn.
  root.addEventListener("guyue:reply", (event) => {
    if (!on || phase !== "replying" || event.detail.phase !== "end" || !event.detail.mine) return;
    if (!window.guyueSpeech?.busy()) setTimeout(() => { if (on && phase === "replying" && !window.guyueSpeech?.busy()) listen(); }, 0);
  });
  root.addEventListener("guyue:speech-idle", () => { if (on && phase === "replying") listen(); });

  button.addEventListener("click", () => {
    if (on) { setOn(false, "语音对话已结束。"); return; }
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined" || !window.guyueDictation) {
      say("此浏览器不支持录音，无法语音对话。");
      return;
    }
    setOn(true);
    listen();
  });
})();
