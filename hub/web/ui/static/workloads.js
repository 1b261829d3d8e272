// Workloads: the list (phase, queue, priority, placed clusters and epoch, age; filters by
// namespace, phase, queue and cluster) and one workload's detail: the placement explanation
// plugin by plugin per cluster (the chosen one marked), per-cluster status, conditions, events
// and its epoch history (status.epochHistory). Live: the hub's watch of Workloads triggers a
// re-read of the REST view.

import { HubError, api, follow } from "./api.js";
import { age, clear, debounce, h, keepFocus, picker, since, table } from "./dom.js";

const API = "/apis/fleetplane.io/v1alpha1";
const PAGE = 50;

export function phaseBadge(phase) {
  const cls = { Running: "ok", Placed: "ok", Succeeded: "done", Failed: "bad", Pending: "warn" }[phase] || "";
  return h("span", { class: `badge ${cls}` }, phase || "Pending");
}

export function workloadHref(ns, name) {
  return `#/workloads/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

export function workloadsPage(root, signal, setLive) {
  const ui = { search: "", namespace: "", phase: "", queue: "", cluster: "", page: 0 };
  let items = [];
  let loaded = false;
  const controls = h("div", { class: "controls" });
  const box = h("div", { class: "table-box" });
  const pager = h("div", { class: "pager" });
  clear(root, h("h1", null, "Workloads"), h("section", { class: "panel" }, controls, box, pager));
  const search = h("input", {
    type: "search",
    id: "wl-search",
    placeholder: "name",
    oninput: (e) => {
      ui.search = e.target.value.trim().toLowerCase();
      ui.page = 0;
      render();
    },
  });
  const selects = h("span", { class: "selects" });
  controls.append(h("label", { class: "field", for: "wl-search" }, h("span", null, "Search"), search), selects);

  const placedOn = (w) => (w.placement?.clusters || []).map((c) => c.name);

  function renderSelects() {
    const uniq = (f) => [...new Set(items.flatMap(f).filter(Boolean))].sort();
    const opts = {
      namespace: uniq((w) => [w.namespace]),
      phase: uniq((w) => [w.phase]),
      queue: uniq((w) => [w.queue]),
      cluster: uniq(placedOn),
    };
    const key = JSON.stringify(opts);
    if (selects.dataset.key === key) return;
    selects.dataset.key = key;
    const set = (k) => (v) => {
      ui[k] = v;
      ui.page = 0;
      render();
    };
    clear(selects, 
      picker("Namespace", opts.namespace, ui.namespace, set("namespace")),
      picker("Phase", opts.phase, ui.phase, set("phase")),
      picker("Queue", opts.queue, ui.queue, set("queue")),
      picker("Cluster", opts.cluster, ui.cluster, set("cluster")),
    );
  }

  function render() {
    keepFocus(root, draw);
  }

  function draw() {
    renderSelects();
    const shown = items.filter(
      (w) =>
        (!ui.search || w.name.toLowerCase().includes(ui.search)) &&
        (!ui.namespace || w.namespace === ui.namespace) &&
        (!ui.phase || w.phase === ui.phase) &&
        (!ui.queue || w.queue === ui.queue) &&
        (!ui.cluster || placedOn(w).includes(ui.cluster)),
    );
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    ui.page = Math.min(ui.page, pages - 1);
    const page = shown.slice(ui.page * PAGE, ui.page * PAGE + PAGE);
    const t = table(
      null,
      [
        ["Name", (w) => h("a", { href: workloadHref(w.namespace, w.name) }, w.name)],
        ["Namespace", (w) => w.namespace],
        ["Phase", (w) => phaseBadge(w.phase)],
        ["Queue", (w) => w.queue || "—"],
        ["Priority", (w) => String(w.priority), { class: "num" }],
        ["GPUs", (w) => `${w.replicas} × ${w.gpusPerReplica}`, { class: "num" }],
        ["Placed on", (w) => placedOn(w).join(", ") || "—"],
        ["Epoch", (w) => (w.placement?.epoch ?? "—").toString(), { class: "num" }],
        ["Age", (w) => age(since(w.createdAt)), { class: "num" }],
      ],
      page,
      (w) => ({ dataset: { workload: `${w.namespace}/${w.name}` } }),
    );
    t.id = "workloads-table";
    clear(box, t, shown.length ? "" : h("p", { class: "empty" }, loaded ? "No workload matches." : "Loading workloads…"));
    clear(pager, 
      h("button", { type: "button", dataset: { key: "previous" }, disabled: ui.page === 0, onclick: () => (ui.page--, render()) }, "Previous"),
      h("span", { "aria-live": "polite" }, `${shown.length} of ${items.length} workloads`),
      h("button", { type: "button", dataset: { key: "next" }, disabled: ui.page >= pages - 1, onclick: () => (ui.page++, render()) }, "Next"),
    );
  }

  async function load() {
    const l = await api("/v1/workloads", { signal });
    items = l.items.sort((a, b) => (a.namespace + "/" + a.name < b.namespace + "/" + b.name ? -1 : 1));
    loaded = true;
    render();
    return l.resourceVersion;
  }
  render();
  follow(`${API}/workloads`, {
    signal,
    onLive: setLive,
    list: load,
    // The REST view resolves queues and priorities: re-read it, once per burst of events.
    onEvent: debounce(() => load().catch(() => {}), 300),
  });
}

function section(title, ...content) {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

/**
 * The explanation as a table: one row per cluster (feasible ones by rank, then those a
 * filter removed), one column per plugin with its contribution (score × weight), the
 * chosen clusters marked in words and colour.
 */
export function explanationTable(explanation, chosen) {
  const rows = explanation?.clusters || [];
  if (!rows.length) return h("p", { class: "empty" }, "No explanation recorded.");
  const plugins = [];
  for (const r of rows) for (const p of r.plugins || []) if (!plugins.includes(p.name)) plugins.push(p.name);
  const head = h(
    "tr",
    null,
    ["Rank", "Cluster", "Pool", "Model", "Capacity"].map((l) => h("th", { scope: "col" }, l)),
    plugins.map((p) => h("th", { scope: "col", class: "num" }, p)),
    h("th", { scope: "col", class: "num" }, "Score"),
  );
  const body = rows.map((r) => {
    const isChosen = chosen.includes(r.name);
    const cells = [
      h("td", { class: "num" }, r.feasible ? String(r.rank ?? "") : "—"),
      h("th", { scope: "row" }, r.name, isChosen ? h("span", { class: "badge ok chosen-mark" }, "chosen") : ""),
      h("td", null, r.pool || "—"),
      h("td", null, r.gpuModel || "—"),
      h("td", null, r.capacityType || "—"),
    ];
    if (r.feasible) {
      const by = Object.fromEntries((r.plugins || []).map((p) => [p.name, p]));
      for (const name of plugins) {
        const p = by[name];
        cells.push(
          h(
            "td",
            { class: "num", title: p ? `${p.score} × ${p.weight} = ${p.contribution}${p.detail ? ` — ${p.detail}` : ""}` : "" },
            p ? num(p.contribution) : "—",
            p?.detail ? h("div", { class: "detail" }, p.detail) : "",
          ),
        );
      }
      cells.push(h("td", { class: "num score" }, num(r.score)));
    } else {
      cells.push(
        h(
          "td",
          { colspan: plugins.length + 1, class: "removed" },
          h("span", { class: "badge bad" }, `filter: ${r.filter || "?"}`),
          ` ${r.reason || ""}`,
          r.detail ? h("div", { class: "detail" }, r.detail) : "",
        ),
      );
    }
    return h("tr", { class: isChosen ? "chosen" : r.feasible ? "" : "removed-row", dataset: { cluster: r.name } }, cells);
  });
  return h("table", { class: "explanation" }, h("thead", null, head), h("tbody", null, body));
}

/**
 * status.epochHistory as a table, newest first: each epoch's clusters, why and when it started,
 * and when and why it ended (the current one says so).
 */
export function epochHistory(entries, current) {
  if (!entries.length) return h("p", { class: "empty" }, "No epoch recorded yet.");
  const why = (reason, message) => [h("span", { class: `badge ${REASON_BADGE[reason] || ""}` }, reason), message ? h("div", { class: "detail" }, message) : ""];
  const rows = [...entries].reverse().map((e) => {
    const open = !e.endedAt;
    return h(
      "tr",
      { class: open && e.epoch === current ? "current" : "", dataset: { epoch: String(e.epoch) } },
      h("th", { scope: "row", class: "num" }, String(e.epoch)),
      h("td", null, (e.clusters || []).join(", ") || "—"),
      h("td", null, why(e.reason || "Placed", e.message)),
      h("td", { class: "when" }, e.startedAt || "—"),
      h("td", { class: "when" }, open ? (e.epoch === current ? "current" : "—") : e.endedAt),
      h("td", null, open ? "" : why(e.endReason || "?", e.endMessage)),
    );
  });
  const head = h("tr", null, ["Epoch", "Clusters", "Started because", "Started", "Ended", "Ended because"].map((l, i) => h("th", { scope: "col", class: i === 0 ? "num" : "" }, l)));
  return h("table", { class: "epochs", id: "epoch-history" }, h("caption", null, "Epoch history (newest first)"), h("thead", null, head), h("tbody", null, rows));
}

const REASON_BADGE = { Placed: "ok", Succeeded: "done", Failed: "bad", FailedOver: "warn", Evicted: "warn", PreemptedByPriority: "warn", ReclaimedByQueue: "warn", Requeued: "warn" };

function num(x) {
  return typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : "—";
}

export async function workloadDetail(root, signal, setLive, ns, name) {
  clear(root, h("p", null, h("a", { href: "#/workloads" }, "← Workloads")), h("h1", null, `${ns}/${name}`));
  const body = h("div", { id: "workload-detail" }, h("p", null, "Loading…"));
  root.append(body);
  const path = `/v1/namespaces/${encodeURIComponent(ns)}/workloads/${encodeURIComponent(name)}`;
  const kube = `${API}/namespaces/${encodeURIComponent(ns)}/workloads/${encodeURIComponent(name)}`;

  async function load() {
    let w;
    let obj;
    try {
      [w, obj] = await Promise.all([api(path, { signal }), api(kube, { signal })]);
    } catch (err) {
      if (err instanceof HubError && err.code !== 401) clear(body, h("p", { class: "error", role: "alert" }, err.message));
      throw err;
    }
    const q = encodeURIComponent;
    const [events, assignments] = await Promise.all([
      api(`/api/v1/namespaces/${q(ns)}/events?fieldSelector=${q(`involvedObject.name=${name}`)}`, { signal }).catch(() => ({ items: [] })),
      api(`${API}/namespaces/${q(ns)}/assignments?fieldSelector=${q(`spec.workloadRef.name=${name}`)}`, { signal }).catch(() => ({ items: [] })),
    ]);
    const chosen = (w.placement?.clusters || []).map((c) => c.name);
    const facts = [
      ["Phase", phaseBadge(w.phase)],
      ["Message", w.message || "—"],
      ["Queue", w.queue || "—"],
      ["Priority", String(w.priority)],
      ["GPUs", `${w.replicas} replicas × ${w.gpusPerReplica} (${w.gpus}) ${w.gpuModels.length ? w.gpuModels.join(" or ") : "any model"}`],
      ["Placement mode", w.placementMode],
      ["Placed on", w.placement?.clusters?.length ? w.placement.clusters.map((c) => `${c.name} (${c.replicas}× ${c.capacityType || ""})`).join(", ") : "—"],
      ["Epoch", String(w.placement?.epoch ?? "—")],
      ["Decided", w.placement?.decidedAt || "—"],
      ["Admission", w.admission ? `queue ${w.admission.queue}, ${w.admission.gpus} GPUs` : "—"],
      ["Created", `${w.createdAt || "—"} (${age(since(w.createdAt))} ago)`],
    ];
    const conditions = obj.status?.conditions || [];
    const evs = (events.items || []).sort((a, b) => ((a.lastTimestamp || "") < (b.lastTimestamp || "") ? 1 : -1));
    const asg = (assignments.items || []).sort((a, b) => (a.spec?.epoch || 0) - (b.spec?.epoch || 0));
    const epochs = obj.status?.epochHistory || [];
    keepFocus(body, () => clear(body, 
      section("Summary", h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]))),
      section(
        "Placement explanation",
        h("p", { class: "hint" }, w.explanation?.reason || w.placement?.reason || ""),
        explanationTable(w.explanation, chosen),
      ),
      section(
        "Per-cluster status",
        w.clusters?.length
          ? table(null, [["Cluster", (c) => c.name], ["Phase", (c) => c.phase || "—"], ["Epoch", (c) => String(c.epoch ?? "—"), { class: "num" }], ["Message", (c) => c.message || ""]], w.clusters)
          : h("p", { class: "empty" }, "No cluster has reported on it yet."),
      ),
      section(
        "Conditions",
        conditions.length
          ? table(null, [["Type", (c) => c.type], ["Status", (c) => c.status], ["Reason", (c) => c.reason || ""], ["Message", (c) => c.message || ""], ["Since", (c) => c.lastTransitionTime || ""]], conditions)
          : h("p", { class: "empty" }, "No conditions."),
      ),
      section(
        "Epochs",
        h("p", { class: "hint" }, `Current epoch ${w.placement?.epoch ?? "—"}. Every re-placement (failover, spot interruption, preemption) starts a new one; the hub keeps the last 10.`),
        epochHistory(epochs, w.placement?.epoch),
        asg.length
          ? table("Assignments", [["Cluster", (a) => a.spec?.clusterName || ""], ["Epoch", (a) => String(a.spec?.epoch ?? ""), { class: "num" }], ["Replicas", (a) => String(a.spec?.replicas ?? ""), { class: "num" }], ["Phase", (a) => a.status?.phase || "—"], ["Reason", (a) => a.status?.reason || ""]], asg)
          : h("p", { class: "empty" }, "No assignments."),
      ),
      section(
        "Events",
        evs.length
          ? table(null, [["Type", (e) => e.type || ""], ["Reason", (e) => e.reason || ""], ["Count", (e) => String(e.count || 1), { class: "num" }], ["Last seen", (e) => e.lastTimestamp || ""], ["Message", (e) => e.message || ""]], evs)
          : h("p", { class: "empty" }, "No events."),
      ),
    ));
    return obj.metadata?.resourceVersion;
  }

  let rv;
  try {
    rv = await load();
  } catch {
    return; // not found (or not yours), or signed out: said on the page, nothing to follow
  }
  follow(`${API}/namespaces/${encodeURIComponent(ns)}/workloads?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`, {
    signal,
    onLive: setLive,
    list: () => (rv !== undefined ? Promise.resolve(rv).finally(() => (rv = undefined)) : load()),
    onEvent: debounce(() => load().catch(() => {}), 300),
  });
}
