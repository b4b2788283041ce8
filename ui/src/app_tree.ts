// An application's resources as Argo CD draws them, from one server-side call (Argo CD's
// resource-tree: managed resources and what they own, with health and networking facts):
// the resource tree (Application → Deployment → ReplicaSet → Pod, Service → Endpoints) with a
// box per managed resource for a selective sync, and the network view (Gateway/Ingress →
// VirtualService → Service → Pods). Any node opens the resource panel.

import { api, badge, el } from "./dom";
import { openResource, Ref } from "./resource_panel";

type Json = any;
export interface TreeNode extends Ref { uid: string; parentRefs?: Json[]; health?: { status: string }; networkingInfo?: Json; info?: Json[] }

export async function resourceTree(ns: string, name: string): Promise<TreeNode[]> {
  const r = await api("/api/v1/applications/" + encodeURIComponent(name) + "/resource-tree?appNamespace=" + encodeURIComponent(ns));
  return r.ok ? (await r.json()).nodes : [];
}

const key = (n: Ref) => (n.group || "") + "/" + n.kind + "/" + (n.namespace || "") + "/" + n.name;

function label(n: TreeNode, selectable: Set<string> | null): HTMLElement {
  const name = el("button", { class: "name link", text: n.name });
  name.addEventListener("click", () => openResource(n));
  const parts: (Node | string)[] = [];
  if (selectable) {
    const box = el("input", { type: "checkbox", class: "select-resource", "data-key": key(n) });
    box.addEventListener("change", () => {
      if (box.checked) selectable.add(key(n)); else selectable.delete(key(n));
      const sync = document.getElementById("sync");
      if (sync) sync.textContent = selectable.size ? `Sync ${selectable.size} selected` : "Sync";
    });
    box.checked = selectable.has(key(n));
    parts.push(box, " ");
  }
  const info = (n.info || []).map((i: Json) => i.value).join(" · ");
  // Kinds Argo CD assesses no health of (ConfigMap, Namespace, Istio's) show none.
  return el("span", {}, ...parts, el("span", { class: "kind", text: n.kind }), " ", name, " ",
            ...(n.health?.status ? [badge(n.health.status)] : []),
            ...(info ? [el("span", { class: "meta", text: " " + info })] : []));
}

// `selected`: the managed resources ticked for a selective sync (kept across repaints).
export function drawTree(app: Json, nodes: TreeNode[], selected: Set<string>): HTMLElement {
  const children = new Map<string, TreeNode[]>();
  for (const n of nodes) {
    const parent = n.parentRefs?.[0]?.uid || "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent)!.push(n);
  }
  const draw = (n: TreeNode, top: boolean): HTMLElement => {
    const li = el("li", { "data-kind": n.kind, "data-name": n.name });
    // The badge stays a direct child of the li (what tests and styles look for).
    const l = label(n, top ? selected : null);
    li.append(...l.childNodes);
    const kids = children.get(n.uid) || [];
    if (kids.length) li.append(el("ul", {}, ...kids.map((k) => draw(k, false))));
    return li;
  };
  const root = el("li", { "data-kind": "Application", "data-name": app.metadata.name },
    el("span", { class: "kind", text: "Application" }), " ", el("span", { class: "name", text: app.metadata.name }), " ",
    badge(app.status?.health?.status || "Unknown"),
    el("ul", {}, ...(children.get("") || []).map((n) => draw(n, true))));
  return el("ul", { class: "tree", id: "tree" }, root);
}

// Paths traffic takes: entry (Gateway, Ingress) → VirtualService → Service → Pods.
export function drawNetwork(nodes: TreeNode[]): HTMLElement {
  const byKey = new Map(nodes.map((n) => [n.kind + "/" + (n.namespace || "") + "/" + n.name, n]));
  const find = (r: Json) => byKey.get(r.kind + "/" + (r.namespace || "") + "/" + r.name) ||
                            ({ kind: r.kind, namespace: r.namespace, name: r.name, uid: "", group: r.group } as TreeNode);
  const pods = nodes.filter((n) => n.kind === "Pod");
  const podsOf = (svc: TreeNode) => {
    const sel = svc.networkingInfo?.targetLabels;
    if (!sel) return [];
    return pods.filter((p) => p.namespace === svc.namespace &&
      Object.entries(sel).every(([k, v]) => p.networkingInfo?.labels?.[k] === v));
  };
  const paths: TreeNode[][] = [];
  const walk = (path: TreeNode[]) => {
    const last = path[path.length - 1];
    const next = (last.networkingInfo?.targetRefs || []).map(find);
    if (last.kind === "Service" || !next.length) {
      paths.push(path);
      return;
    }
    for (const n of next) walk([...path, n]);
  };
  const entries = nodes.filter((n) => n.kind === "Ingress" || (n.kind === "Gateway" && n.group === "networking.istio.io"));
  for (const e of entries) walk([e]);
  // Services no entry reaches are still drawn, from themselves.
  const reached = new Set(paths.flat().map((n) => n.kind + "/" + n.name));
  for (const s of nodes.filter((n) => n.kind === "Service" && !reached.has("Service/" + n.name))) paths.push([s]);
  if (!paths.length) return el("p", { id: "network", class: "more", text: "No Services, Ingresses or Gateways in this application." });
  const hop = (n: TreeNode) => {
    const b = el("button", { class: "hop link", "data-kind": n.kind, text: n.kind + " " + n.name });
    b.addEventListener("click", () => openResource(n));
    return b;
  };
  const rows = paths.map((p) => {
    const last = p[p.length - 1];
    const targets = last.kind === "Service" ? podsOf(last) : [];
    const row = el("div", { class: "path", "data-path": p.map((n) => n.kind + ":" + n.name).join(" > ") });
    p.forEach((n, i) => row.append(...(i ? [el("span", { class: "arrow", text: "→" })] : []), hop(n)));
    if (targets.length)
      row.append(el("span", { class: "arrow", text: "→" }),
                 el("span", { class: "pods", "data-pods": String(targets.length) }, ...targets.map((t) => {
                   const b = hop(t);
                   if (t.health?.status) b.append(" ", badge(t.health.status));
                   return b;
                 })));
    return row;
  });
  return el("div", { id: "network" }, ...rows);
}
