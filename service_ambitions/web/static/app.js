// service-ambitions pages: everything they do goes through the runtime API (/api/docs).
// Data from files and models is only ever set as text, never as markup.
"use strict";

async function api(method, url, body, raw) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (raw !== undefined) {
    options.body = raw;
    options.headers["Content-Type"] = "application/x-ndjson";
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  if (!response.ok) {
    const problem = new Error((data && data.error) || response.statusText);
    problem.hint = data && data.hint;
    throw problem;
  }
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function say(target, items) {
  target.replaceChildren(...items);
  target.hidden = items.length === 0;
}

function problem(error) {
  const items = [el("p", error.message, "error")];
  if (error.hint) items.push(el("p", error.hint, "hint"));
  return items;
}

const count = (v) => (v === null || v === undefined ? "—" : Math.round(Number(v)).toLocaleString("en"));
const money = (v) => (v === null || v === undefined ? "—" : "$" + Number(v).toFixed(4));
function duration(v) {
  if (v === null || v === undefined) return "—";
  const s = Math.floor(v);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

// -- the workspace page --------------------------------------------------------------------

const NUMBERS = ["seed", "concurrency", "max_in_flight", "max_services", "workers"];
const SWITCHES = ["batch", "allow_unknown_prices"];

function jobForm(form) {
  const data = new FormData(form);
  const body = {};
  for (const [key, value] of data.entries()) {
    if (value === "" || SWITCHES.includes(key) || key === "catalogues") continue;
    body[key] = NUMBERS.includes(key) ? Number(value) : value;
  }
  for (const key of SWITCHES) if (form.elements[key].checked) body[key] = true;
  if (body.strict !== undefined) body.strict = body.strict === "true";
  const catalogues = data.getAll("catalogues");
  if (body.command === "map") {
    delete body.max_services;
    delete body.workers;
    if (catalogues.length) body.catalogues = catalogues;
  }
  return body;
}

function planTable(plan) {
  const table = el("table");
  const head = table.createTHead().insertRow();
  for (const name of ["Stage", "Model", "Calls", "Cached", "Input tokens", "Output tokens", "Cost (USD)"]) {
    const th = el("th", name);
    th.scope = "col";
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of plan.stages) {
    const tr = body.insertRow();
    const cost = row.cost_usd ? `${money(row.cost_usd[0])} – ${money(row.cost_usd[1])}` : "unknown price";
    for (const cell of [row.stage, row.model, count(row.calls), count(row.cached),
      `${count(row.input_tokens[0])} – ${count(row.input_tokens[1])}`,
      `${count(row.output_tokens[0])} – ${count(row.output_tokens[1])}`, cost]) {
      tr.appendChild(el("td", cell));
    }
  }
  return table;
}

function setUpWorkspace() {
  const note = sessionStorage.getItem("sa-note");
  const upload = document.getElementById("upload");
  if (note && upload) {
    sessionStorage.removeItem("sa-note");
    say(document.getElementById("upload-result"), [el("p", note, "ok")]);
  }
  if (upload) {
    upload.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = document.getElementById("upload-result");
      const file = upload.elements.file.files[0];
      const name = upload.elements.name.value || (file && file.name) || "";
      const replace = upload.elements.replace.checked ? "?replace=true" : "";
      say(result, [el("p", `Uploading ${name}…`)]);
      try {
        const stored = await api("PUT", `/api/files/${encodeURIComponent(name)}${replace}`, undefined, file);
        const skipped = stored.rejected.length ? `; ${stored.rejected.length} lines will be skipped (${stored.rejected[0]})` : "";
        sessionStorage.setItem("sa-note", `${stored.name}: ${stored.services} services${skipped}.`);
        location.reload();
      } catch (error) {
        say(result, problem(error));
      }
    });
  }
  for (const button of document.querySelectorAll("[data-use-input]")) {
    button.addEventListener("click", () => {
      const form = document.getElementById("job");
      form.elements.input.value = button.dataset.useInput;
      form.elements.command.value = "run";
      form.elements.output.focus();
    });
  }
  const form = document.getElementById("job");
  if (!form) return;
  const result = document.getElementById("job-result");
  const showFor = () => {
    for (const node of form.querySelectorAll("[data-for]")) node.hidden = node.dataset.for !== form.elements.command.value;
  };
  form.elements.command.addEventListener("change", showFor);
  showFor();
  const outputNote = document.getElementById("output-note");
  const existing = new Set(outputNote.dataset.existing.split("\n"));
  const noteOutput = () => {
    const name = form.elements.output.value;
    outputNote.textContent = existing.has(name) ? `${name} exists: a new run keeps it as ${name}.prev` : "";
  };
  form.elements.output.addEventListener("input", noteOutput);
  noteOutput();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(result, [el("p", "Starting…")]);
    try {
      const started = await api("POST", "/api/runs", jobForm(form));
      location.assign(`/runs/${encodeURIComponent(started.run_id)}`);
    } catch (error) {
      say(result, problem(error));
    }
  });
  form.querySelector("[data-action=validate]").addEventListener("click", async () => {
    const body = jobForm(form);
    say(result, [el("p", "Checking…")]);
    try {
      const checks = await api("POST", "/api/validate", { input: body.input, model: body.model });
      const list = el("ul", null, "checks");
      for (const check of checks) list.appendChild(el("li", `${check.ok ? "ok" : "fail"} ${check.name}: ${check.detail}`, check.ok ? "ok" : "error"));
      const passed = checks.every((check) => check.ok);
      say(result, [list, el("p", passed ? "All checks passed." : "Some checks failed.", passed ? "ok" : "error")]);
    } catch (error) {
      say(result, problem(error));
    }
  });
  form.querySelector("[data-action=plan]").addEventListener("click", async () => {
    say(result, [el("p", "Planning…")]);
    try {
      const plan = await api("POST", "/api/plan", jobForm(form));
      const rejected = plan.rejected_lines ? `, ${plan.rejected_lines} lines rejected` : "";
      const prices = plan.batch_prices ? " at batch prices" : "";
      const priced = plan.stages.every((row) => row.cost_usd);
      const low = plan.stages.reduce((sum, row) => sum + (row.cost_usd ? Number(row.cost_usd[0]) : 0), 0);
      const high = plan.stages.reduce((sum, row) => sum + (row.cost_usd ? Number(row.cost_usd[1]) : 0), 0);
      const cost = priced ? `; estimated cost ${money(low)} – ${money(high)}${prices}` : "; some prices are unknown";
      say(result, [el("p", `${count(plan.services)} services${rejected}${cost}. No model was called.`), planTable(plan)]);
    } catch (error) {
      say(result, problem(error));
    }
  });
}

