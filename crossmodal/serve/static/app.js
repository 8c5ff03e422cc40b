// crossmodal search page: one column of hits per ticked run; the same query goes to each.
// Talks to the app that served it only (/api/runs, /api/search, /api/items/...); no other origin.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { runs: [], query: null, preview: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({ error: `answer ${response.status} is not JSON` }));
  if (!response.ok) throw new Error(body.error || `error ${response.status}`);
  return body;
}

function tickedRuns() {
  return [...document.querySelectorAll("#runs input:checked")].map((box) => box.value);
}

async function loadRuns() {
  state.runs = await api("/api/runs");
  const box = $("#runs");
  state.runs.forEach((run, i) => {
    const input = el("input", { type: "checkbox", value: run.name, name: "run" });
    input.checked = i === 0;
    input.addEventListener("change", () => state.query && search(state.query));
    box.append(el("label", {}, input, ` ${run.name}`));
  });
}

function describeRun(run) {
  const maps = Object.entries(run.mAP || {})
    .map(([d, v]) => `${d} ${v === null ? "-" : v.toFixed(3)}`).join(", ");
  return `${run.method}, ${run.bits} bits, ${run.dataset}` + (maps ? `; mAP@all ${maps}` : "");
}

function request(query, run, k) {
  if (query.kind === "image") {
    const form = new FormData();
    form.append("image", query.file, query.file.name || "query.png");
    form.append("k", String(k));
    form.append("run", run);
    return { method: "POST", body: form };
  }
  const body = query.kind === "text" ? { text: query.text, k, run }
    : { item: query.item, part: query.part, modality: query.modality, k, run };
  return { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

function showQuery(query) {
  const box = $("#query");
  box.replaceChildren();
  if (query.kind === "text") box.append(`Searching with the sentence “${query.text}”`);
  if (query.kind === "image") {
    box.append(el("img", { src: state.preview, alt: "query image" }), "Searching with your image");
  }
  if (query.kind === "item") {
    box.append(`Searching with ${query.modality} of ${query.part} item `, el("code", {}, query.item));
    if (query.modality === "image" && query.picture) box.append(el("img", { src: query.picture, alt: query.item }));
  }
}

function hitCard(hit, answer) {
  const target = answer.query.target;
  const cls = "hit" + (hit.relevant === true ? " relevant" : hit.relevant === false ? " irrelevant" : "");
  const card = el("button", {
    class: cls, type: "button", title: "search with this item",
    dataset: { id: hit.id, distance: String(hit.distance), index: String(hit.index) },
  });
  if (hit.image_url) card.append(el("img", { src: hit.image_url, alt: hit.id, loading: "lazy" }));
  if (hit.text !== null && hit.text !== undefined) card.append(el("div", { class: "snippet" }, hit.text));
  card.append(el("span", { class: "dist" }, `d=${hit.distance}`), el("div", { class: "id" }, hit.id));
  if (hit.labels.length) card.append(el("div", { class: "labels" }, hit.labels.join(", ")));
  card.addEventListener("click", () => search({
    kind: "item", item: hit.id, part: "database", modality: target, picture: hit.image_url || null,
  }));
  return card;
}

function column(run) {
  const info = state.runs.find((r) => r.name === run);
  return el("section", { class: "column", dataset: { run } },
    el("h2", {}, run), el("div", { class: "meta" }, info ? describeRun(info) : ""),
    el("div", { class: "status" }, "searching…"));
}

function fill(col, answer) {
  const q = answer.query;
  const precision = q.precision !== null && q.precision !== undefined ? `, P@${q.k} ${q.precision.toFixed(2)}` : "";
  const labels = q.labels ? ` (query labels: ${q.labels.join(", ") || "none"})` : "";
  const note = `${q.direction}: ${answer.hits.length} hits${precision}${labels}`;
  const grid = el("div", { class: "hits" + (q.target === "text" ? " texts" : "") });
  answer.hits.forEach((hit) => grid.append(hitCard(hit, answer)));
  col.querySelector(".status").replaceChildren(note);
  col.append(grid);
}

async function search(query) {
  state.query = query;
  showQuery(query);
  const k = Math.max(1, Math.min(1000, parseInt($("#k").value, 10) || 10));
  const runs = tickedRuns();
  const columns = $("#columns");
  columns.replaceChildren();
  if (!runs.length) {
    columns.append(el("p", { class: "error" }, "Tick at least one run."));
    return;
  }
  await Promise.all(runs.map(async (run) => {
    const col = column(run);
    columns.append(col);
    try {
      fill(col, await api("/api/search", request(query, run, k)));
    } catch (err) {
      col.querySelector(".status").replaceChildren(el("span", { class: "error" }, err.message));
    }
  }));
  columns.dataset.done = String(Date.now());
}

function useFile(file) {
  if (!file) return;
  if (state.preview) URL.revokeObjectURL(state.preview);
  state.preview = URL.createObjectURL(file);
  search({ kind: "image", file });
}

function wire() {
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#text").value.trim();
    if (text) search({ kind: "text", text });
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    useFile(event.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") $("#file").click(); });
  $("#file").addEventListener("change", (event) => useFile(event.target.files[0]));
}

wire();
loadRuns().catch((err) => $("#columns").replaceChildren(el("p", { class: "error" }, err.message)));
