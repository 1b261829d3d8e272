// A small YAML reader for the subset Kubernetes manifests use: block mappings and sequences,
// plain, quoted and block (| >) scalars, flow [..] and {..} of scalars, comments, and several
// documents separated by ---. Anything else is refused with its line number rather than
// guessed at (anchors, tags, multi-line quoted strings, complex keys). JSON is YAML: a
// document that parses as JSON is taken as JSON.

export class YamlError extends Error {}

function stripComment(text) {
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote && !(quote === '"' && text[i - 1] === "\\")) quote = null;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,-]/.test(text[i - 1])) quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      return text.slice(0, i);
    }
  }
  return text;
}

function scalar(raw, line) {
  const t = raw.trim();
  if (t === "" || t === "~" || t === "null" || t === "Null" || t === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (t.startsWith('"')) {
    if (!t.endsWith('"') || t.length < 2) throw new YamlError(`line ${line}: unterminated "string"`);
    try {
      return JSON.parse(t);
    } catch {
      throw new YamlError(`line ${line}: bad escape in ${t}`);
    }
  }
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) throw new YamlError(`line ${line}: unterminated 'string'`);
    return t.slice(1, -1).replaceAll("''", "'");
  }
  if (t.startsWith("[") || t.startsWith("{")) return flow(t, line);
  if (/^[&*!|>%@`]/.test(t)) throw new YamlError(`line ${line}: "${t.slice(0, 20)}" (anchors, aliases and tags) is not supported`);
  return t;
}

/** A flow collection of scalars and nested flow collections: [a, b], {k: v}. */
function flow(text, line) {
  let i = 0;
  const fail = (what) => {
    throw new YamlError(`line ${line}: ${what} in ${text}`);
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  function item(stops) {
    ws();
    if (text[i] === "[" || text[i] === "{") return collection();
    const start = i;
    let quote = null;
    while (i < text.length) {
      const c = text[i];
      if (quote) {
        if (c === quote) quote = null;
      } else if (c === '"' || c === "'") quote = c;
      else if (stops.includes(c)) break;
      i++;
    }
    return text.slice(start, i);
  }
  function collection() {
    const open = text[i++];
    const close = open === "[" ? "]" : "}";
    const out = open === "[" ? [] : {};
    ws();
    if (text[i] === close) {
      i++;
      return out;
    }
    for (;;) {
      if (open === "[") {
        const v = item(",]");
        out.push(typeof v === "string" ? scalar(v, line) : v);
      } else {
        const k = item(":,}");
        if (text[i] !== ":") fail("a key without a value");
        i++;
        const v = item(",}");
        out[String(scalar(k, line))] = typeof v === "string" ? scalar(v, line) : v;
      }
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === close) {
        i++;
        return out;
      }
      fail(`a missing "${close}"`);
    }
  }
  const v = collection();
  ws();
  if (i !== text.length) fail("text after the closing bracket");
  return v;
}

/** Split "key: value" at its first ": " (or trailing ":") outside quotes; null if not a key. */
function splitKey(text) {
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if ((c === '"' || c === "'") && i === 0) quote = c;
    else if (c === ":" && (i === text.length - 1 || text[i + 1] === " ")) {
      return [text.slice(0, i).trim(), text.slice(i + 1).trim()];
    } else if ((c === "[" || c === "{") && i === 0) return null;
  }
  return null;
}

function parseDocument(rawLines, firstLine) {
  const lines = [];
  rawLines.forEach((raw, k) => {
    if (/\t/.test(raw.match(/^\s*/)[0])) throw new YamlError(`line ${firstLine + k}: tabs may not indent YAML`);
    const text = stripComment(raw).replace(/\s+$/, "");
    const indent = text.length - text.trimStart().length;
    lines.push({ indent, text: text.trimStart(), line: firstLine + k, raw });
  });
  const items = lines.filter((l) => l.text !== "");
  let i = 0;
  const isDash = (l) => l.text === "-" || l.text.startsWith("- ");

  function block(indent) {
    const l = items[i];
    return isDash(l) ? seq(l.indent) : map(l.indent);
  }
  function seq(indent) {
    const out = [];
    while (i < items.length && items[i].indent === indent && isDash(items[i])) {
      const l = items[i];
      const rest = l.text.slice(1).trimStart();
      if (rest === "") {
        i++;
        out.push(i < items.length && items[i].indent > indent ? block(items[i].indent) : null);
      } else if (splitKey(rest) && !rest.startsWith('"') && !rest.startsWith("[") && !rest.startsWith("{")) {
        // "- key: value" opens a mapping whose keys line up with "key".
        items[i] = { ...l, indent: indent + (l.text.length - rest.length), text: rest };
        out.push(map(items[i].indent));
      } else {
        i++;
        out.push(scalar(rest, l.line));
      }
    }
    return out;
  }
  function map(indent) {
    const out = {};
    while (i < items.length && items[i].indent === indent && !isDash(items[i])) {
      const l = items[i];
      const kv = splitKey(l.text);
      if (!kv) throw new YamlError(`line ${l.line}: expected "key: value", found "${l.text.slice(0, 40)}"`);
      const key = String(scalar(kv[0], l.line));
      const rest = kv[1];
      i++;
      if (/^[|>][-+]?$/.test(rest)) {
        out[key] = blockScalar(rest, indent, l);
      } else if (rest === "") {
        const next = items[i];
        if (next && (next.indent > indent || (next.indent === indent && isDash(next)))) out[key] = block(next.indent);
        else out[key] = null;
      } else {
        out[key] = scalar(rest, l.line);
      }
    }
    if (i < items.length && items[i].indent > indent) throw new YamlError(`line ${items[i].line}: unexpected indentation`);
    return out;
  }
  function blockScalar(style, indent, at) {
    const start = lines.indexOf(at) + 1;
    const body = [];
    let k = start;
    for (; k < lines.length; k++) {
      const l = lines[k];
      if (l.text !== "" && l.indent <= indent) break;
      body.push(l.raw);
    }
    while (i < items.length && items[i].line < (lines[k]?.line ?? Infinity)) i++;
    const cut = Math.min(...body.filter((b) => b.trim()).map((b) => b.length - b.trimStart().length));
    const texts = body.map((b) => b.slice(cut));
    while (texts.length && texts[texts.length - 1].trim() === "") texts.pop();
    const joined = style.startsWith("|") ? texts.join("\n") : texts.join(" ").replace(/ +\n/g, "\n");
    return style.endsWith("-") ? joined : `${joined}\n`;
  }

  if (!items.length) return undefined;
  const v = block(items[0].indent);
  if (i < items.length) throw new YamlError(`line ${items[i].line}: unexpected "${items[i].text.slice(0, 40)}"`);
  return v;
}

/** Every document of `text` (a list: YAML's --- separated documents, or one JSON value). */
export function parseDocuments(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return [JSON.parse(trimmed)];
    } catch {
      /* not JSON: read it as YAML */
    }
  }
  const all = text.split(/\r?\n/);
  const docs = [];
  let chunk = [];
  let first = 1;
  all.forEach((line, k) => {
    if (/^---(\s|$)/.test(line) || /^\.\.\.\s*$/.test(line)) {
      docs.push([chunk, first]);
      chunk = [];
      first = k + 2;
    } else chunk.push(line);
  });
  docs.push([chunk, first]);
  return docs.map(([lines, at]) => parseDocument(lines, at)).filter((d) => d !== undefined && d !== null);
}