// -- the run page: the run's AG-UI stream, its state drawn ------------------------------------

function applyPatch(state, patch) {
  for (const op of patch) {
    const keys = op.path.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
    if (keys.length === 0) { state = op.value; continue; }
    let target = state;
    for (const key of keys.slice(0, -1)) target = target[key];
    const last = keys[keys.length - 1];
    if (op.op === "remove") {
      if (Array.isArray(target)) target.splice(Number(last), 1); else delete target[last];
    } else {
      target[last] = op.value;
    }
  }
  return state;
}

function shown(kind, value, state, field) {
  switch (kind) {
    case "duration": return duration(value);
    case "count": return count(value);
    case "money": return money(value);
    case "seconds": return Number(value).toFixed(1);
    case "list": return value.length ? value.join(", ") : "none";
    case "causes": {
      const parts = Object.entries(value).map(([cause, n]) => `${cause}: ${n}`);
      return parts.length ? ` (${parts.join(", ")})` : "";
    }
    case "limit":
      return value ? ` of ${count(value)}${state.limits_announced ? " announced" : ""}` : "";
    default: return value === null || value === undefined ? "—" : (typeof value === "number" ? count(value) : String(value));
  }
}

function draw(state) {
  for (const node of document.querySelectorAll("#figures [data-f]")) {
    node.textContent = shown(node.dataset.as, state[node.dataset.f], state, node.dataset.f);
  }
  for (const node of document.querySelectorAll("#figures [data-if]")) {
    const value = state[node.dataset.if];
    node.hidden = !value || (typeof value === "object" && Object.keys(value).length === 0);
  }
  const bar = document.getElementById("bar");
  bar.max = state.services_total || Math.max(1, state.done + state.failed + state.running);
  bar.value = state.done + state.failed;
  const body = document.querySelector("#stages tbody");
  body.replaceChildren(...state.stages.map((row) => {
    const tr = el("tr");
    tr.appendChild(el("td", row.stage));
    const cells = [count(row.calls) + (row.planned ? ` / ${count(row.planned)}` : ""), row.in_flight, count(row.cached), count(row.retries)];
    for (const cell of cells) tr.appendChild(el("td", cell, "num"));
    return tr;
  }));
  const failures = document.getElementById("failures");
  const items = state.recent_failures.map((line) => el("li", line));
  failures.replaceChildren(...(items.length ? items : [el("li", "none", "none")]));
}

function setStatus(status) {
  const badge = document.getElementById("status");
  badge.textContent = status;
  badge.className = `status ${status}`;
  document.getElementById("run").dataset.status = status;
  const cancel = document.getElementById("cancel");
  const resume = document.getElementById("resume");
  if (cancel && status !== "running") cancel.hidden = true;
  if (resume) resume.hidden = status === "running" || status === "completed";
}

function setUpRun() {
  const run = document.getElementById("run");
  if (!run) return;
  const id = run.dataset.runId;
  const result = document.getElementById("action-result");
  let state = null;
  const source = new EventSource(`/api/runs/${encodeURIComponent(id)}/agui`);
  source.onmessage = async (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "STATE_SNAPSHOT") state = event.snapshot;
    else if (event.type === "STATE_DELTA" && state) state = applyPatch(state, event.delta);
    else if (event.type === "RUN_FINISHED" || event.type === "RUN_ERROR") {
      source.close();
      const reloaded = `sa-reloaded-${id}`;
      if (run.dataset.status === "running" && !sessionStorage.getItem(reloaded)) {
        sessionStorage.setItem(reloaded, "1");
        location.reload(); // the page as the run ended: its services' states, its final figures
        return;
      }
      const detail = await api("GET", `/api/runs/${encodeURIComponent(id)}`);
      setStatus(detail.status);
      if (event.type === "RUN_ERROR") say(result, [el("p", event.message, "hint")]);
      return;
    }
    if (state) draw(state);
  };
  const cancel = document.getElementById("cancel");
  if (cancel) cancel.addEventListener("click", async () => {
    try {
      await api("POST", `/api/runs/${encodeURIComponent(id)}/cancel`);
      say(result, [el("p", "Stopping: the run finishes the calls in flight and records where it stopped.")]);
      cancel.disabled = true;
    } catch (error) { say(result, problem(error)); }
  });
  const resume = document.getElementById("resume");
  if (resume) resume.addEventListener("click", async () => {
    try {
      const started = await api("POST", `/api/runs/${encodeURIComponent(id)}/resume`);
      location.assign(`/runs/${encodeURIComponent(started.run_id)}`);
    } catch (error) { say(result, problem(error)); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpWorkspace();
  setUpRun();
});
