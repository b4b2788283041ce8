// Podium's web UI. No framework: the page is a login form and the applications list, kept
// current by one watch of the Kubernetes API read as server-sent events (never by polling).
// The list is virtualised (only the rows in view exist), so 2,000 applications cost what a
// screenful does, and a change to one application rewrites only its own row.

import { showApplication, stopAppWatch } from "./app_page";
import { showCluster, stopCluster } from "./cluster_page";
import { showMesh, stopMesh } from "./mesh_page";
import { showTrace, showTraces } from "./traces_page";
import { api, badge, el } from "./dom";

type Json = any; // objects as the API returns them

const APPS = "/apis/argoproj.io/v1alpha1/applications";
const ROW_HEIGHT = 36;
const TILE_LIMIT = 300;

interface Metrics {
  listRenderMs?: number; // from the list's arrival to its first paint
  rowWrites: number; // rows rewritten by watch events
}
const metrics: Metrics = { rowWrites: 0 };
(window as any).podiumMetrics = metrics;

const root = document.getElementById("app")!;

// --- login -------------------------------------------------------------------------------
function showLogin(message = ""): void {
  const user = el("input", { id: "username", value: "admin", autocomplete: "username" });
  const pass = el("input", { id: "password", type: "password", autocomplete: "current-password" });
  const error = el("div", { class: "error", id: "login-error", text: message });
  const form = el("form", { class: "login" }, el("h1", { text: "Podium" }),
                  el("label", { for: "username", text: "Username" }), user,
                  el("label", { for: "password", text: "Password" }), pass,
                  el("button", { type: "submit", id: "login", text: "Sign in" }), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("/ui/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: user.value, password: pass.value }),
    });
    if (r.ok) route();
    else error.textContent = (await r.json().catch(() => ({}))).message || "Sign-in failed";
  });
  root.replaceChildren(form);
  pass.focus();
}

function header(): HTMLElement {
  const out = el("button", { id: "logout", text: "Log out" });
  out.addEventListener("click", async () => {
    await api("/ui/api/logout", { method: "POST" });
    stopWatch();
    stopAppWatch();
    stopMesh();
    stopCluster();
    showLogin();
  });
  return el("header", {}, el("h1", { text: "Podium" }), el("a", { href: "#/", text: "Applications" }),
            el("a", { href: "#/cluster", id: "nav-cluster", text: "Cluster" }),
            el("a", { href: "#/mesh", id: "nav-mesh", text: "Mesh" }),
            el("a", { href: "#/traces", id: "nav-traces", text: "Traces" }), out);
}

// --- applications --------------------------------------------------------------------------
const apps = new Map<string, Json>(); // "ns/name" -> Application
let watch: EventSource | null = null;
let view: "table" | "tiles" = "table";
const filter = { sync: "", health: "", namespace: "", search: "" };
let shown: string[] = []; // keys in display order after filtering
let viewport: HTMLElement | null = null;
let countLabel: HTMLElement | null = null;
const rows = new Map<string, HTMLElement>(); // rows now in the DOM

function key(a: Json): string {
  return a.metadata.namespace + "/" + a.metadata.name;
}
function syncOf(a: Json): string {
  return a.status?.sync?.status || "Unknown";
}
function healthOf(a: Json): string {
  return a.status?.health?.status || "Unknown";
}
function lastSync(a: Json): string {
  return a.status?.operationState?.finishedAt || a.status?.reconciledAt || "";
}

function stopWatch(): void {
  watch?.close();
  watch = null;
}

async function showApplications(): Promise<void> {
  const started = performance.now();
  const r = await api(APPS);
  if (r.status === 401) return showLogin();
  const list = await r.json();
  apps.clear();
  for (const a of list.items) apps.set(key(a), a);
  const arrived = performance.now();
  renderShell();
  requestAnimationFrame(() => {
    metrics.listRenderMs = performance.now() - arrived;
    (window as any).podiumMetrics.listLoadMs = arrived - started;
  });
  startWatch(list.metadata.resourceVersion);
}

