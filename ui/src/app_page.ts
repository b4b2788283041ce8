// One application: its resource tree (Application → Deployment → ReplicaSet → Pod, Service →
// Endpoints, health per node), the diff between git and the live objects (Argo CD's
// managed-resources call, the same normalisation as `podium app diff`), the sync panel, and the
// history with rollback. Kept current by a watch on the Application itself.

import { api, badge, el } from "./dom";

type Json = any;

let watch: EventSource | null = null;
let current: Json = null;
let body: HTMLElement | null = null;
let tab: "tree" | "diff" | "history" = "tree";

export function stopAppWatch(): void {
  watch?.close();
  watch = null;
}

const appPath = (ns: string, name: string) =>
  "/apis/argoproj.io/v1alpha1/namespaces/" + encodeURIComponent(ns) + "/applications/" + encodeURIComponent(name);

export async function showApplication(ns: string, name: string, header: HTMLElement): Promise<void> {
  stopAppWatch();
  const r = await api(appPath(ns, name));
  if (!r.ok) {
    document.getElementById("app")!.replaceChildren(header, el("p", { class: "more", text: "No application " + ns + "/" + name }));
    return;
  }
  current = await r.json();
  body = el("div", { id: "app-page" });
  document.getElementById("app")!.replaceChildren(header, body);
  await render();
  const es = new EventSource("/apis/argoproj.io/v1alpha1/namespaces/" + encodeURIComponent(ns) +
                             "/applications?watch=true&fieldSelector=metadata.name%3D" + encodeURIComponent(name) +
                             "&resourceVersion=" + current.metadata.resourceVersion);
  watch = es;
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "BOOKMARK" || ev.type === "DELETED") return;
    current = ev.object;
    render();
  };
}

async function render(): Promise<void> {
  if (!body) return;
  const a = current;
  const sync = a.status?.sync?.status || "Unknown", health = a.status?.health?.status || "Unknown";
  const tabs = el("div", { class: "tabs" });
  for (const t of ["tree", "diff", "history"] as const) {
    const b = el("button", { id: "tab-" + t, class: t === tab ? "active" : "", text: t[0].toUpperCase() + t.slice(1) });
    b.addEventListener("click", () => { tab = t; render(); });
    tabs.append(b);
  }
  const content = el("div", { id: "tab-content" });
  const top = el("div", { class: "app-head" },
                 el("a", { href: "#/", text: "← Applications" }),
                 el("h2", { text: a.metadata.name }),
                 el("span", { id: "app-sync" }, badge(sync)), " ", el("span", { id: "app-health" }, badge(health)),
                 el("span", { class: "meta", text: " " + (a.status?.sync?.revision || "").slice(0, 7) }),
                 syncPanel());
  body.replaceChildren(top, tabs, content);
  if (tab === "tree") content.append(await tree(a));
  else if (tab === "diff") content.append(await diff(a));
  else content.append(history(a));
}

function syncPanel(): HTMLElement {
  const prune = el("input", { type: "checkbox", id: "sync-prune" });
  const dry = el("input", { type: "checkbox", id: "sync-dry-run" });
  const go = el("button", { id: "sync", text: "Sync" });
  go.addEventListener("click", () => operate({ sync: { prune: prune.checked, dryRun: dry.checked } }));
  return el("span", { class: "sync-panel" }, el("label", {}, prune, " prune"), el("label", {}, dry, " dry run"), go);
}

// What the CLI and Argo CD's API do: an operation on the Application, carried out by GitOps.
async function operate(operation: Json, extra: Json = {}): Promise<void> {
  const a = current;
  const r = await api(appPath(a.metadata.namespace, a.metadata.name), {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({ ...extra, operation: { ...operation, initiatedBy: { username: "admin" } } }),
  });
  if (!r.ok) alert((await r.json()).message);
}

// --- tree ------------------------------------------------------------------------------------
interface Node {
  kind: string;
  name: string;
  health: string;
  children: Node[];
}

async function list(path: string): Promise<Json[]> {
  const r = await api(path);
  return r.ok ? (await r.json()).items : [];
}

function podHealth(p: Json): string {
  const ready = (p.status?.conditions || []).some((c: Json) => c.type === "Ready" && c.status === "True");
  return p.metadata.deletionTimestamp ? "Progressing" : ready ? "Healthy" : p.status?.phase === "Failed" ? "Degraded" : "Progressing";
}

const ownedBy = (o: Json, uid: string) => (o.metadata.ownerReferences || []).some((r: Json) => r.uid === uid);

