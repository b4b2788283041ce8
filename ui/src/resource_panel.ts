// A side panel for one live resource: its manifest as the API returns it, its events, and for a
// Pod its containers' logs (followed as they are written, over the API's log stream). Opened
// from an application's tree and network view, and from the mesh graph's routing badges.

import { api, el } from "./dom";

type Json = any;
export interface Ref { group?: string; version?: string; kind: string; namespace?: string; name: string }

const plurals = new Map<string, Promise<Map<string, { name: string; namespaced: boolean }>>>();
let logAbort: AbortController | null = null;

// The resource name of a kind, from the API's discovery (cached per group version).
async function resourceOf(ref: Ref): Promise<{ path: string; namespaced: boolean } | null> {
  const gv = ref.group ? ref.group + "/" + (ref.version || "v1") : ref.version || "v1";
  const base = ref.group ? "/apis/" + gv : "/api/" + gv;
  if (!plurals.has(gv))
    plurals.set(gv, api(base).then((r) => (r.ok ? r.json() : { resources: [] })).then((d: Json) =>
      new Map(d.resources.filter((x: Json) => !x.name.includes("/")).map((x: Json) => [x.kind, { name: x.name, namespaced: x.namespaced }]))));
  const r = (await plurals.get(gv)!).get(ref.kind);
  if (!r) return null;
  return { path: base + (r.namespaced && ref.namespace ? "/namespaces/" + encodeURIComponent(ref.namespace) : "") + "/" + r.name,
           namespaced: r.namespaced };
}

export function closeResource(): void {
  logAbort?.abort();
  logAbort = null;
  document.getElementById("resource-panel")?.remove();
}

export async function openResource(ref: Ref, related: Ref[] = [], initial = "Manifest"): Promise<void> {
  closeResource();
  const body = el("div", { class: "panel-body" });
  const tabs = el("div", { class: "tabs" });
  const close = el("button", { class: "close", id: "panel-close", text: "×" });
  close.addEventListener("click", closeResource);
  const links = related.filter((r) => r.kind !== ref.kind || r.name !== ref.name).map((r) => {
    const a = el("button", { class: "related", text: r.kind + " " + r.name });
    a.addEventListener("click", () => openResource(r, related));
    return a;
  });
  const panel = el("aside", { id: "resource-panel", "data-kind": ref.kind, "data-name": ref.name },
    el("div", { class: "panel-head" }, el("h3", { text: ref.kind + " " + (ref.namespace ? ref.namespace + "/" : "") + ref.name }), close),
    ...(links.length ? [el("div", { class: "related-list" }, ...links)] : []), tabs, body);
  document.body.append(panel);
  const res = await resourceOf(ref);
  if (!res) {
    body.replaceChildren(el("p", { class: "error", text: "The API serves no " + ref.kind }));
    return;
  }
  const show = (name: string, fill: () => Promise<void>) => {
    const b = el("button", { id: "panel-tab-" + name.toLowerCase(), text: name });
    b.addEventListener("click", () => {
      logAbort?.abort();
      for (const x of tabs.children) x.classList.toggle("active", x === b);
      fill();
    });
    tabs.append(b);
    return b;
  };
  show("Manifest", async () => {
    const r = await api(res.path + "/" + encodeURIComponent(ref.name));
    const o = await r.json();
    if (o.metadata) delete o.metadata.managedFields;
    body.replaceChildren(el("pre", { id: "manifest", class: "manifest", text: JSON.stringify(o, null, 2) }));
  });
  show("Events", async () => {
    const sel = "involvedObject.kind=" + ref.kind + ",involvedObject.name=" + ref.name;
    const r = await api((ref.namespace ? "/api/v1/namespaces/" + encodeURIComponent(ref.namespace) : "/api/v1") +
                        "/events?fieldSelector=" + encodeURIComponent(sel));
    const items: Json[] = r.ok ? (await r.json()).items : [];
    items.sort((a, b) => String(a.lastTimestamp || a.eventTime).localeCompare(String(b.lastTimestamp || b.eventTime)));
    body.replaceChildren(items.length ? el("table", { id: "events", class: "history" },
      el("tr", {}, ...["Last seen", "Type", "Reason", "Message", "Count"].map((t) => el("th", { text: t }))),
      ...items.map((e) => el("tr", {}, el("td", { text: e.lastTimestamp || e.eventTime || "" }), el("td", { text: e.type || "" }),
                             el("td", { text: e.reason || "" }), el("td", { text: e.message || "" }), el("td", { text: String(e.count || 1) }))))
      : el("p", { id: "events", class: "more", text: "No events." }));
  });
  if (ref.kind === "Pod") show("Logs", () => logs(ref, res.path, body));
  const want = [...tabs.children].find((b) => b.textContent === initial) as HTMLElement | undefined;
  (want || (tabs.firstElementChild as HTMLElement)).click();
}

async function logs(ref: Ref, podsPath: string, body: HTMLElement): Promise<void> {
  const pod = await (await api(podsPath + "/" + encodeURIComponent(ref.name))).json();
  const containers: string[] = (pod.spec?.containers || []).map((c: Json) => c.name);
  const pick = el("select", { id: "log-container" }, ...containers.map((c) => el("option", { value: c, text: c })));
  const follow = el("input", { type: "checkbox", id: "log-follow" });
  follow.checked = true;
  const out = el("pre", { id: "logs", class: "manifest" });
  const start = async () => {
    logAbort?.abort();
    const abort = new AbortController();
    logAbort = abort;
    out.textContent = "";
    const q = "?container=" + encodeURIComponent(pick.value) + "&tailLines=500" + (follow.checked ? "&follow=true" : "");
    try {
      const r = await api(podsPath + "/" + encodeURIComponent(ref.name) + "/log" + q, { signal: abort.signal });
      if (!r.ok || !r.body) {
        out.textContent = (await r.json().catch(() => ({}))).message || r.statusText;
        return;
      }
      // The stream is read as it comes: a followed log grows in place.
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out.append(value);
        out.scrollTop = out.scrollHeight;
      }
    } catch (e) {
      if (!abort.signal.aborted) out.append("\n[" + String(e) + "]");
    }
  };
  pick.addEventListener("change", start);
  follow.addEventListener("change", start);
  body.replaceChildren(el("div", { class: "log-bar" }, pick, el("label", {}, follow, " follow")), out);
  start();
}
