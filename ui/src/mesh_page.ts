// The mesh graph (Kiali's versioned-app graph): source workloads → services → workload versions,
// edges labelled with requests/s, error %, p95/p99 and a lock where all traffic was mutual TLS;
// edges out of a service show its split between versions. Data: the API server's
// mesh.podium.io graph, computed from the node proxies' own counters over the last second. The
// graph is one computed object, read again every two seconds while the page is open.

import { api, el } from "./dom";
import { openResource, Ref } from "./resource_panel";

type Json = any;
const SVG = "http://www.w3.org/2000/svg";
let timer: number | undefined;

export function stopMesh(): void {
  if (timer !== undefined) clearInterval(timer);
  timer = undefined;
}

export async function showMesh(header: HTMLElement): Promise<void> {
  stopMesh();
  const box = el("div", { id: "mesh", class: "mesh" });
  document.getElementById("app")!.replaceChildren(header, box);
  const draw = async () => {
    const r = await api("/apis/mesh.podium.io/v1alpha1/graph");
    if (r.ok) render(box, await r.json());
  };
  await draw();
  timer = window.setInterval(draw, 2000);
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function render(box: HTMLElement, graph: Json): void {
  const columns: Record<string, Json[]> = { workload: [], service: [], version: [] };
  for (const n of graph.nodes) (columns[n.kind] || columns.workload).push(n);
  const W = 1200, colX = { workload: 40, service: 470, version: 900 } as Record<string, number>;
  const boxW = 240, boxH = 44, gap = 30;
  const pos = new Map<string, { x: number; y: number }>();
  let height = 0;
  for (const [kind, nodes] of Object.entries(columns))
    nodes.forEach((n, i) => {
      pos.set(n.id, { x: colX[kind], y: 30 + i * (boxH + gap) });
      height = Math.max(height, 30 + (i + 1) * (boxH + gap));
    });
  const root = svg("svg", { width: W, height: Math.max(height, 200), id: "mesh-graph" });
  for (const e of graph.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const g = svg("g", { class: "edge" });
    g.dataset.from = e.from;
    g.dataset.to = e.to;
    g.dataset.rps = String(e.requestsPerSecond);
    g.dataset.mtls = String(e.mtls);
    if (e.share !== undefined) g.dataset.share = String(e.share);
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2;
    g.append(svg("line", { x1, y1, x2, y2, class: e.errorRatio > 0.01 ? "bad" : "good" }));
    const label = svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" });
    label.textContent = (e.mtls ? "🔒 " : "") + e.requestsPerSecond.toFixed(1) + " rps" +
      (e.share !== undefined ? " · " + Math.round(e.share * 100) + "%" : "") +
      " · " + (e.errorRatio * 100).toFixed(1) + "% err · p95 " + e.p95Ms.toFixed(0) + " / p99 " + e.p99Ms.toFixed(0) + " ms";
    g.append(label);
    // Its requests' traces: the client spans that went to this service or version.
    const [kind, ns, name] = String(e.to).split("/");
    const sel = kind === "service" ? `destination.service_name=${name},destination.service_namespace=${ns}`
      : kind === "version" ? `destination.workload=${name},destination.workload_namespace=${ns}` : "";
    if (sel) {
      g.dataset.traces = sel;
      g.addEventListener("click", () => { location.hash = "#/traces?q=" + encodeURIComponent(sel); });
    }
    root.append(g);
  }
  for (const n of graph.nodes) {
    const p = pos.get(n.id)!;
    const g = svg("g", { class: "node " + n.kind });
    g.dataset.id = n.id;
    g.append(svg("rect", { x: p.x, y: p.y, width: boxW, height: boxH, rx: 6 }));
    const t = svg("text", { x: p.x + 10, y: p.y + 18 });
    t.textContent = n.name + (n.version ? " " + n.version : "");
    const sub = svg("text", { x: p.x + 10, y: p.y + 35, class: "sub" });
    sub.textContent = n.namespace + ((n.badges || []).length ? " · " + n.badges.map((b: Json) => b.kind).join(", ") : "");
    g.append(t, sub);
    // A service's routing rules: its badges open the VirtualService or DestinationRule.
    const rules: Ref[] = [];
    for (const b of n.badges || [])
      if ((b.kind === "VirtualService" || b.kind === "DestinationRule") && !rules.some((r) => r.kind === b.kind && r.name === b.name))
        rules.push({ group: "networking.istio.io", version: "v1", kind: b.kind, namespace: n.namespace, name: b.name });
    if (rules.length) {
      g.classList.add("has-rules");
      g.dataset.rules = rules.map((r) => r.kind + "/" + r.name).join(",");
      g.addEventListener("click", () => openResource(rules[0], rules));
    }
    root.append(g);
  }
  box.replaceChildren(el("p", { class: "more", text: graph.edges.length ? "Traffic over the last second, from the node proxies' counters. Click an edge for its traces." : "No traffic in the last second." }), root);
}
