// Source marks while a reply streams (docs/citations.md): 〔K12〕 becomes the mark of entry 12, drawn
// from the sources the tool frame sent; an id that names none of them is dropped. The server draws the
// same marks in the finished bubble. Everything is built with textContent: never markup.
(function () {
  "use strict";
  const PARTIAL = /^〔(K\d{0,10})?$/;
  const WHOLE = /^〔K(\d{1,10})〕$/;
  let sources = Object.create(null);
  let held = "";

  function mark(source, key) {
    const el = document.createElement("span");
    el.className = `cite cite-${source.kind}`;
    el.tabIndex = 0;
    el.dataset.ref = key;
    el.setAttribute("aria-label", `${source.label}：${source.source}`);
    el.textContent = source.label;
    const note = document.createElement("span");
    note.className = "cite-note";
    note.setAttribute("role", "tooltip");
    const title = document.createElement("strong");
    title.textContent = source.title;
    const where = document.createElement("cite");
    where.textContent = source.source;
    note.append(title, where);
    if (source.quote) {
      const quote = document.createElement("q");
      quote.textContent = source.quote;
      note.append(quote);
    }
    el.append(note);
    return el;
  }

  window.guyueCite = {
    reset() { sources = Object.create(null); held = ""; },
    add(more) {
      for (const [key, value] of Object.entries(more || {})) if (/^K\d{1,10}$/.test(key)) sources[key] = value;
    },
    // One character in; out, what to write: plain characters, or a mark element.
    feed(ch) {
      if (!held && ch !== "〔") return [ch];
      held += ch;
      const whole = WHOLE.exec(held);
      if (whole) {
        const key = `K${whole[1]}`;
        held = "";
        return sources[key] ? [mark(sources[key], key)] : [];
      }
      if (PARTIAL.test(held)) return []; // may still become an id: wait for the next character
      const out = Array.from(held);
      held = "";
      if (out.length > 1 && out[out.length - 1] === "〔") held = out.pop(); // a new id may start here
      return out;
    },
  };
})();