function startWatch(resourceVersion: string): void {
  stopWatch();
  const es = new EventSource(APPS + "?watch=true&allowWatchBookmarks=true&resourceVersion=" +
                             encodeURIComponent(resourceVersion));
  watch = es;
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "BOOKMARK") return;
    const k = key(ev.object);
    if (ev.type === "DELETED") apps.delete(k);
    else apps.set(k, ev.object);
    const before = shown.length;
    computeShown();
    if (shown.length !== before || ev.type !== "MODIFIED") renderList();
    else updateRow(k);
  };
  es.onerror = () => {
    // The server ended the watch (or the session): list again, as an informer relists.
    if (es.readyState === EventSource.CLOSED && watch === es) setTimeout(showApplications, 1000);
  };
}

function select(id: string, label: string, values: string[], current: string,
                onChange: (v: string) => void): HTMLSelectElement {
  const s = el("select", { id, "aria-label": label });
  s.append(el("option", { value: "", text: label + ": all" }));
  for (const v of values) s.append(el("option", { value: v, text: v }));
  s.value = current;
  s.addEventListener("change", () => onChange(s.value));
  return s;
}

function renderShell(): void {
  const namespaces = [...new Set([...apps.values()].map((a) => a.metadata.namespace as string))].sort();
  const search = el("input", { id: "search", placeholder: "Search applications", value: filter.search });
  search.addEventListener("input", () => {
    filter.search = search.value;
    renderList();
  });
  const toggle = el("button", { id: "view-toggle", text: view === "table" ? "Tiles" : "Table" });
  toggle.addEventListener("click", () => {
    view = view === "table" ? "tiles" : "table";
    renderShell();
  });
  countLabel = el("span", { class: "count", id: "count" });
  const bar = el("div", { class: "toolbar" },
                 select("filter-sync", "Sync", ["Synced", "OutOfSync", "Unknown"], filter.sync,
                        (v) => { filter.sync = v; renderList(); }),
                 select("filter-health", "Health",
                        ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"],
                        filter.health, (v) => { filter.health = v; renderList(); }),
                 select("filter-namespace", "Namespace", namespaces, filter.namespace,
                        (v) => { filter.namespace = v; renderList(); }),
                 search, toggle, countLabel);
  viewport = el("div", { id: "apps", class: view === "table" ? "viewport" : "" });
  const body = view === "table"
      ? el("div", { class: "table" },
           el("div", { class: "head" }, ...["Name", "Namespace", "Sync", "Health", "Repository",
                                            "Revision", "Last sync"].map((t) => el("div", { text: t }))),
           viewport)
      : viewport;
  root.replaceChildren(header(), bar, body);
  viewport.addEventListener("scroll", () => view === "table" && paintRows());
  renderList();
}

function computeShown(): void {
  const q = filter.search.toLowerCase();
  shown = [...apps.keys()].filter((k) => {
    const a = apps.get(k)!;
    return (!filter.sync || syncOf(a) === filter.sync) &&
           (!filter.health || healthOf(a) === filter.health) &&
           (!filter.namespace || a.metadata.namespace === filter.namespace) &&
           (!q || k.toLowerCase().includes(q) || (a.spec?.source?.repoURL || "").toLowerCase().includes(q));
  }).sort();
}

function renderList(): void {
  if (!viewport) return;
  computeShown();
  if (countLabel) countLabel.textContent = shown.length + " of " + apps.size + " applications";
  rows.clear();
  if (view === "tiles") {
    viewport.className = "tiles";
    viewport.replaceChildren(...shown.slice(0, TILE_LIMIT).map((k) => tile(apps.get(k)!)));
    if (shown.length > TILE_LIMIT)
      viewport.after(el("div", { class: "more", text: "Narrow the filter to see the other " +
                                                       (shown.length - TILE_LIMIT) + "." }));
    return;
  }
  const spacer = el("div");
  spacer.style.height = shown.length * ROW_HEIGHT + "px";
  viewport.replaceChildren(spacer);
  paintRows();
}