async function tree(a: Json): Promise<HTMLElement> {
  const resources: Json[] = a.status?.resources || [];
  const namespaces = [...new Set(resources.map((r) => r.namespace).filter(Boolean))];
  const rs: Json[] = [], pods: Json[] = [], deps: Json[] = [], eps: Json[] = [];
  for (const ns of namespaces) {
    const base = "/apis/apps/v1/namespaces/" + ns;
    const [d, r, p, e] = await Promise.all([list(base + "/deployments"), list(base + "/replicasets"),
                                            list("/api/v1/namespaces/" + ns + "/pods"),
                                            list("/api/v1/namespaces/" + ns + "/endpoints")]);
    deps.push(...d); rs.push(...r); pods.push(...p); eps.push(...e);
  }
  const root: Node = { kind: "Application", name: a.metadata.name, health: a.status?.health?.status || "Unknown", children: [] };
  for (const r of resources) {
    const n: Node = { kind: r.kind, name: r.name, health: r.health?.status || (r.status === "Synced" ? "Healthy" : "Unknown"), children: [] };
    if (r.kind === "Deployment") {
      const d = deps.find((x) => x.metadata.namespace === r.namespace && x.metadata.name === r.name);
      for (const s of d ? rs.filter((x) => ownedBy(x, d.metadata.uid) && (x.spec?.replicas || 0) > 0) : []) {
        const rn: Node = { kind: "ReplicaSet", name: s.metadata.name, health: "Healthy", children: [] };
        for (const p of pods.filter((x) => ownedBy(x, s.metadata.uid)))
          rn.children.push({ kind: "Pod", name: p.metadata.name, health: podHealth(p), children: [] });
        if (rn.children.some((c) => c.health !== "Healthy")) rn.health = "Progressing";
        n.children.push(rn);
      }
    } else if (r.kind === "Service") {
      const e = eps.find((x) => x.metadata.namespace === r.namespace && x.metadata.name === r.name);
      if (e) n.children.push({ kind: "Endpoints", name: e.metadata.name, health: "Healthy", children: [] });
    }
    root.children.push(n);
  }
  const draw = (n: Node): HTMLElement =>
    el("li", { "data-kind": n.kind, "data-name": n.name },
       el("span", { class: "kind", text: n.kind }), " ", el("span", { class: "name", text: n.name }), " ", badge(n.health),
       ...(n.children.length ? [el("ul", {}, ...n.children.map(draw))] : []));
  return el("ul", { class: "tree", id: "tree" }, draw(root));
}

// --- diff ------------------------------------------------------------------------------------
// Longest common subsequence over lines: which lines of each side are not in the other.
function lineDiff(a: string[], b: string[]): [Set<number>, Set<number>] {
  const n = a.length, m = b.length;
  const dp = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const onlyA = new Set<number>(), onlyB = new Set<number>();
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { i++; j++; } else if (dp[i + 1][j] >= dp[i][j + 1]) onlyA.add(i++); else onlyB.add(j++);
  }
  while (i < n) onlyA.add(i++);
  while (j < m) onlyB.add(j++);
  return [onlyA, onlyB];
}

function pretty(text: string): string[] {
  try {
    return JSON.stringify(JSON.parse(text), null, 2).split("\n");
  } catch {
    return [text];
  }
}

async function diff(a: Json): Promise<HTMLElement> {
  const r = await api("/api/v1/applications/" + encodeURIComponent(a.metadata.name) +
                      "/managed-resources?appNamespace=" + encodeURIComponent(a.metadata.namespace));
  if (!r.ok) return el("p", { text: (await r.json().catch(() => ({}))).message || "no diff" });
  const items: Json[] = (await r.json()).items || [];
  const out = el("div", { id: "diff" });
  for (const it of items.filter((x) => x.modified)) {
    const live = pretty(it.normalizedLiveState), want = pretty(it.targetState);
    const [onlyLive, onlyWant] = lineDiff(live, want);
    const side = (lines: string[], marked: Set<number>, cls: string) =>
      el("pre", { class: "side" }, ...lines.map((l, i) => el("div", { class: marked.has(i) ? cls : "", text: l })));
    out.append(el("h3", { text: it.kind + " " + it.name }),
               el("div", { class: "diff-pair" }, side(live, onlyLive, "removed"), side(want, onlyWant, "added")));
  }
  if (!out.childElementCount) out.append(el("p", { text: "No differences: the live objects match git." }));
  return out;
}

// --- history ---------------------------------------------------------------------------------
function history(a: Json): HTMLElement {
  const rows = [...(a.status?.history || [])].reverse().map((h: Json) => {
    const b = el("button", { class: "rollback", "data-id": String(h.id), text: "Rollback" });
    // Argo CD's rule: a rolled-back app does not auto-sync (it would undo the rollback).
    b.addEventListener("click", () => operate({ sync: { revision: h.revision } }, { spec: { syncPolicy: { automated: null } } }));
    return el("tr", { "data-revision": h.revision }, el("td", { text: String(h.id) }),
              el("td", { text: h.deployedAt || "" }), el("td", { text: h.revision }), el("td", {}, b));
  });
  return el("table", { id: "history", class: "history" },
            el("tr", {}, ...["ID", "Deployed", "Revision", ""].map((t) => el("th", { text: t }))), ...rows);
}
