// What-if: paste or upload Workload manifests (YAML or JSON), see where they would land on the
// live fleet and why — POST /v1/whatif, which stores nothing.

import { HubError, api } from "./api.js";
import { clear, h, table } from "./dom.js";
import { explanationTable } from "./workloads.js";
import { YamlError, parseDocuments } from "./yaml.js";

const EXAMPLE = `apiVersion: fleetplane.io/v1alpha1
kind: Workload
metadata:
  name: try-me
spec:
  replicas: 1
  gpu:
    count: 8
    models: [H100, A100]
  capacityTypes:
    allowed: [reserved, on-demand, spot]
  manifests:
  - apiVersion: batch/v1
    kind: Job
    metadata:
      name: try-me
`;

/** The request body from the pasted documents: Workloads (and Queues / PriorityClasses, if any). */
export function whatifBody(text, profile) {
  const docs = parseDocuments(text).flatMap((d) => (Array.isArray(d) ? d : d?.kind === "List" ? d.items || [] : [d]));
  if (docs.length === 1 && docs[0] && Array.isArray(docs[0].workloads)) return { ...docs[0], ...(profile ? { profile } : {}) };
  const body = { workloads: [] };
  for (const [i, d] of docs.entries()) {
    if (typeof d !== "object" || d === null) throw new YamlError(`document ${i + 1} is not an object`);
    const kind = d.kind || "Workload";
    if (kind === "Workload") body.workloads.push(d);
    else if (kind === "Queue") (body.queues ||= []).push(d);
    else if (kind === "PriorityClass") (body.priorityClasses ||= []).push(d);
    else throw new YamlError(`document ${i + 1} is a ${kind}: what-if takes Workloads (and Queues, PriorityClasses)`);
  }
  if (!body.workloads.length) throw new YamlError("no Workload in the manifest");
  if (profile) body.profile = profile;
  return body;
}

export function whatifPage(root, signal) {
  const text = h("textarea", { id: "whatif-manifest", rows: 18, spellcheck: "false", "aria-describedby": "whatif-help" });
  text.value = EXAMPLE;
  const file = h("input", {
    type: "file",
    id: "whatif-file",
    accept: ".yaml,.yml,.json,application/json,text/yaml",
    onchange: async (e) => {
      const f = e.target.files[0];
      if (f) text.value = await f.text();
    },
  });
  const profile = h(
    "select",
    { id: "whatif-profile" },
    ["", "default", "spread", "cheapest", "data-local"].map((p) => h("option", { value: p }, p || "the hub's profile")),
  );
  const out = h("div", { id: "whatif-result", "aria-live": "polite" });
  const run = h("button", { type: "submit", class: "primary" }, "Run what-if");
  const form = h(
    "form",
    {
      class: "panel",
      onsubmit: async (e) => {
        e.preventDefault();
        let body;
        try {
          body = whatifBody(text.value, profile.value);
        } catch (err) {
          clear(out, h("p", { class: "error", role: "alert" }, `The manifest cannot be read: ${err.message}`));
          return;
        }
        run.disabled = true;
        clear(out, h("p", null, "Asking the placement engine…"));
        try {
          const report = await api("/v1/whatif", {
            method: "POST",
            signal,
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(body),
          });
          showReport(out, report);
        } catch (err) {
          if (!(err instanceof HubError)) throw err;
          const causes = err.status?.details?.causes || [];
          clear(out, 
            h("p", { class: "error", role: "alert" }, err.message),
            causes.length ? h("ul", null, causes.map((c) => h("li", null, `${c.field || ""}: ${c.message || ""}`))) : "",
          );
        } finally {
          run.disabled = false;
        }
      },
    },
    h(
      "p",
      { id: "whatif-help" },
      "Paste or upload Workload manifests (YAML or JSON, several separated by ---). Nothing is submitted: the hub runs its placement engine on the live fleet and stores nothing.",
    ),
    h("label", { for: "whatif-manifest", class: "field block" }, h("span", null, "Manifest"), text),
    h(
      "div",
      { class: "controls" },
      h("label", { class: "field", for: "whatif-file" }, h("span", null, "Upload"), file),
      h("label", { class: "field", for: "whatif-profile" }, h("span", null, "Profile"), profile),
      run,
    ),
  );
  clear(root, h("h1", null, "What-if"), form, out);
}

function showReport(out, report) {
  const s = report.summary || {};
  clear(out, 
    h(
      "section",
      { class: "panel" },
      h("h2", null, "Result"),
      h("p", { id: "whatif-summary" }, `${s.placed ?? 0} of ${s.workloads ?? 0} would be placed, ${s.pending ?? 0} would wait (profile ${report.profile}, ${report.snapshot?.clusters ?? "?"} clusters, ${report.snapshot?.reservations ?? 0} in-flight placements held back).`),
      (report.warnings || []).map((w) => h("p", { class: "warn-text" }, `Warning: ${w}`)),
    ),
    (report.decisions || []).map((d) => {
      const chosen = (d.placements || []).map((p) => p.cluster);
      return h(
        "section",
        { class: "panel decision", dataset: { workload: d.workload, placed: String(Boolean(d.placed)) } },
        h("h2", null, d.workload, " ", h("span", { class: `badge ${d.placed ? "ok" : "warn"}` }, d.placed ? "would be placed" : "would wait")),
        h("p", { class: "reason" }, d.reason || ""),
        chosen.length
          ? table(
              null,
              [
                ["Cluster", (p) => p.cluster],
                ["Replicas", (p) => String(p.replicas), { class: "num" }],
                ["Pool", (p) => p.pool || ""],
                ["Model", (p) => p.gpuModel || ""],
                ["Capacity", (p) => p.capacityType || ""],
                ["$/GPU-h", (p) => (p.pricePerGpuHour === null || p.pricePerGpuHour === undefined ? "—" : `$${p.pricePerGpuHour.toFixed(2)}`), { class: "num" }],
              ],
              d.placements,
            )
          : "",
        h("h3", null, "Why: every cluster, plugin by plugin"),
        explanationTable(d, chosen),
      );
    }),
    report.admission
      ? h(
          "section",
          { class: "panel" },
          h("h2", null, "Admission (queues)"),
          table(
            null,
            [
              ["Workload", (d) => d.workload || ""],
              ["Queue", (d) => d.queue || "—"],
              ["Admitted", (d) => (d.admitted ? "yes" : "no")],
              ["Reason", (d) => d.reason || d.message || ""],
            ],
            report.admission.decisions || [],
          ),
        )
      : "",
  );
}