// The table's rows in view (and a screen above and below), nothing else.
function paintRows(): void {
  if (!viewport || view !== "table") return;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - 20);
  const last = Math.min(shown.length, first + Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 40);
  const wanted = new Set(shown.slice(first, last));
  for (const [k, r] of rows)
    if (!wanted.has(k)) {
      r.remove();
      rows.delete(k);
    }
  for (let i = first; i < last; i++) {
    const k = shown[i];
    let r = rows.get(k);
    if (!r) {
      r = row(apps.get(k)!);
      rows.set(k, r);
      viewport.append(r);
    }
    r.style.top = i * ROW_HEIGHT + "px";
  }
}

function rowCells(a: Json): (Node | string)[] {
  const src = a.spec?.source || {};
  return [
    el("div", { class: "cell name", text: a.metadata.name }),
    el("div", { class: "cell", text: a.metadata.namespace }),
    el("div", { class: "cell sync" }, badge(syncOf(a))),
    el("div", { class: "cell health" }, badge(healthOf(a))),
    el("div", { class: "cell", text: src.repoURL || "" }),
    el("div", { class: "cell", text: (a.status?.sync?.revision || src.targetRevision || "").slice(0, 8) }),
    el("div", { class: "cell", text: lastSync(a) }),
  ];
}

function row(a: Json): HTMLElement {
  const r = el("div", { class: "row", "data-app": key(a) }, ...rowCells(a));
  r.addEventListener("click", () => { location.hash = "#/apps/" + r.dataset.app; });
  return r;
}

function tile(a: Json): HTMLElement {
  const t = el("div", { class: "tile", "data-app": key(a) }, el("h3", { text: a.metadata.name }),
               badge(syncOf(a)), " ", badge(healthOf(a)),
               el("div", { class: "meta", text: a.spec?.source?.repoURL || "" }),
               el("div", { class: "meta", text: a.metadata.namespace + " · " + lastSync(a) }));
  t.addEventListener("click", () => { location.hash = "#/apps/" + key(a); });
  return t;
}

function updateRow(k: string): void {
  const a = apps.get(k);
  if (!a || !viewport) return;
  if (view === "tiles") {
    const old = viewport.querySelector(`[data-app="${CSS.escape(k)}"]`);
    if (old) old.replaceWith(tile(a));
    return;
  }
  const r = rows.get(k);
  if (!r) return; // out of view: painted fresh when scrolled to
  r.replaceChildren(...rowCells(a));
  metrics.rowWrites++;
}

// --- start ---------------------------------------------------------------------------------
function route(): void {
  const m = location.hash.match(/^#\/apps\/([^/]+)\/([^/]+)$/);
  stopMesh();
  stopCluster();
  const trace = location.hash.match(/^#\/traces\/([0-9a-f]+)$/);
  const traces = location.hash.match(/^#\/traces(?:\?q=(.*))?$/);
  if (location.hash === "#/mesh" || location.hash === "#/cluster" || trace || traces) {
    stopWatch();
    stopAppWatch();
    if (location.hash === "#/mesh") showMesh(header());
    else if (trace) showTrace(header(), trace[1]);
    else if (traces) showTraces(header(), decodeURIComponent(traces[1] || ""));
    else showCluster(header());
  } else if (m) {
    stopWatch();
    showApplication(decodeURIComponent(m[1]), decodeURIComponent(m[2]), header());
  } else {
    stopAppWatch();
    showApplications();
  }
}
window.addEventListener("hashchange", route);

(async () => {
  const who = await api("/ui/api/userinfo").then((r) => r.json()).catch(() => ({ loggedIn: false }));
  if (who.loggedIn) route();
  else showLogin();
})();
