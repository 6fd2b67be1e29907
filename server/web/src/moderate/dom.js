// Small DOM helpers: build elements, batch renders, keep focus across reorders.

/**
 * h("button", {class: "x", onclick: fn, "aria-label": "..."}, "text", child...)
 * Attributes starting with "on" become listeners; class/text/hidden/disabled/value/checked
 * are set as properties; the rest as attributes (null/false skips them).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (["hidden", "disabled", "value", "checked", "type", "open"].includes(key)) el[key] = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (keeps screen readers and selections calm). */
export function setText(el, text) {
  text = String(text);
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Put `rows` (elements) into `list` in that order, moving only what is out of place, and
 * give focus back if moving a row took it away.
 */
export function reorder(list, rows) {
  const active = document.activeElement;
  rows.forEach((row, i) => {
    if (list.children[i] !== row) list.insertBefore(row, list.children[i] ?? null);
  });
  while (list.children.length > rows.length) list.lastElementChild.remove();
  if (active && active !== document.activeElement && active.isConnected) active.focus({ preventScroll: true });
}

/** Batches renders: mark(name) schedules views[name]() once for the next frame. */
export class Scheduler {
  constructor(views) {
    this.views = views;
    this.dirty = new Set();
    this.pending = false;
  }

  mark(...names) {
    for (const n of names) this.dirty.add(n);
    if (this.pending) return;
    this.pending = true;
    const run = () => this.flush();
    // Animation frames stop in a hidden tab; a timeout keeps the console current anyway.
    if (document.visibilityState === "visible") requestAnimationFrame(run);
    else setTimeout(run, 100);
  }

  flush() {
    this.pending = false;
    const names = [...this.dirty];
    this.dirty.clear();
    for (const name of names) this.views[name]?.();
  }
}

/** "3 questions" / "1 question". */
export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

/** Shorten text for a label or option. */
export function clip(text, n = 60) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
