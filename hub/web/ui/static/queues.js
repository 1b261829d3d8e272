// Queues: usage vs quota per flavor, borrowing, pending and admitted counts, and the fair-share
// position (queues ordered by weighted share: the lowest admits next). Live from the watch of
// Queue objects (the admission pass writes their status).

import { HubError, api, follow } from "./api.js";
import { clear, debounce, h, table } from "./dom.js";

const QUEUES = "/apis/fleetplane.io/v1alpha1/queues";

/** GET /v1/queues, or the same view built from the stored Queues on a hub without that route. */
async function queueViews(signal) {
  try {
    return (await api("/v1/queues", { signal })).items;
  } catch (err) {
    if (!(err instanceof HubError) || err.code !== 404) throw err;
  }
  const l = await api(QUEUES, { signal });
  return (l.items || []).map((o) => {
    const spec = o.spec || {};
    const st = o.status;
    const usage = (st?.flavorsUsage || []).map((u) => ({ ...u }));
    return {
      name: o.metadata.name,
      cohort: spec.cohort,
      weight: spec.fairSharing?.weight ?? 1,
      strategy: spec.queueingStrategy || "BestEffortFIFO",
      flavors: (spec.resourceGroups || []).flatMap((g) => g.flavors || []).map((f) => {
        const u = usage.find((x) => x.gpuModel === f.gpuModel && (x.capacityType || "on-demand") === (f.capacityType || "on-demand") && (x.region || null) === (f.region || null)) || {};
        return { ...f, used: u.used || 0, borrowed: u.borrowed || 0, available: u.available || 0 };
      }),
      pending: st?.pendingWorkloads || 0,
      admitted: st?.admittedWorkloads || 0,
      weightedShare: st?.weightedShare || 0,
      usageReported: Boolean(st),
    };
  });
}

export function queuesPage(root, signal, setLive) {
  const box = h("div", { id: "queues" }, h("p", null, "Loading…"));
  clear(root, h("h1", null, "Queues"), box);

  async function load() {
    const queues = await queueViews(signal);
    // Fair share: within a cohort the queue with the lowest weighted share admits next.
    const order = [...queues].sort((a, b) => a.weightedShare - b.weightedShare || (a.name < b.name ? -1 : 1));
    const position = new Map(order.map((q, i) => [q.name, i + 1]));
    if (!queues.length) {
      clear(box, h("p", { class: "empty" }, "No queues. An admin creates them with kubectl apply (docs/queues.md)."));
      return;
    }
    clear(box, 
      h(
        "section",
        { class: "panel" },
        h("h2", null, "Fair share"),
        table(
          null,
          [
            ["Position", (q) => String(position.get(q.name)), { class: "num" }],
            ["Queue", (q) => q.name],
            ["Cohort", (q) => q.cohort || "—"],
            ["Weight", (q) => String(q.weight), { class: "num" }],
            ["Weighted share", (q) => q.weightedShare.toFixed(3), { class: "num" }],
            ["Pending", (q) => String(q.pending), { class: "num" }],
            ["Admitted", (q) => String(q.admitted), { class: "num" }],
            ["Strategy", (q) => q.strategy],
          ],
          order,
          (q) => ({ dataset: { queue: q.name } }),
        ),
      ),
      queues.map((q) =>
        h(
          "section",
          { class: "panel", dataset: { queue: q.name } },
          h("h2", null, `Queue ${q.name}`, q.usageReported ? "" : h("span", { class: "badge warn" }, "no usage reported yet")),
          table(
            null,
            [
              ["Flavor", (f) => f.name || `${f.gpuModel} ${f.capacityType}${f.region ? ` ${f.region}` : ""}`],
              ["Used / quota", (f) => usage(f.used, f.nominalQuota), { class: "num" }],
              ["Borrowed", (f) => String(f.borrowed), { class: "num" }],
              ["Borrowing limit", (f) => (f.borrowingLimit ?? "cohort").toString(), { class: "num" }],
              ["Available", (f) => String(f.available), { class: "num" }],
            ],
            q.flavors,
          ),
        ),
      ),
    );
  }
  follow(QUEUES, {
    signal,
    onLive: setLive,
    async list() {
      // The resourceVersion first: whatever changes after it reaches the watch and re-reads.
      const rv = (await api(`${QUEUES}?limit=1`, { signal })).metadata?.resourceVersion;
      await load();
      return rv;
    },
    onEvent: debounce(() => load().catch(() => {}), 300),
  });
}

function usage(used, quota) {
  const pct = quota ? Math.min(100, Math.round((100 * used) / quota)) : 0;
  return h(
    "span",
    { class: `meter ${used > quota ? "over" : "used"}` },
    h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "fill", style: { width: `${pct}%` } })),
    h("span", { class: "val" }, `${used} / ${quota}`),
  );
}
