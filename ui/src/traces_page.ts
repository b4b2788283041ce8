// Traces: the node proxies' recent sampled requests (mesh.podium.io traces, joined across
// nodes by the API server). The list can be narrowed by a label selector over span tags, which
// the mesh graph's edges fill in; a trace opens as a waterfall of its spans (gateway → service
// → version), each with its timing and Istio's tags.

import { api, el } from "./dom";

type Json = any;
const BASE = "/apis/mesh.podium.io/v1alpha1/traces";

function ms(micros: number): string {
  return (micros / 1000).toFixed(micros < 10000 ? 2 : 0) + " ms";
}

export async function showTraces(header: HTMLElement, selector: string): Promise<void> {
  const input = el("input", { id: "trace-selector", placeholder: "span tags, e.g. destination.workload=golang-app-v2", value: selector });
  const box = el("div", { id: "traces", class: "traces" });
  const form = el("form", { class: "trace-filter" }, input, el("button", { type: "submit", text: "Find" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/traces?q=" + encodeURIComponent(input.value.trim());
  });
  document.getElementById("app")!.replaceChildren(header, el("div", { class: "traces-page" }, form, box));
  const r = await api(BASE + "?limit=100" + (selector ? "&labelSelector=" + encodeURIComponent(selector) : ""));
  if (!r.ok) {
    box.replaceChildren(el("p", { class: "error", text: (await r.json().catch(() => ({}))).message || r.statusText }));
    return;
  }
  const list = await r.json();
  if (!list.items.length) {
    box.replaceChildren(el("p", { class: "more", text: "No sampled requests" + (selector ? " match " + selector : "") +
      ". Spans are kept for the requests a Telemetry's tracing samples (1 % by default)." }));
    return;
  }
  const rows = list.items.map((t: Json) => {
    const tr = el("tr", { class: "trace-row" + (t.errors ? " bad" : "") },
      el("td", { text: new Date(t.startMicros / 1000).toLocaleTimeString() }),
      el("td", { text: t.rootService || "" }),
      el("td", { text: t.url || t.rootName || "" }),
      el("td", { text: t.statusCode || "" }),
      el("td", { text: String(t.spans) }),
      el("td", { text: ms(t.durationMicros) }),
      el("td", { text: t.services.join(" → ") }));
    tr.dataset.trace = t.traceId;
    tr.addEventListener("click", () => { location.hash = "#/traces/" + t.traceId; });
    return tr;
  });
  box.replaceChildren(el("table", { class: "apps" },
    el("thead", {}, el("tr", {}, ...["Time", "Entry", "Request", "Status", "Spans", "Duration", "Services"].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows)));
}

export async function showTrace(header: HTMLElement, id: string): Promise<void> {
  const box = el("div", { id: "trace", class: "trace" });
  document.getElementById("app")!.replaceChildren(header, box);
  const r = await api(BASE + "/" + encodeURIComponent(id));
  if (!r.ok) {
    box.replaceChildren(el("p", { class: "error", text: (await r.json().catch(() => ({}))).message || r.statusText }));
    return;
  }
  const spans: Json[] = (await r.json()).spans;
  const start = Math.min(...spans.map((s) => s.timestamp));
  const end = Math.max(...spans.map((s) => s.timestamp + s.duration));
  const total = Math.max(end - start, 1);
  // Depth-first from the roots (no parent, or a parent no proxy recorded), children by time.
  const ids = new Set(spans.map((s) => s.id));
  const children = new Map<string, Json[]>();
  for (const s of spans) {
    const p = s.parentId && ids.has(s.parentId) ? s.parentId : "";
    if (!children.has(p)) children.set(p, []);
    children.get(p)!.push(s);
  }
  const ordered: { span: Json; depth: number }[] = [];
  const walk = (p: string, depth: number) => {
    for (const s of (children.get(p) || []).sort((a, b) => a.timestamp - b.timestamp)) {
      ordered.push({ span: s, depth });
      walk(s.id, depth + 1);
    }
  };
  walk("", 0);
  const rows = ordered.map(({ span, depth }) => {
    const left = ((span.timestamp - start) / total) * 100, width = Math.max((span.duration / total) * 100, 0.5);
    // Set through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
    const bar = el("div", { class: "bar " + (span.kind === "SERVER" ? "server" : "client") + (span.tags?.error ? " bad" : "") });
    bar.style.marginLeft = left.toFixed(2) + "%";
    bar.style.width = width.toFixed(2) + "%";
    const tags = el("table", { class: "tags hidden" }, ...Object.entries(span.tags || {}).map(([k, v]) =>
      el("tr", {}, el("td", { text: k }), el("td", { text: String(v) }))));
    const name = el("div", { class: "span-name" },
        el("b", { text: span.localEndpoint?.serviceName || "" }), " " + span.name + " ",
        el("span", { class: "kind", text: span.kind }));
    name.style.paddingLeft = depth * 16 + "px";
    const row = el("div", { class: "span-row" }, name,
      el("div", { class: "span-bar" }, bar),
      el("div", { class: "span-time", text: ms(span.duration) }), tags);
    row.dataset.span = span.id;
    row.dataset.service = span.localEndpoint?.serviceName || "";
    row.dataset.kind = span.kind;
    row.dataset.parent = span.parentId || "";
    row.dataset.status = span.tags?.["http.status_code"] || "";
    row.addEventListener("click", () => tags.classList.toggle("hidden"));
    return row;
  });
  box.replaceChildren(
    el("h2", { text: "Trace " + id }),
    el("p", { class: "more", text: `${spans.length} spans · ${ms(total)} · ${new Date(start / 1000).toLocaleString()} · click a span for its tags` }),
    ...rows);
}
