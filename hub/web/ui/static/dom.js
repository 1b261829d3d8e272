// Building DOM nodes without markup: every string from the API goes in as textContent (or a
// property), never through innerHTML, because names, messages and events are tenant input.

const SVG_NS = "http://www.w3.org/2000/svg";

function put(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "style") Object.assign(el.style, v); // CSSOM: allowed by style-src 'self'
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** h("td", {class: "num"}, "12"): an element; strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  put(el, attrs);
  append(el, children);
  return el;
}

/** s("rect", {x: 1}): an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  put(el, attrs);
  append(el, children);
  return el;
}

/** Empty `el`, then append `children` (nested arrays are flattened, strings become text). */
export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "3m 12s" for a duration in seconds; "—" when unknown. */
export function age(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const sec = Math.max(0, Math.round(seconds));
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m ${sec % 60}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h ${Math.floor((sec % 3600) / 60)}m`;
  return `${Math.floor(sec / 86400)}d ${Math.floor((sec % 86400) / 3600)}h`;
}

export function since(timestamp) {
  const t = Date.parse(timestamp || "");
  return Number.isNaN(t) ? null : (Date.now() - t) / 1000;
}

/** A table: `columns` are [label, (row) => cell content, {class, sort}] triples. */
export function table(caption, columns, rows, rowAttrs) {
  const head = h("tr", null, columns.map(([label, , opts]) => h("th", { scope: "col", class: opts?.class }, label)));
  const body = rows.map((r) =>
    h("tr", rowAttrs ? rowAttrs(r) : null, columns.map(([, cell, opts]) => h("td", { class: opts?.class }, cell(r)))),
  );
  return h("table", null, caption ? h("caption", null, caption) : null, h("thead", null, head), h("tbody", null, body));
}

/** A labelled <select> with an "all" option; calls onchange(value). */
export function picker(label, values, current, onchange) {
  const id = `pick-${label.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  const sel = h(
    "select",
    { id, onchange: (e) => onchange(e.target.value) },
    h("option", { value: "" }, "all"),
    values.map((v) => h("option", { value: v, selected: v === current }, v)),
  );
  return h("label", { class: "field", for: id }, h("span", null, label), sel);
}

/** `fn` at most once per `ms`: the first call arms a timer, later calls until it fires are dropped. */
export function debounce(fn, ms) {
  let timer = 0;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = 0;
      fn();
    }, ms);
  };
}

/**
 * Run `render`, which redraws part of `root`, keeping the keyboard focus: a control focused
 * inside `root` that the redraw replaced is found again (by its id, its data-key, or its tag,
 * link and text) and focused, so live updates never drop a keyboard user back to the page top.
 */
export function keepFocus(root, render) {
  const el = document.activeElement;
  const key = el && el !== root && root.contains(el) ? focusKey(el) : null;
  render();
  if (!key || root.contains(el)) return;
  const again = [...root.querySelectorAll(el.tagName)].find((x) => focusKey(x) === key);
  if (again) again.focus({ preventScroll: true });
}

function focusKey(el) {
  if (el.id) return `#${el.id}`;
  if (el.dataset.key) return `[${el.dataset.key}]`;
  return `${el.tagName}|${el.getAttribute("href") || ""}|${el.textContent.trim()}`;
}
