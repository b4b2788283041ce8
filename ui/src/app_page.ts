// One application: its resource tree and network view (app_tree.ts, from Argo CD's
// resource-tree call), the diff between git and the live objects (Argo CD's managed-resources
// call, the same normalisation as `podium app diff`), the sync panel (prune, dry run, selected
// resources, sync options), the history with rollback, and its events. Kept current by a watch
// on the Application itself; any resource opens in the side panel (manifest, events, logs).

import { drawNetwork, drawTree, resourceTree } from "./app_tree";
import { api, badge, el } from "./dom";
import { closeResource, openResource } from "./resource_panel";

type Json = any;

let watch: EventSource | null = null;
let current: Json = null;
let body: HTMLElement | null = null;
const TABS = ["tree", "network", "diff", "history", "events"] as const;
let tab: (typeof TABS)[number] = "tree";
const selected = new Set<string>(); // managed resources ticked for a selective sync
let options = new Set<string>();

export function stopAppWatch(): void {
  watch?.close();
  watch = null;
  closeResource();
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
  selected.clear();
  options = new Set();
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
  for (const t of TABS) {
    const b = el("button", { id: "tab-" + t, class: t === tab ? "active" : "", text: t[0].toUpperCase() + t.slice(1) });
    b.addEventListener("click", () => { tab = t; render(); });
    tabs.append(b);
  }
  const content = el("div", { id: "tab-content" });
  const top = el("div", { class: "app-head" },
                 el("a", { href: "#/", text: "← Applications" }),
                 el("h2", { text: a.metadata.name }),
                 el("span", { id: "app-sync" }, badge(sync)), " ", el("span", { id: "app-health" }, badge(health)),
                 // What is deployed: the last sync's revision (after a rollback, the older one, while
                 // the sync status compares with the branch's newest commit), as Argo CD's "Last Sync".
                 el("span", { class: "meta", title: "last synced revision",
                              text: " " + (a.status?.operationState?.syncResult?.revision || a.status?.sync?.revision || "").slice(0, 7) }),
                 syncPanel());
  body.replaceChildren(top, tabs, content);
  if (tab === "tree") content.append(drawTree(a, await resourceTree(a.metadata.namespace, a.metadata.name), selected));
  else if (tab === "network") content.append(drawNetwork(await resourceTree(a.metadata.namespace, a.metadata.name)));
  else if (tab === "diff") content.append(await diff(a));
  else if (tab === "history") content.append(history(a));
  else {
    const b = el("button", { id: "app-events", class: "link", text: "Events of the Application" });
    b.addEventListener("click", () => openResource({ group: "argoproj.io", version: "v1alpha1", kind: "Application",
                                                     namespace: a.metadata.namespace, name: a.metadata.name }, [], "Events"));
    content.append(b);
    b.click();
  }
}

// Argo CD's sync options this server carries out.
const SYNC_OPTIONS = ["Validate=false", "CreateNamespace=true", "PruneLast=true", "Replace=true",
                      "RespectIgnoreDifferences=true", "FailOnSharedResource=true",
                      "PrunePropagationPolicy=background", "PrunePropagationPolicy=orphan"];

function syncPanel(): HTMLElement {
  const prune = el("input", { type: "checkbox", id: "sync-prune" });
  const dry = el("input", { type: "checkbox", id: "sync-dry-run" });
  const go = el("button", { id: "sync", text: selected.size ? `Sync ${selected.size} selected` : "Sync" });
  const opts = el("details", { class: "sync-options" }, el("summary", { text: "options" }),
    ...SYNC_OPTIONS.map((o) => {
      const box = el("input", { type: "checkbox", "data-option": o });
      box.checked = options.has(o);
      box.addEventListener("change", () => { if (box.checked) options.add(o); else options.delete(o); });
      return el("label", {}, box, " " + o);
    }));
  go.addEventListener("click", () => {
    const sync: Json = { prune: prune.checked, dryRun: dry.checked };
    if (options.size) sync.syncOptions = [...options];
    // Argo CD's selective sync: only the ticked resources (no hooks, no history entry).
    if (selected.size) sync.resources = [...selected].map((k) => {
      const [group, kind, namespace, name] = k.split("/");
      return { group, kind, namespace, name };
    });
    operate({ sync });
  });
  return el("span", { class: "sync-panel" }, el("label", {}, prune, " prune"), el("label", {}, dry, " dry run"), opts, go);
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
