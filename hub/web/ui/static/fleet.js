// Fleet: clusters × GPU pools, totals by model × capacity type, and a capacity heat map that
// stays readable at 1,000 clusters (search, filters, sorting, paging). Live from the hub's
// watch of Cluster objects: a cluster the hub marks NotReady turns red as the event arrives.

import { api, follow } from "./api.js";
import { age, clear, h, keepFocus, picker, s, since } from "./dom.js";

const CLUSTERS = "/apis/fleetplane.io/v1alpha1/clusters";
const PAGE = 50;

/** The REST view of a Cluster (as GET /v1/clusters answers it), from the stored object a watch sends. */
export function clusterView(o) {
  const meta = o.metadata || {};
  const spec = o.spec || {};
  const st = o.status || {};
  const prices = spec.prices || {};
  const ready = (st.conditions || []).find((c) => c.type === "Ready");
  const pools = (st.gpuPools || []).map((p) => ({
    name: p.name || "",
    model: p.model || "",
    capacityType: p.capacityType || "",
    // As the engine prices it: the pool's own price, else the cluster's default for its type.
    price: p.pricePerGpuHour ?? prices[p.capacityType || ""] ?? null,
    total: Number(p.total) || 0,
    free: Number(p.free) || 0,
  }));
  const backend = spec.backend || "kubernetes";
  return {
    name: meta.name || "",
    ready: ready ? ready.status === "True" : false,
    readyReason: ready ? ready.reason || "" : "NoHeartbeat",
    region: st.region || spec.region || "",
    backend,
    simulated: backend === "simulated",
    heartbeatTime: st.heartbeatTime || null,
    total: st.totalGpus ?? pools.reduce((n, p) => n + p.total, 0),
    free: st.freeGpus ?? pools.reduce((n, p) => n + p.free, 0),
    pools,
  };
}

/** The model family, as the hub and the engine compare models: case-insensitive, size suffix
 * dropped ("a100-80gb" → "A100"; fleetplane_types.gpus.canonical_model). */
export function canonicalModel(name) {
  const key = String(name).trim().toUpperCase();
  const m = /^(.+?)[-_ ]?(\d+)\s*G(I)?B$/.exec(key);
  const base = m ? m[1].replace(/^[-_ ]+|[-_ ]+$/g, "") : "";
  return m && /[A-Z]/.test(base) ? base : key;
}

/**
 * GET /v1/fleet/summary's numbers over regions, from the clusters on the page (so the totals
 * move with the same watch events as the rows): pools of Ready clusters by model family ×
 * capacity type; NotReady clusters counted apart. tests/ui checks they equal the hub's.
 */
export function fleetSummary(clusters) {
  const by = new Map();
  let readyClusters = 0;
  const notReady = { clusters: 0, gpus: 0 };
  for (const c of clusters) {
    if (!c.ready) {
      notReady.clusters++;
      notReady.gpus += c.total;
      continue;
    }
    readyClusters++;
    for (const p of c.pools) {
      const model = canonicalModel(p.model);
      const k = `${model}\u0000${p.capacityType}`;
      const t = by.get(k) || { model, capacityType: p.capacityType, total: 0, free: 0, names: new Set(), sim: new Set() };
      t.total += p.total;
      t.free += p.free;
      t.names.add(c.name);
      if (c.simulated) t.sim.add(c.name);
      by.set(k, t);
    }
  }
  const rows = [...by.values()]
    .map((t) => ({ model: t.model, capacityType: t.capacityType, total: t.total, free: t.free, clusters: t.names.size, simulated: t.sim.size }))
    .sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.capacityType < b.capacityType ? -1 : 1));
  return {
    rows,
    readyClusters,
    totalGpus: rows.reduce((n, r) => n + r.total, 0),
    freeGpus: rows.reduce((n, r) => n + r.free, 0),
    notReady,
  };
}

const SORTS = {
  cluster: (r) => r.c.name,
  status: (r) => (r.c.ready ? 1 : 0),
  region: (r) => r.c.region,
  report: (r) => -(Date.parse(r.c.heartbeatTime || "") || 0),
  model: (r) => r.p?.model || "",
  capacity: (r) => r.p?.capacityType || "",
  price: (r) => r.p?.price ?? Infinity,
  free: (r) => r.p?.free ?? -1,
};

