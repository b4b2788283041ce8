// The cluster at a glance: nodes (with their usage from metrics.k8s.io), namespaces,
// Deployments, pods with their state and restarts, and the latest events. Listed once, then
// kept current by watches on pods and events (server-sent events), as the applications are.

import { api, badge, el } from "./dom";

type Json = any;
const watches: EventSource[] = [];
let pods = new Map<string, Json>();
let events: Json[] = [];
let box: HTMLElement | null = null;
let pending = false;

export function stopCluster(): void {
  for (const w of watches) w.close();
  watches.length = 0;
  box = null;
}

async function items(path: string): Promise<Json> {
  const r = await api(path);
  return r.ok ? r.json() : { items: [], metadata: {} };
}

function follow(path: string, rv: string, apply: (ev: Json) => void): void {
  const es = new EventSource(path + "?watch=true&allowWatchBookmarks=true&resourceVersion=" + encodeURIComponent(rv));
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "BOOKMARK") return;
    apply(ev);
    // Many events in a burst (a rollout) repaint once per frame.
    if (!pending) {
      pending = true;
      requestAnimationFrame(() => { pending = false; paintLive(); });
    }
  };
  watches.push(es);
}

const podKey = (p: Json) => p.metadata.namespace + "/" + p.metadata.name;

// metrics-server's units (nanocores, KiB) as kubectl top shows them.
function cpu(q: string): string {
  return q.endsWith("n") ? Math.round(Number(q.slice(0, -1)) / 1e6) + "m" : q;
}
function memory(q: string): string {
  return q.endsWith("Ki") ? Math.round(Number(q.slice(0, -2)) / 1024) + "Mi" : q;
}

export async function showCluster(header: HTMLElement): Promise<void> {
  stopCluster();
  box = el("div", { id: "cluster", class: "cluster" });
  document.getElementById("app")!.replaceChildren(header, box);
  const [nodes, usage, namespaces, deployments, podList, eventList] = await Promise.all([
    items("/api/v1/nodes"), items("/apis/metrics.k8s.io/v1beta1/nodes"), items("/api/v1/namespaces"),
    items("/apis/apps/v1/deployments"), items("/api/v1/pods"), items("/api/v1/events")]);
  pods = new Map(podList.items.map((p: Json) => [podKey(p), p]));
  events = eventList.items;
  const used = new Map(usage.items.map((u: Json) => [u.metadata.name, u.usage]));
  const ready = (n: Json) => (n.status?.conditions || []).find((c: Json) => c.type === "Ready")?.status === "True";
  box.append(
    section("Nodes", ["Name", "Status", "Version", "CPU", "Memory"], nodes.items.map((n: Json) => {
      const u: Json = used.get(n.metadata.name) || {};
      return [n.metadata.name, badge(ready(n) ? "Healthy" : "Degraded"), n.status?.nodeInfo?.kubeletVersion || "",
              cpu(u.cpu || ""), memory(u.memory || "")];
    }), "nodes"),
    section("Namespaces", ["Name", "Status"], namespaces.items.map((n: Json) => [n.metadata.name, n.status?.phase || ""]),
            "namespaces"),
    section("Deployments", ["Namespace", "Name", "Ready"], deployments.items.map((d: Json) =>
      [d.metadata.namespace, d.metadata.name, (d.status?.readyReplicas || 0) + "/" + (d.spec?.replicas ?? 1)]), "deployments"),
    el("div", { id: "cluster-live" }));
  paintLive();
  follow("/api/v1/pods", podList.metadata.resourceVersion, (ev) => {
    if (ev.type === "DELETED") pods.delete(podKey(ev.object));
    else pods.set(podKey(ev.object), ev.object);
  });
  follow("/api/v1/events", eventList.metadata.resourceVersion, (ev) => {
    if (ev.type !== "DELETED") events.push(ev.object);
    if (events.length > 500) events = events.slice(-200);
  });
}

function paintLive(): void {
  const live = box?.querySelector("#cluster-live");
  if (!live) return;
  const podRows = [...pods.values()].sort((a, b) => podKey(a).localeCompare(podKey(b))).map((p: Json) => {
    const restarts = (p.status?.containerStatuses || []).reduce((n: number, c: Json) => n + (c.restartCount || 0), 0);
    const state = p.metadata.deletionTimestamp ? "Terminating" : p.status?.phase || "Pending";
    return [p.metadata.namespace, p.metadata.name, state, String(restarts), p.spec?.nodeName || ""];
  });
  const latest = [...events].sort((a, b) => (a.lastTimestamp || a.eventTime || "").localeCompare(b.lastTimestamp || b.eventTime || ""))
    .slice(-50).reverse().map((e: Json) => [e.lastTimestamp || e.eventTime || "", e.type || "", e.reason || "",
                                          (e.involvedObject?.kind || "") + "/" + (e.involvedObject?.name || ""), e.message || ""]);
  live.replaceChildren(section("Pods", ["Namespace", "Name", "Status", "Restarts", "Node"], podRows, "pods"),
                       section("Events", ["Time", "Type", "Reason", "Object", "Message"], latest, "events"));
}

function section(title: string, heads: string[], rows: (string | HTMLElement)[][], id: string): HTMLElement {
  return el("section", { class: "panel" }, el("h3", { text: title + " (" + rows.length + ")" }),
            el("table", { class: "grid", id: "cluster-" + id },
               el("tr", {}, ...heads.map((h) => el("th", { text: h }))),
               ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
}