export function fleetPage(root, signal, setLive) {
  const clusters = new Map();
  const ui = { search: "", model: "", capacity: "", status: "", sort: "cluster", desc: false, page: 0 };
  let listed = false;

  const totals = h("section", { class: "panel", "aria-labelledby": "totals-h" });
  const heat = h("section", { class: "panel", "aria-labelledby": "heat-h" });
  const controls = h("div", { class: "controls" });
  const pager = h("div", { class: "pager" });
  const tableBox = h("div", { class: "table-box" });
  const clustersPanel = h(
    "section",
    { class: "panel", "aria-labelledby": "clusters-h" },
    h("h2", { id: "clusters-h" }, "Clusters and GPU pools"),
    controls,
    tableBox,
    pager,
  );
  // The panels appear together with the first list, not as empty frames that the data then
  // pushes down (a layout shift of 0.16 at 1,400 × 900 before: tests/ui/test_accessibility.py).
  const loading = h("p", { class: "empty", role: "status" }, "Loading the fleet…");
  const panels = [totals, heat, clustersPanel];
  for (const p of panels) p.hidden = true;
  clear(root, h("h1", null, "Fleet"), loading, panels);

  const search = h("input", {
    type: "search",
    id: "fleet-search",
    placeholder: "name, region, pool, model",
    oninput: (e) => {
      ui.search = e.target.value.trim().toLowerCase();
      ui.page = 0;
      schedule();
    },
  });
  const selects = h("span", { class: "selects" });
  controls.append(h("label", { class: "field", for: "fleet-search" }, h("span", null, "Search"), search), selects);

  function renderSelects() {
    const models = new Set();
    const caps = new Set();
    for (const c of clusters.values()) for (const p of c.pools) models.add(p.model), caps.add(p.capacityType);
    const set = (k) => (v) => {
      ui[k] = v;
      ui.page = 0;
      schedule();
    };
    const key = [...models].sort().join() + "|" + [...caps].sort().join();
    if (selects.dataset.key === key) return; // keep focus and selection while nothing changed
    selects.dataset.key = key;
    clear(selects, 
      picker("Model", [...models].sort(), ui.model, set("model")),
      picker("Capacity type", [...caps].sort(), ui.capacity, set("capacity")),
      picker("Status", ["Ready", "NotReady"], ui.status, set("status")),
    );
  }

  function rows() {
    const out = [];
    for (const c of clusters.values()) {
      if (ui.status && (ui.status === "Ready") !== c.ready) continue;
      const pools = c.pools.length ? c.pools : [null];
      for (const p of pools) {
        if (ui.model && p?.model !== ui.model) continue;
        if (ui.capacity && p?.capacityType !== ui.capacity) continue;
        if (ui.search) {
          const text = `${c.name} ${c.region} ${p?.name || ""} ${p?.model || ""}`.toLowerCase();
          if (!text.includes(ui.search)) continue;
        }
        out.push({ c, p });
      }
    }
    const key = SORTS[ui.sort];
    out.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const d = x < y ? -1 : x > y ? 1 : a.c.name < b.c.name ? -1 : a.c.name > b.c.name ? 1 : 0;
      return ui.desc ? -d : d;
    });
    return out;
  }

  function header(label, sortKey, cls) {
    if (!sortKey) return h("th", { scope: "col", class: cls }, label);
    const active = ui.sort === sortKey;
    return h(
      "th",
      { scope: "col", class: cls, "aria-sort": active ? (ui.desc ? "descending" : "ascending") : "none" },
      h(
        "button",
        {
          type: "button",
          class: "sort",
          dataset: { key: `sort-${sortKey}` },
          onclick: () => {
            ui.desc = active ? !ui.desc : false;
            ui.sort = sortKey;
            schedule();
          },
        },
        label,
        active ? (ui.desc ? " ▼" : " ▲") : "",
      ),
    );
  }

  function renderTable() {
    const all = rows();
    const pages = Math.max(1, Math.ceil(all.length / PAGE));
    ui.page = Math.min(ui.page, pages - 1);
    const shown = all.slice(ui.page * PAGE, ui.page * PAGE + PAGE);
    const body = shown.map(({ c, p }) =>
      h(
        "tr",
        { class: c.ready ? "" : "not-ready", dataset: { cluster: c.name, ready: String(c.ready) } },
        h("th", { scope: "row" }, c.name),
        h(
          "td",
          null,
          h("span", { class: `badge ${c.ready ? "ok" : "bad"}` }, c.ready ? "Ready" : "NotReady"),
          c.ready ? "" : h("span", { class: "reason" }, ` ${c.readyReason}`),
        ),
        h("td", null, c.simulated ? h("span", { class: "badge sim", title: "in-memory spoke: its GPUs do not exist" }, "simulated") : c.backend),
        h("td", null, c.region || "—"),
        h("td", { class: "num age", dataset: { since: c.heartbeatTime || "" } }, age(since(c.heartbeatTime))),
        h("td", null, p ? p.name : "—"),
        h("td", null, p ? p.model : "—"),
        h("td", null, p ? p.capacityType : "—"),
        h("td", { class: "num" }, p && p.price !== null ? `$${p.price.toFixed(2)}` : "—"),
        h("td", { class: "num pool-free" }, p ? meter(p.free, p.total) : "—"),
      ),
    );
    const head = h(
      "tr",
      null,
      header("Cluster", "cluster"),
      header("Status", "status"),
      h("th", { scope: "col" }, "Backend"),
      header("Region", "region"),
      header("Last report", "report", "num"),
      h("th", { scope: "col" }, "Pool"),
      header("Model", "model"),
      header("Capacity", "capacity"),
      header("$/GPU-h", "price", "num"),
      header("Free / allocatable", "free", "num"),
    );
    clear(tableBox, 
      h("table", { id: "clusters-table" }, h("thead", null, head), h("tbody", null, body)),
      all.length ? "" : h("p", { class: "empty" }, listed ? "No cluster matches." : "Loading clusters…"),
    );
    const first = all.length ? ui.page * PAGE + 1 : 0;
    clear(pager, 
      h("button", { type: "button", dataset: { key: "previous" }, disabled: ui.page === 0, onclick: () => (ui.page--, schedule()) }, "Previous"),
      h("span", { "aria-live": "polite" }, `rows ${first}–${ui.page * PAGE + shown.length} of ${all.length} (${clusters.size} clusters)`),
      h("button", { type: "button", dataset: { key: "next" }, disabled: ui.page >= pages - 1, onclick: () => (ui.page++, schedule()) }, "Next"),
    );
  }

  function renderHeat() {
    const list = [...clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    const cols = Math.max(10, Math.min(50, Math.ceil(Math.sqrt(list.length * 3))));
    const size = list.length <= 100 ? 28 : 14; // big squares for a small fleet
    const rowsN = Math.max(1, Math.ceil(list.length / cols));
    const notReady = list.filter((c) => !c.ready).length;
    const svg = s(
      "svg",
      {
        viewBox: `0 0 ${cols * size} ${rowsN * size}`,
        width: cols * size,
        height: rowsN * size,
        role: "img",
        "aria-label": `GPU use per cluster: ${list.length} clusters, ${notReady} NotReady`,
        class: "heat",
        onclick: (e) => {
          const name = e.target.closest("rect")?.dataset.cluster;
          if (!name) return;
          search.value = name;
          ui.search = name.toLowerCase();
          ui.page = 0;
          schedule();
        },
      },
      list.map((c, i) => {
        const used = c.total ? (c.total - c.free) / c.total : 0;
        const fill = !c.ready ? "var(--bad)" : `hsl(210 70% ${92 - Math.round(used * 62)}%)`;
        return s(
          "rect",
          {
            x: (i % cols) * size + 1,
            y: Math.floor(i / cols) * size + 1,
            width: size - 2,
            height: size - 2,
            rx: 2,
            style: { fill },
            dataset: { cluster: c.name, ready: String(c.ready) },
          },
          s("title", null, `${c.name}: ${c.ready ? "Ready" : "NotReady"}, ${c.total - c.free} of ${c.total} GPUs used`),
        );
      }),
    );
    clear(heat, 
      h("h2", { id: "heat-h" }, "Capacity: GPUs used per cluster"),
      h(
        "p",
        { class: "legend" },
        h("span", { class: "swatch free" }), " all free  ",
        h("span", { class: "swatch used" }), " all used  ",
        h("span", { class: "swatch down" }), " NotReady  ",
        h("span", { class: "hint" }, "(click a square to find its cluster)"),
      ),
      svg,
    );
  }

  function renderTotals() {
    if (!listed) {
      clear(totals, h("h2", { id: "totals-h" }, "Totals"), h("p", null, "Loading…"));
      return;
    }
    const summary = fleetSummary(clusters.values());
    clear(
      totals,
      h("h2", { id: "totals-h" }, "Totals (Ready clusters)"),
      h(
        "p",
        { class: "kpis" },
        h("span", { class: "kpi" }, h("b", { id: "total-free" }, String(summary.freeGpus)), " free of ", h("b", { id: "total-gpus" }, String(summary.totalGpus)), " GPUs"),
        h("span", { class: "kpi" }, h("b", { id: "ready-clusters" }, String(summary.readyClusters)), " Ready clusters"),
        h(
          "span",
          { class: `kpi ${summary.notReady.clusters ? "bad-text" : ""}` },
          h("b", { id: "not-ready-clusters" }, String(summary.notReady.clusters)),
          ` NotReady (${summary.notReady.gpus} GPUs not counted)`,
        ),
      ),
      h(
        "table",
        { id: "totals-table" },
        h("thead", null, h("tr", null, ["Model", "Capacity type", "Free", "Total", "Used", "Clusters", "Simulated clusters"].map((l, i) => h("th", { scope: "col", class: i > 1 ? "num" : "" }, l)))),
        h(
          "tbody",
          null,
          summary.rows.map((t) =>
            h(
              "tr",
              { dataset: { model: t.model, capacity: t.capacityType } },
              h("th", { scope: "row" }, t.model),
              h("td", null, t.capacityType),
              h("td", { class: "num free" }, String(t.free)),
              h("td", { class: "num total" }, String(t.total)),
              h("td", { class: "num" }, meter(t.total - t.free, t.total, "used")),
              h("td", { class: "num" }, String(t.clusters)),
              h("td", { class: "num" }, t.simulated ? h("span", { class: "badge sim" }, `${t.simulated} simulated`) : "0"),
            ),
          ),
        ),
      ),
    );
  }

  let pending = 0;
  let marked = false;
  function schedule() {
    if (pending) return;
    pending = requestAnimationFrame(() => {
      pending = 0;
      if (listed && loading.isConnected) {
        loading.remove();
        for (const p of panels) p.hidden = false;
      }
      keepFocus(root, () => {
        renderSelects();
        renderTotals();
        renderHeat();
        renderTable();
      });
      if (!marked && listed) {
        // The first complete picture (totals, heat map, table): bench/bench_dashboard.py reads it.
        marked = true;
        performance.mark("fleetplane:fleet-ready");
      }
    });
  }

  const ticker = setInterval(() => {
    for (const el of tableBox.querySelectorAll("td.age")) el.textContent = age(since(el.dataset.since));
  }, 1000);
  signal.addEventListener("abort", () => clearInterval(ticker));

  schedule();
  follow(CLUSTERS, {
    signal,
    onLive: setLive,
    async list() {
      // The stored objects in one list: it carries the resourceVersion the watch starts from,
      // and the hub answers it faster than the compact /v1/clusters view (no per-object model;
      // bench/bench_dashboard.py), though it is five times the bytes (the node lists).
      const l = await api(CLUSTERS, { signal });
      clusters.clear();
      for (const o of l.items || []) clusters.set(o.metadata.name, clusterView(o));
      listed = true;
      schedule();
      return l.metadata?.resourceVersion;
    },
    onEvent(type, o) {
      if (type === "DELETED") clusters.delete(o.metadata.name);
      else clusters.set(o.metadata.name, clusterView(o));
      schedule();
    },
  });
}

/** "12 / 16" with a bar: the bar is decoration, the numbers are the text. */
function meter(part, whole, kind = "free") {
  const pct = whole ? Math.round((100 * part) / whole) : 0;
  return h(
    "span",
    { class: `meter ${kind}` },
    h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "fill", style: { width: `${pct}%` } })),
    h("span", { class: "val" }, `${part} / ${whole}`),
  );
}
