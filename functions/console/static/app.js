/* LeadFlow console: sign-in (authorization code + PKCE), then the API on the same address.
   Plain browser JavaScript, no build step. Everything on screen is built with DOM calls and textContent:
   nothing from the API is ever parsed as HTML. Pages are addressed by the fragment: #/leads, #/leads/<id>,
   #/tasks, #/rules, #/assignment-rules, #/users, #/nurture, #/analytics, #/contacts/<id>, #/deals/<id>,
   #/companies/<id>. */
"use strict";

const REQUEST_TIMEOUT_MS = 15000;
const REFRESH_MARGIN_S = 120;
const STORE = window.sessionStorage;
const API_BASE = new URL("../", window.location.href).href.replace(/\/$/, "");

let config = null;
let session = null; // {idToken, refreshToken, expiresAt, claims}
let refreshTimer = null;
let users = null; // the user directory, loaded once for names and the managers' pickers

/* ------------------------------------------------------------------ small DOM helpers */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function announce(message) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  window.setTimeout(() => { region.textContent = message; }, 50);
}

function setPage(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", { id: "page-title", text: title }), ...content);
  document.title = `${title} · LeadFlow`;
  return main;
}

function focusMain() {
  document.getElementById("main").focus({ preventScroll: false });
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function fullName(lead) {
  return `${lead.first_name || ""} ${lead.last_name || ""}`.trim() || lead.email || lead.id;
}

function userName(sub) {
  if (!sub) return "Unassigned";
  const user = (users || []).find((u) => u.sub === sub);
  return user ? user.name : sub;
}

/* ------------------------------------------------------------------ errors and requests */
class ApiError extends Error {
  constructor(kind, status, body, message) {
    super(message);
    this.kind = kind; // timeout | network | http
    this.status = status;
    this.body = body || {};
  }
}

function describe(error) {
  if (error.kind === "timeout") return "The server took too long to answer.";
  if (error.kind === "network") return "The server could not be reached.";
  if (error.status === 401) return "Your sign-in has ended; sign in again.";
  if (error.status === 403 || error.status === 404) return "You don't have access to this.";
  if (error.status === 429) return "Too many requests just now; wait a moment.";
  if (error.status >= 500) return "The server had a problem answering.";
  return error.body.message || `The request failed (${error.status}).`;
}

async function api(method, path, { body, query, headers, timeout = REQUEST_TIMEOUT_MS } = {}) {
  await freshSession();
  const url = new URL(API_BASE + path);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(key, value);
  }
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), timeout);
  const init = {
    method,
    headers: { Authorization: `Bearer ${session.idToken}`, ...(headers || {}) },
    signal: controller.signal,
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(err.name === "AbortError" ? "timeout" : "network", 0, null, String(err));
  } finally {
    window.clearTimeout(timer);
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: text }; }
  }
  if (!response.ok) {
    if (response.status === 401) {
      clearSession();
      showSignIn("Your sign-in has ended; sign in again.");
    }
    throw new ApiError("http", response.status, data, (data && data.message) || response.statusText);
  }
  return { data, etag: response.headers.get("ETag"), status: response.status };
}

/* An alert with the problem in words and, where trying again can help, a button that does. */
function errorBox(error, retry) {
  const box = h("div", { class: "alert", role: "alert" }, h("span", { text: describe(error) }));
  const retryable = error.kind !== "http" || error.status >= 500 || error.status === 429;
  if (retry && retryable) {
    box.append(h("button", { type: "button", class: "secondary", onclick: retry }, "Try again"));
  }
  return box;
}

/* Loads with a visible "Loading…" and, on failure, an error with a retry button: nothing spins forever. */
async function load(container, loader, render) {
  container.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
  try {
    const result = await loader();
    container.replaceChildren();
    render(result);
  } catch (error) {
    if (error.kind === "http" && error.status === 401) return;
    container.replaceChildren(errorBox(error, () => load(container, loader, render)));
  }
}

/* Field errors from a 4xx body ({fields: [{field, message}]}) next to the inputs they name. */
function showFieldErrors(form, error) {
  for (const old of form.querySelectorAll(".field-error, .form-error")) old.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
  if (!error) return;
  const fields = (error.body && error.body.fields) || [];
  let placed = 0;
  for (const problem of fields) {
    const name = String(problem.field || "").split(".").pop();
    const top = String(problem.field || "").split(/[.[]/)[0];
    const input = form.querySelector(`[name="${CSS.escape(problem.field)}"]`) ||
      form.querySelector(`[name="${CSS.escape(name)}"]`) || form.querySelector(`[name="${CSS.escape(top)}"]`);
    if (!input) continue;
    const id = `error-${input.id || input.name}`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    input.closest(".field, .check, div").append(h("p", { class: "field-error", id, text: problem.message }));
    placed += 1;
  }
  if (placed === 0 || placed < fields.length) {
    const box = errorBox(error, null);
    box.classList.add("form-error");
    form.append(box);
  }
  const first = form.querySelector("[aria-invalid='true']");
  if (first) first.focus();
}

function field(label, input, hint) {
  const id = input.id || `f-${input.name}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text: label }), input,
    hint ? h("p", { class: "hint", text: hint }) : null);
}

function checkbox(label, name, checked) {
  const input = h("input", { type: "checkbox", name, id: `f-${name}`, checked: checked || null });
  return h("div", { class: "check" }, input, h("label", { for: `f-${name}`, text: label }));
}

function select(name, options, value) {
  return h("select", { name, id: `f-${name}` },
    options.map(([v, text]) => h("option", { value: v, selected: v === value ? true : null }, text)));
}

/* ------------------------------------------------------------------ sign-in: authorization code + PKCE */
function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

function decodeClaims(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const json = decodeURIComponent(Array.from(atob(payload), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""));
  return JSON.parse(json);
}

async function signIn() {
  const verifier = randomString(48);
  const state = randomString(24);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  STORE.setItem("lf.pkce", JSON.stringify({ verifier, state, back: window.location.hash || "#/leads" }));
  const url = new URL(config.authorize_url);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.console_url,
    scope: "openid email profile",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.href);
}

async function tokenRequest(params) {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(config.token_url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: config.client_id, ...params }).toString(),
      signal: controller.signal,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError("http", response.status, data, data.error || "sign-in refused");
    return data;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(err.name === "AbortError" ? "timeout" : "network", 0, null, String(err));
  } finally {
    window.clearTimeout(timer);
  }
}

function keepTokens(data, refreshToken) {
  const claims = decodeClaims(data.id_token);
  session = {
    idToken: data.id_token,
    refreshToken: data.refresh_token || refreshToken,
    expiresAt: claims.exp,
    claims,
  };
  STORE.setItem("lf.session", JSON.stringify(session));
  scheduleRefresh();
}

function scheduleRefresh() {
  window.clearTimeout(refreshTimer);
  const wait = Math.max(5, session.expiresAt - REFRESH_MARGIN_S - Date.now() / 1000);
  refreshTimer = window.setTimeout(() => { refresh().catch(() => {}); }, wait * 1000);
}

async function refresh() {
  const data = await tokenRequest({ grant_type: "refresh_token", refresh_token: session.refreshToken });
  keepTokens(data, session.refreshToken);
}

/* Before each request: a token about to run out is refreshed first. */
async function freshSession() {
  if (!session) throw new ApiError("http", 401, null, "not signed in");
  if (session.expiresAt - Date.now() / 1000 < REFRESH_MARGIN_S) {
    try {
      await refresh();
    } catch (error) {
      if (error.kind === "http") {
        clearSession();
        showSignIn("Your sign-in has ended; sign in again.");
      }
      throw error;
    }
  }
}

function clearSession() {
  window.clearTimeout(refreshTimer);
  session = null;
  users = null;
  STORE.removeItem("lf.session");
}

function signOut() {
  clearSession();
  STORE.removeItem("lf.pkce");
  const url = new URL(config.logout_url);
  url.search = new URLSearchParams({ client_id: config.client_id, logout_uri: config.console_url }).toString();
  window.location.assign(url.href);
}

/* Back from the sign-in page with ?code=…&state=…: trade the code for tokens, then go where we were. */
async function finishSignIn(params) {
  const pending = JSON.parse(STORE.getItem("lf.pkce") || "null");
  STORE.removeItem("lf.pkce");
  window.history.replaceState(null, "", window.location.pathname + ((pending && pending.back) || "#/leads"));
  if (!pending || pending.state !== params.get("state")) {
    showSignIn("That sign-in did not start here; sign in again.");
    return false;
  }
  try {
    const data = await tokenRequest({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: config.console_url,
      code_verifier: pending.verifier,
    });
    keepTokens(data, null);
    return true;
  } catch (error) {
    showSignIn(error.kind === "http" ? "Sign-in was refused; sign in again." : describe(error));
    return false;
  }
}

function isManager() {
  const groups = (session && session.claims["cognito:groups"]) || [];
  return groups.includes("manager") || groups.includes("admin");
}

function showSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("account").hidden = true;
  setPage("Sign in",
    message ? h("p", { class: "alert", role: "alert", text: message }) : null,
    h("p", { text: "Sign in to work your leads." }),
    h("button", { type: "button", id: "sign-in", onclick: () => signIn() }, "Sign in"));
}

function showChrome() {
  document.getElementById("nav").hidden = false;
  document.getElementById("account").hidden = false;
  document.getElementById("who").textContent = `${session.claims.name || session.claims["cognito:username"]}`;
  for (const item of document.querySelectorAll(".managers")) item.hidden = !isManager();
}

async function loadUsers() {
  if (users) return users;
  try {
    const { data } = await api("GET", "/users");
    users = data.users || [];
  } catch {
    users = [];
  }
  return users;
}

/* ------------------------------------------------------------------ router */
const routes = [
  [/^#\/leads\/([^/]+)$/, (id) => leadPage(decodeURIComponent(id))],
  [/^#\/contacts\/([^/]+)$/, (id) => recordPage("contacts", decodeURIComponent(id))],
  [/^#\/deals\/([^/]+)$/, (id) => recordPage("deals", decodeURIComponent(id))],
  [/^#\/companies\/([^/]+)$/, (id) => recordPage("companies", decodeURIComponent(id))],
  [/^#\/tasks$/, () => tasksPage()],
  [/^#\/rules$/, () => rulesPage()],
  [/^#\/assignment-rules$/, () => assignmentRulesPage()],
  [/^#\/users$/, () => usersPage()],
  [/^#\/nurture$/, () => nurturePage()],
  [/^#\/analytics$/, () => analyticsPage()],
  [/^#\/leads$/, () => leadsPage()],
];

async function route() {
  if (!session) {
    showSignIn();
    return;
  }
  showChrome();
  const hash = window.location.hash || "#/leads";
  for (const link of document.querySelectorAll("#nav a")) {
    if (hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  await loadUsers();
  for (const [pattern, page] of routes) {
    const match = hash.match(pattern);
    if (match) {
      await page(...match.slice(1));
      focusMain();
      return;
    }
  }
  setPage("Page not found", h("p", {}, h("a", { href: "#/leads" }, "Go to my leads")));
}

/* ------------------------------------------------------------------ My leads */
const leadQuery = { queue: "me", status: "", source: "", grade: "", sort: "created_at", q: "" };

function leadsPage() {
  const manager = isManager();
  const queues = [["me", "My leads"]];
  if (manager) {
    queues.push(["team", "The team's leads"], ["unassigned", "Unassigned queue"]);
    for (const user of users || []) {
      if (user.role === "rep" && user.active) queues.push([`user:${user.sub}`, `${user.name}'s leads`]);
    }
  } else {
    queues.push(["unassigned", "My team's unassigned leads"]);
  }
  const statuses = [["", "Any status"], ...["new", "contacted", "qualified", "unqualified", "converted"].map((s) => [s, s])];
  const sources = [["", "Any source"], ...["website_form", "live_chat", "partner_webhook", "api"].map((s) => [s, s])];
  const grades = [["", "Any grade"], ...["A+", "A", "B", "C", "D", "F"].map((g) => [g, g])];
  const sorts = [["created_at", "Newest first"], ["score", "Highest score first"]];
  const search = h("input", { type: "search", name: "q", value: leadQuery.q, autocomplete: "off" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter leads" },
    field("Queue", select("queue", queues, leadQuery.queue)),
    field("Status", select("status", statuses, leadQuery.status)),
    field("Source", select("source", sources, leadQuery.source)),
    field("Grade", select("grade", grades, leadQuery.grade)),
    field("Sort", select("sort", sorts, leadQuery.sort)),
    field("Search", search),
    h("div", {}, h("button", { type: "submit" }, "Show leads")));
  const results = h("div", { id: "lead-results" });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    for (const key of Object.keys(leadQuery)) leadQuery[key] = String(data.get(key) || "");
    showLeads(form, results, null, []);
  });
  setPage(manager ? "Leads" : "My leads", form,
    h("p", { class: "hint", text: "Search finds names, emails and companies by their first letters (at least 2); it ignores the other filters." }),
    results);
  showLeads(form, results, null, []);
}

function leadListRequest(cursor) {
  const query = { limit: 25, cursor };
  if (leadQuery.q.trim()) return ["/leads", { ...query, q: leadQuery.q.trim() }];
  if (leadQuery.queue === "unassigned" && isManager()) return ["/leads/unassigned", query];
  Object.assign(query, { status: leadQuery.status, source: leadQuery.source, grade: leadQuery.grade });
  if (leadQuery.sort === "score") query.sort = "score";
  if (leadQuery.queue === "me") query.owner = "me";
  else if (leadQuery.queue === "unassigned") query.owner = "unassigned";
  else if (leadQuery.queue.startsWith("user:")) query.owner = leadQuery.queue.slice(5);
  return ["/leads", query];
}

function showLeads(form, results, cursor, previous) {
  showFieldErrors(form, null);
  const [path, query] = leadListRequest(cursor);
  results.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
  api("GET", path, { query }).then(({ data }) => {
    const items = data.items || [];
    const rows = items.map((lead) => h("tr", {},
      h("td", {}, h("a", { href: `#/leads/${encodeURIComponent(lead.id)}` }, fullName(lead))),
      h("td", { text: lead.company || "—" }),
      h("td", { text: lead.lead_status }),
      h("td", { text: lead.grade || "—" }),
      h("td", { class: "num", text: lead.score }),
      h("td", { text: lead.lead_source }),
      h("td", { text: userName(lead.assigned_to) }),
      h("td", { text: when(lead.created_at) })));
    const table = items.length
      ? h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Leads" },
        h("table", {},
          h("thead", {}, h("tr", {}, ["Name", "Company", "Status", "Grade", "Score", "Source", "Owner", "Captured"]
            .map((title) => h("th", { scope: "col", class: title === "Score" ? "num" : null, text: title })))),
          h("tbody", {}, rows)))
      : h("p", { text: "No leads match." });
    const pager = h("div", { class: "pager" });
    if (previous.length) {
      pager.append(h("button", { type: "button", class: "secondary",
        onclick: () => showLeads(form, results, previous[previous.length - 1], previous.slice(0, -1)) }, "Previous page"));
    }
    if (data.next_cursor) {
      pager.append(h("button", { type: "button",
        onclick: () => showLeads(form, results, data.next_cursor, [...previous, cursor]) }, "Next page"));
    }
    results.replaceChildren(h("p", { class: "hint", text: `${items.length} lead${items.length === 1 ? "" : "s"} on this page` }), table, pager);
    announce(`${items.length} leads shown`);
  }).catch((error) => {
    if (error.kind === "http" && error.status === 401) return;
    if (error.kind === "http" && error.status < 500 && error.body.fields) {
      results.replaceChildren();
      showFieldErrors(form, error);
      return;
    }
    results.replaceChildren(errorBox(error, () => showLeads(form, results, cursor, previous)));
  });
}

/* ------------------------------------------------------------------ Lead */
function noAccess(what) {
  return setPage(`You don't have access to this ${what}`,
    h("p", { text: `It may not exist, or it belongs to someone else's queue.` }),
    h("p", {}, h("a", { href: "#/leads" }, "Back to my leads")));
}

async function leadPage(id) {
  const main = setPage("Lead");
  const body = h("div", {});
  main.append(body);
  body.append(h("p", { class: "hint", text: "Loading…" }));
  let lead;
  let etag;
  try {
    ({ data: lead, etag } = await api("GET", `/leads/${encodeURIComponent(id)}`));
  } catch (error) {
    if (error.kind === "http" && (error.status === 403 || error.status === 404)) {
      noAccess("lead");
      return;
    }
    if (error.kind === "http" && error.status === 401) return;
    body.replaceChildren(errorBox(error, () => leadPage(id)));
    return;
  }
  document.getElementById("page-title").textContent = fullName(lead);
  document.title = `${fullName(lead)} · LeadFlow`;
  body.replaceChildren(...[
    h("dl", { class: "facts" },
      ...[
        ["Email", lead.email], ["Phone", lead.phone], ["Company", lead.company], ["Title", lead.title],
        ["Status", lead.lead_status], ["Score", `${lead.score}${lead.grade ? ` (grade ${lead.grade})` : ""}`],
        ["Source", lead.lead_source], ["Owner", userName(lead.assigned_to)], ["Team", lead.team],
        ["Captured", when(lead.created_at)], ["Do not email", lead.do_not_email ? "yes" : "no"],
      ].flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { text: value === null || value === undefined || value === "" ? "—" : value })])),
    conversionLinks(lead),
    lead.converted ? null : editForm(lead, etag),
    h("div", { class: "cards" },
      scoreCard(lead),
      lead.converted ? null : qualifyCard(lead),
      lead.converted ? null : convertCard(lead),
      isManager() && !lead.converted ? assignCard(lead, etag) : null,
      leadTasksCard(lead),
      emailCard(lead, etag),
      activityCard(lead)),
    timelineCard(lead)].filter(Boolean));
}

/* The lead's own tasks (open, done, cancelled), soonest due first. */
function leadTasksCard(lead) {
  const box = h("div", {});
  load(box, () => api("GET", `/leads/${encodeURIComponent(lead.id)}/tasks`), ({ data }) => {
    const tasks = data.items || [];
    if (!tasks.length) {
      box.append(h("p", { text: "No tasks for this lead." }));
      return;
    }
    box.append(h("ul", { class: "timeline", "aria-label": "Tasks of this lead" }, tasks.map((task) => {
      const state = task.cancelled_at ? "cancelled" : task.done_at ? "done" : "open";
      return h("li", {},
        h("div", {}, h("strong", { text: task.title }), ` (${state})`),
        h("div", { class: "when", text: `Due ${when(task.due_at)} · ${userName(task.owner)}` }));
    })));
  });
  return h("section", { class: "card", "aria-labelledby": "lead-tasks-title" },
    h("h2", { id: "lead-tasks-title", text: "Tasks" }), box);
}

/* Do-not-email: the person asked for no marketing email (their nurture sequence stops), or asked for it again. */
function emailCard(lead, etag) {
  const blocked = Boolean(lead.do_not_email);
  const form = h("form", { "aria-labelledby": "email-title" },
    h("p", { text: blocked ? "This person asked for no marketing email." : "Marketing email is allowed." }),
    h("button", { type: "submit", name: "do_not_email" }, blocked ? "Allow email again" : "Mark do-not-email"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await submit(form, () => api("PATCH", `/leads/${encodeURIComponent(lead.id)}`, {
      body: { do_not_email: !blocked }, headers: { "If-Match": etag },
    }), () => {
      announce(blocked ? "Email allowed again" : "Marked do-not-email");
      leadPage(lead.id);
    });
  });
  return h("section", { class: "card" }, h("h2", { id: "email-title", text: "Email" }), form);
}

const ACTIVITY_TYPES = [
  ["call_logged", "Call"], ["meeting_held", "Meeting"], ["email_sent", "Email sent"], ["note_added", "Note"],
  ["email_opened", "Email opened"], ["email_clicked", "Email clicked"], ["page_viewed", "Page viewed"],
  ["form_submitted", "Form submitted"], ["demo_requested", "Demo requested"],
];

/* Records an activity (a call, a meeting, a note...): the lead is rescored from it. */
function activityCard(lead) {
  const form = h("form", { "aria-labelledby": "activity-title" },
    field("Activity type", select("type", ACTIVITY_TYPES, "call_logged")),
    field("What happened", h("textarea", { name: "description", rows: "2" })),
    h("button", { type: "submit" }, "Record activity"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { type: String(data.get("type")), description: String(data.get("description") || "") };
    await submit(form, () => api("POST", `/leads/${encodeURIComponent(lead.id)}/activities`, { body }), () => {
      announce("Activity recorded");
      leadPage(lead.id);
    });
  });
  return h("section", { class: "card" }, h("h2", { id: "activity-title", text: "Record an activity" }), form);
}

/* The person's details, saved with the version read (If-Match); a stale save says who changed what. */
function editForm(lead, etag) {
  const form = h("form", { "aria-labelledby": "edit-title" },
    h("div", { class: "filters" },
      field("Phone", h("input", { name: "phone", type: "tel", value: lead.phone || "", autocomplete: "off" })),
      field("Company", h("input", { name: "company", type: "text", value: lead.company || "", autocomplete: "off" })),
      field("Job title", h("input", { name: "title", type: "text", value: lead.title || "", autocomplete: "off" })),
      h("div", {}, h("button", { type: "submit" }, "Save details"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {};
    for (const name of ["phone", "company", "title"]) {
      const value = String(data.get(name) || "").trim();
      if (value !== (lead[name] || "")) body[name] = value || null;
    }
    if (!Object.keys(body).length) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showFieldErrors(form, null);
    try {
      await api("PATCH", `/leads/${encodeURIComponent(lead.id)}`, { body, headers: { "If-Match": etag } });
      announce("Details saved");
      await leadPage(lead.id);
    } catch (error) {
      if (error.kind === "http" && error.status === 409 && error.body.current_version !== undefined) {
        await staleEdit(form, lead);
      } else if (error.kind === "http" && error.status < 500 && error.status !== 429) {
        showFieldErrors(form, error);
      } else {
        const box = errorBox(error, () => { box.remove(); form.requestSubmit(); });
        box.classList.add("form-error");
        form.append(box);
      }
    } finally {
      button.disabled = false;
    }
  });
  return h("section", { "aria-labelledby": "edit-title" }, h("h2", { id: "edit-title", text: "Details" }), form);
}

async function staleEdit(form, lead) {
  let latest = "";
  try {
    const { data } = await api("GET", `/leads/${encodeURIComponent(lead.id)}`);
    const seen = new Set((lead.activities || []).map((a) => a.id));
    const changes = (data.activities || []).filter((a) => !seen.has(a.id));
    latest = changes.map((a) => {
      const who = userName(String(a.created_by).replace(/^user:/, ""));
      const fields = Object.entries((a.data && a.data.changes) || {})
        .map(([name, change]) => `${name.replace(/_/g, " ")} ${change.old ?? "(empty)"} → ${change.new ?? "(empty)"}`);
      return `${who}: ${fields.length ? fields.join(", ") : a.description}`;
    }).join("; ");
  } catch {
    latest = "";
  }
  const box = h("div", { class: "alert form-error", role: "alert" },
    h("p", { text: "Someone changed this lead after you opened it; your change was not saved." }),
    latest ? h("p", { text: `Their change: ${latest}` }) : null,
    h("button", { type: "button", class: "secondary", onclick: () => leadPage(lead.id) }, "Reload the lead"));
  form.append(box);
}

function conversionLinks(lead) {
  if (!lead.converted && !lead.contact_id) return null;
  return h("section", { "aria-labelledby": "converted-title", class: "notice" },
    h("h2", { id: "converted-title", text: "Converted" }),
    h("ul", {},
      lead.contact_id ? h("li", {}, h("a", { href: `#/contacts/${lead.contact_id}` }, "Open the contact")) : null,
      lead.company_id ? h("li", {}, h("a", { href: `#/companies/${lead.company_id}` }, "Open the company")) : null,
      lead.deal_id ? h("li", {}, h("a", { href: `#/deals/${lead.deal_id}` }, "Open the deal")) : null));
}

function scoreCard(lead) {
  const box = h("div", {});
  const card = h("section", { class: "card", "aria-labelledby": "score-title" },
    h("h2", { id: "score-title", text: "Why this score" }), box);
  load(box, () => api("GET", `/leads/${encodeURIComponent(lead.id)}/score`), ({ data }) => {
    if (!data.scored_at) {
      box.append(h("p", { text: "Not scored yet." }));
      return;
    }
    const rows = data.entries.map((entry) => h("tr", {},
      h("td", { text: entry.rule_name }),
      h("td", { text: entry.activity_count !== null && entry.activity_count !== undefined ? `${entry.activity_count} activities` : JSON.stringify(entry.matched_value) }),
      h("td", { class: "num", text: entry.points > 0 ? `+${entry.points}` : entry.points })));
    if (data.limit_adjustment) {
      rows.push(h("tr", {}, h("td", { text: "Limit adjustment" }), h("td", { text: "" }), h("td", { class: "num", text: data.limit_adjustment })));
    }
    box.append(
      h("p", { text: `Score ${data.score}${data.grade ? `, grade ${data.grade}` : ""}, from ${data.entries.length} rule${data.entries.length === 1 ? "" : "s"}.` }),
      data.entries.length
        ? h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Score ledger" },
          h("table", {}, h("thead", {}, h("tr", {},
            h("th", { scope: "col", text: "Rule" }), h("th", { scope: "col", text: "Matched" }), h("th", { scope: "col", class: "num", text: "Points" }))),
          h("tbody", {}, rows)))
        : h("p", { text: "No rule matched this lead." }));
  });
  return card;
}

function qualifyCard(lead) {
  const bant = (lead.custom_fields && lead.custom_fields.bant) || {};
  const form = h("form", { "aria-labelledby": "qualify-title" },
    h("fieldset", {}, h("legend", { text: "BANT" }),
      checkbox("Has budget", "has_budget", bant.has_budget),
      checkbox("Has authority", "has_authority", bant.has_authority),
      checkbox("Has need", "has_need", bant.has_need),
      checkbox("Has timeline", "has_timeline", bant.has_timeline)),
    field("Notes", h("textarea", { name: "notes", rows: "2" })),
    h("button", { type: "submit" }, "Save qualification"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { notes: String(data.get("notes") || "") || null };
    for (const name of ["has_budget", "has_authority", "has_need", "has_timeline"]) body[name] = data.get(name) === "on";
    await submit(form, () => api("POST", `/leads/${encodeURIComponent(lead.id)}/qualify`, { body }), () => {
      announce("Qualification saved");
      leadPage(lead.id);
    });
  });
  return h("section", { class: "card" }, h("h2", { id: "qualify-title", text: "Qualify" }),
    h("p", { class: "hint", text: "All four answers yes makes the lead qualified." }), form);
}

function convertCard(lead) {
  const form = h("form", { "aria-labelledby": "convert-title" },
    field("Deal name", h("input", { name: "deal_name", type: "text", autocomplete: "off" }), "Empty: the company's name - Opportunity"),
    field("Amount", h("input", { name: "amount", type: "text", inputmode: "decimal", autocomplete: "off" })),
    isManager() ? checkbox("Convert even if not qualified", "force", false) : null,
    h("button", { type: "submit" }, "Convert to contact and deal"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {};
    if (data.get("deal_name")) body.deal_name = String(data.get("deal_name"));
    if (data.get("amount")) {
      const amount = Number(data.get("amount"));
      body.amount = Number.isFinite(amount) ? amount : String(data.get("amount"));
    }
    if (data.get("force") === "on") body.force = true;
    await submit(form, () => api("POST", `/leads/${encodeURIComponent(lead.id)}/convert`, { body }), () => {
      announce("Lead converted");
      leadPage(lead.id);
    });
  });
  return h("section", { class: "card" }, h("h2", { id: "convert-title", text: "Convert" }), form);
}

function assignCard(lead, etag) {
  const reps = (users || []).filter((u) => u.active && (u.role === "rep" || u.role === "manager"));
  const form = h("form", { "aria-labelledby": "assign-title" },
    field("Assign to", select("assigned_to", reps.map((u) => [u.sub, `${u.name} (${u.open_leads ?? 0} open)`]), lead.assigned_to)),
    field("Reason", h("input", { name: "reason", type: "text", autocomplete: "off" })),
    h("button", { type: "submit" }, lead.assigned_to ? "Reassign" : "Assign"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { assigned_to: String(data.get("assigned_to")) };
    if (data.get("reason")) body.reason = String(data.get("reason"));
    await submit(form, () => api("POST", `/leads/${encodeURIComponent(lead.id)}/assign`, { body }), () => {
      announce(`Assigned to ${userName(body.assigned_to)}`);
      leadPage(lead.id);
    });
  });
  return h("section", { class: "card" }, h("h2", { id: "assign-title", text: "Assignment" }), form);
}

function timelineCard(lead) {
  const items = (lead.activities || []).map((activity) => h("li", {},
    h("div", {}, h("strong", { text: activity.type.replace(/_/g, " ") }), " ", activity.description || ""),
    h("div", { class: "when", text: `${when(activity.created_at)} · ${activity.created_by}` })));
  return h("section", { "aria-labelledby": "timeline-title" },
    h("h2", { id: "timeline-title", text: "Timeline" }),
    items.length ? h("ol", { class: "timeline" }, items) : h("p", { text: "Nothing yet." }));
}

/* Sends a form's request; 4xx errors go next to the fields they name, others in an alert with retry. */
async function submit(form, request, done) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  showFieldErrors(form, null);
  try {
    const result = await request();
    done(result);
  } catch (error) {
    if (error.kind === "http" && error.status === 401) return;
    if (error.kind === "http" && error.status < 500 && error.status !== 429) {
      showFieldErrors(form, error);
    } else {
      const box = errorBox(error, () => { box.remove(); form.requestSubmit(); });
      box.classList.add("form-error");
      form.append(box);
    }
  } finally {
    button.disabled = false;
  }
}

/* ------------------------------------------------------------------ contact / deal / company */
async function recordPage(kind, id) {
  const titles = { contacts: "Contact", deals: "Deal", companies: "Company" };
  const main = setPage(titles[kind]);
  const body = h("div", {});
  main.append(body);
  await load(body, () => api("GET", `/${kind}/${encodeURIComponent(id)}`), ({ data }) => {
    const name = data.name || `${data.first_name || ""} ${data.last_name || ""}`.trim() || id;
    document.getElementById("page-title").textContent = `${titles[kind]}: ${name}`;
    const facts = Object.entries(data).filter(([, v]) => v !== null && typeof v !== "object");
    body.append(h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", { text: k.replace(/_/g, " ") }), h("dd", { text: String(v) })])));
    const links = h("ul", {});
    if (data.lead_id) links.append(h("li", {}, h("a", { href: `#/leads/${data.lead_id}` }, "The lead")));
    if (data.contact_id) links.append(h("li", {}, h("a", { href: `#/contacts/${data.contact_id}` }, "The contact")));
    if (data.company_id) links.append(h("li", {}, h("a", { href: `#/companies/${data.company_id}` }, "The company")));
    if (links.children.length) body.append(links);
  });
  if (body.querySelector(".alert") && /access/.test(body.textContent)) noAccess(titles[kind].toLowerCase());
}

/* ------------------------------------------------------------------ Tasks */
async function tasksPage() {
  const main = setPage("Tasks");
  const body = h("div", {});
  main.append(body);
  await load(body, () => api("GET", "/tasks", { query: { owner: "me", limit: 100 } }), ({ data }) => {
    const now = Date.now();
    const tasks = (data.items || []).slice().sort((a, b) => String(a.due_at).localeCompare(String(b.due_at)));
    if (!tasks.length) {
      body.append(h("p", { text: "No open tasks." }));
      return;
    }
    body.append(h("ul", { class: "timeline" }, tasks.map((task) => {
      const overdue = task.due_at && new Date(task.due_at).getTime() < now;
      const button = h("button", { type: "button", class: "secondary" }, "Mark done");
      const item = h("li", {},
        h("div", {}, h("strong", { text: task.title }), overdue ? " (overdue)" : ""),
        h("div", { class: "when" }, `Due ${when(task.due_at)} · `, h("a", { href: `#/leads/${task.lead_id}` }, "the lead")),
        button);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api("PATCH", `/tasks/${encodeURIComponent(task.id)}`, { body: { done: true, version: task.version } });
          item.replaceChildren(h("span", { text: `${task.title}: done` }));
          announce("Task done");
        } catch (error) {
          button.disabled = false;
          item.append(errorBox(error, null));
        }
      });
      return item;
    })));
  });
}

/* ------------------------------------------------------------------ Scoring rules */
async function rulesPage() {
  const main = setPage("Scoring rules");
  if (!isManager()) {
    main.append(h("p", { text: "Scoring rules are for managers." }));
    return;
  }
  const progress = h("p", { class: "progress", id: "rescore-progress", role: "status", "aria-live": "polite" });
  const body = h("div", {});
  main.append(h("p", { class: "hint", text: "A change rescores every open lead; its progress shows here." }), progress, body);
  await load(body, () => api("GET", "/scoring-rules"), ({ data }) => {
    const rows = data.rules.map((rule) => ruleRow(rule, progress));
    body.append(h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Scoring rules" },
      h("table", {},
        h("thead", {}, h("tr", {}, ["Rule", "When", "Points", "Active", ""].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, rows))), newRuleForm(progress));
  });
}

const OPERATORS = ["equals", "not_equals", "contains", "starts_with", "ends_with", "in", "gt", "gte", "lt", "lte",
  "between", "exists", "not_exists", "regex"];

/* A value as typed: JSON (a number, a list for in/between, true/false) when it parses, else the text itself. */
function ruleValue(text) {
  const value = String(text || "").trim();
  if (!value) return null;
  try { return JSON.parse(value); } catch { return value; }
}

function shownValue(value) {
  return value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
}

/* A new scoring rule; its errors go next to the fields they name. */
function newRuleForm(progress) {
  const form = h("form", { "aria-labelledby": "new-rule-title", novalidate: true },
    h("div", { class: "filters" },
      field("Name", h("input", { name: "name", id: "new-rule-name", type: "text", autocomplete: "off" })),
      field("Category", h("select", { name: "category", id: "new-rule-category" },
        ["demographic", "firmographic", "behavioural"].map((c) => h("option", { value: c }, c)))),
      field("Field", h("input", { name: "field", id: "new-rule-field", type: "text", autocomplete: "off" }), "A lead field, custom_fields.<name> or activity.type"),
      field("Operator", h("select", { name: "operator", id: "new-rule-operator" }, OPERATORS.map((o) => h("option", { value: o }, o)))),
      field("Value", h("input", { name: "value", id: "new-rule-value", type: "text", autocomplete: "off" }), "Text, a number, or a JSON list for in/between"),
      field("Points", h("input", { name: "points", id: "new-rule-points", type: "number", min: "-1000", max: "1000", step: "1" })),
      h("div", {}, h("button", { type: "submit" }, "Add rule"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const points = Number(data.get("points"));
    const body = {
      name: String(data.get("name") || ""), category: String(data.get("category")), field: String(data.get("field") || ""),
      operator: String(data.get("operator")), value: ruleValue(data.get("value")),
      points: data.get("points") !== "" && Number.isInteger(points) ? points : String(data.get("points")),
    };
    await submit(form, () => api("POST", "/scoring-rules", { body }), ({ data: created }) => {
      announce(`${body.name} added`);
      rulesPage().then(() => watchJob(created.rescore_job.job_id, document.getElementById("rescore-progress")));
    });
  });
  return h("section", { "aria-labelledby": "new-rule-title" }, h("h2", { id: "new-rule-title", text: "New rule" }), form);
}

/* Deletes a record after the user confirms; afterwards `done` runs with the answer. */
function deleteButton(label, path, version, done) {
  const button = h("button", { type: "button", class: "secondary danger", "aria-label": label }, "Delete");
  button.addEventListener("click", async () => {
    if (!window.confirm(`${label}?`)) return;
    button.disabled = true;
    for (const old of button.parentElement.querySelectorAll(".alert")) old.remove();
    try {
      const result = await api("DELETE", path, { headers: version ? { "If-Match": `"${version}"` } : {} });
      announce("Deleted");
      done(result);
    } catch (error) {
      button.disabled = false;
      button.parentElement.append(errorBox(error, null));
    }
  });
  return button;
}

function ruleRow(rule, progress) {
  const id = rule.id.replace(/[^A-Za-z0-9_-]/g, "_");
  const points = h("input", { type: "number", name: "points", id: `points-${id}`, value: rule.points, min: "-1000", max: "1000", step: "1",
    "aria-label": `Points for ${rule.name}`, class: "points" });
  const active = h("input", { type: "checkbox", name: "active", id: `active-${id}`, checked: rule.active || null,
    "aria-label": `${rule.name} active` });
  const save = h("button", { type: "submit", "aria-label": `Save ${rule.name}` }, "Save");
  const form = h("form", { id: `rule-${id}` });
  const row = h("tr", {},
    h("th", { scope: "row", text: rule.name }),
    h("td", { text: `${rule.field} ${rule.operator} ${rule.value === null ? "" : JSON.stringify(rule.value)}` }),
    h("td", {}, h("div", {}, points)),
    h("td", {}, h("div", {}, active)),
    h("td", {}, form, save, " ", deleteButton(`Delete ${rule.name}`, `/scoring-rules/${encodeURIComponent(rule.id)}`, null,
      ({ data }) => { row.remove(); watchJob(data.rescore_job.job_id, progress); })));
  points.setAttribute("form", form.id);
  active.setAttribute("form", form.id);
  save.setAttribute("form", form.id);
  let version = rule.version;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    for (const old of row.querySelectorAll(".field-error, .alert")) old.remove();
    points.removeAttribute("aria-invalid");
    try {
      const value = Number(points.value);
      const { data } = await api("PATCH", `/scoring-rules/${encodeURIComponent(rule.id)}`, {
        body: { points: Number.isInteger(value) ? value : points.value, active: active.checked },
        headers: { "If-Match": `"${version}"` },
      });
      version = data.rule.version;
      announce(`${rule.name} saved`);
      watchJob(data.rescore_job.job_id, progress);
    } catch (error) {
      if (error.kind === "http" && error.status === 409) {
        row.lastChild.append(h("p", { class: "field-error", role: "alert", text: "Someone changed this rule meanwhile; reload the page to see their change." }));
      } else if (error.kind === "http" && error.status < 500 && error.body.fields) {
        const problem = error.body.fields[0];
        points.setAttribute("aria-invalid", "true");
        points.setAttribute("aria-describedby", `points-error-${id}`);
        points.parentElement.append(h("p", { class: "field-error", id: `points-error-${id}`, text: problem.message }));
      } else {
        row.lastChild.append(errorBox(error, () => form.requestSubmit()));
      }
    } finally {
      save.disabled = false;
    }
  });
  return row;
}

async function watchJob(jobId, progress) {
  progress.textContent = "Rescoring: starting…";
  for (let attempt = 0; attempt < 600; attempt += 1) {
    try {
      const { data } = await api("GET", `/scoring-rules/rescore-jobs/${encodeURIComponent(jobId)}`);
      progress.textContent = `Rescoring: ${data.leads_done} of ${data.leads_total} leads, ${data.leads_changed} changed (${data.state})`;
      if (data.state === "completed" || data.state === "superseded") return;
    } catch (error) {
      if (error.kind === "http" && error.status !== 404) {
        progress.textContent = `Rescoring: ${describe(error)}`;
        return;
      }
    }
    await new Promise((resolve) => window.setTimeout(resolve, 1000));
  }
}

/* ------------------------------------------------------------------ Assignment rules */
function conditionsText(conditions) {
  return (conditions || []).map((c) => `${c.field} ${c.operator} ${shownValue(c.value)}`.trim()).join("\n");
}

/* One condition a line: `field operator value` (the value as in ruleValue). */
function parseConditions(text) {
  return String(text || "").split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [fieldName, operator, ...rest] = line.split(/\s+/);
    const condition = { field: fieldName, operator: operator || "" };
    if (rest.length) condition.value = ruleValue(rest.join(" "));
    return condition;
  });
}

/* The form of one assignment rule (existing: PATCH with its version; new: POST). Ids are unique per rule. */
function assignmentRuleForm(rule, reload) {
  const key = rule ? rule.id.replace(/[^A-Za-z0-9_-]/g, "_") : "new";
  const teamsAndUsers = [["", "(a team)"], ...(users || []).filter((u) => u.active).map((u) => [u.sub, u.name])];
  const input = (name, attrs) => h("input", { name, id: `ar-${key}-${name}`, autocomplete: "off", ...attrs });
  const form = h("form", { novalidate: true, "aria-label": rule ? `Assignment rule ${rule.name}` : "New assignment rule" },
    h("div", { class: "filters" },
      field("Name", input("name", { type: "text", value: rule ? rule.name : "" })),
      field("Priority", input("priority", { type: "number", min: "0", step: "1", value: rule ? rule.priority : "" }), "Lowest first"),
      field("Target team", input("target_team", { type: "text", value: rule && rule.target_team ? rule.target_team : "" })),
      field("Target user", h("select", { name: "target_user", id: `ar-${key}-target_user` },
        teamsAndUsers.map(([v, t]) => h("option", { value: v, selected: rule && rule.target_user === v ? true : null }, t))))),
    field("Conditions", h("textarea", { name: "conditions", id: `ar-${key}-conditions`, rows: "2" }, rule ? conditionsText(rule.conditions) : ""),
      "One a line: field operator value, e.g. country equals FR"),
    h("div", { class: "check" }, h("input", { type: "checkbox", name: "active", id: `ar-${key}-active`, checked: !rule || rule.active ? true : null }),
      h("label", { for: `ar-${key}-active`, text: "Active" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, rule ? `Save ${rule.name}` : "Add assignment rule"),
      rule ? deleteButton(`Delete ${rule.name}`, `/assignment-rules/${encodeURIComponent(rule.id)}`, rule.version, reload) : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const priority = Number(data.get("priority"));
    const body = {
      name: String(data.get("name") || ""),
      priority: data.get("priority") !== "" && Number.isInteger(priority) ? priority : String(data.get("priority")),
      conditions: parseConditions(data.get("conditions")),
      target_team: String(data.get("target_team") || "").trim() || null,
      target_user: String(data.get("target_user") || "") || null,
      active: data.get("active") === "on",
    };
    // One target: a user when one is picked, else the team (the API refuses both).
    if (body.target_user) delete body.target_team;
    else delete body.target_user;
    await saveItem(form, "/assignment-rules", rule, body, reload);
  });
  return form;
}

/* Save one item of a versioned collection: an existing one by PATCH with its version, a new one by POST. */
async function saveItem(form, collection, item, body, reload) {
  const request = item
    ? () => api("PATCH", `${collection}/${encodeURIComponent(item.id)}`, { body, headers: { "If-Match": `"${item.version}"` } })
    : () => api("POST", collection, { body });
  await submit(form, request, () => {
    announce(`${body.name} saved`);
    reload();
  });
}

/* A manager page of a collection: each item as its own editable form, then a form for a new one. */
async function collectionPage({ title, who, hint, collection, newTitle, form, page }) {
  const main = setPage(title);
  if (!isManager()) {
    main.append(h("p", { text: `${who} are for managers.` }));
    return;
  }
  const body = h("div", {});
  main.append(h("p", { class: "hint", text: hint }), body);
  await load(body, () => api("GET", collection), ({ data }) => {
    for (const item of data.items) {
      body.append(h("section", { class: "card wide" }, h("h2", { text: item.name }), form(item, page)));
    }
    body.append(h("section", { class: "card wide" }, h("h2", { text: newTitle }), form(null, page)));
  });
}

function assignmentRulesPage() {
  return collectionPage({
    title: "Assignment rules",
    who: "Assignment rules",
    hint: "Tried by ascending priority: the first active rule whose conditions all match sends the lead to its target; none: the default team.",
    collection: "/assignment-rules",
    newTitle: "New assignment rule",
    form: assignmentRuleForm,
    page: assignmentRulesPage,
  });
}

/* ------------------------------------------------------------------ Users */
function localInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function isoFromLocal(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

function isAdmin() {
  return ((session && session.claims["cognito:groups"]) || []).includes("admin");
}

/* Capacity, working hours and out of office of one user (admins change them; managers read them). */
function userForm(user, reload) {
  const key = user.sub.replace(/[^A-Za-z0-9_-]/g, "_");
  const hours = user.working_hours || {};
  const away = user.out_of_office || {};
  const editable = isAdmin();
  const input = (name, attrs) => h("input", { name, id: `u-${key}-${name.replace(/\./g, "-")}`, autocomplete: "off", disabled: editable ? null : true, ...attrs });
  const form = h("form", { novalidate: true, "aria-label": `User ${user.name}` },
    h("div", { class: "filters" },
      field("Capacity (open leads)", input("capacity", { type: "number", min: "0", step: "1", value: user.capacity ?? "" }), "Empty: no limit"),
      field("Working days", input("working_hours.days", { type: "text", value: (hours.days || []).join(" ") }), "e.g. mon tue wed thu fri; empty: any time"),
      field("Starts", input("working_hours.start", { type: "time", value: hours.start ? String(hours.start).slice(0, 5) : "" })),
      field("Ends", input("working_hours.end", { type: "time", value: hours.end ? String(hours.end).slice(0, 5) : "" })),
      field("Time zone", input("working_hours.time_zone", { type: "text", value: hours.time_zone || "" }), "IANA, e.g. Europe/Paris"),
      field("Away from", input("out_of_office.start", { type: "datetime-local", value: localInput(away.start) })),
      field("Away until", input("out_of_office.end", { type: "datetime-local", value: localInput(away.end) }))),
    editable ? h("button", { type: "submit" }, `Save ${user.name}`) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const capacity = String(data.get("capacity") || "").trim();
    const days = String(data.get("working_hours.days") || "").trim();
    const awayStart = String(data.get("out_of_office.start") || "");
    const awayEnd = String(data.get("out_of_office.end") || "");
    const body = {
      capacity: capacity === "" ? null : Number.isInteger(Number(capacity)) ? Number(capacity) : capacity,
      working_hours: days ? {
        days: days.split(/[\s,]+/).filter(Boolean),
        start: String(data.get("working_hours.start") || ""),
        end: String(data.get("working_hours.end") || ""),
        time_zone: String(data.get("working_hours.time_zone") || ""),
      } : null,
      out_of_office: awayStart || awayEnd ? { start: isoFromLocal(awayStart), end: isoFromLocal(awayEnd) } : null,
    };
    await submit(form, () => api("PATCH", `/users/${encodeURIComponent(user.sub)}`, { body, headers: { "If-Match": `"${user.version}"` } }), () => {
      announce(`${user.name} saved`);
      reload();
    });
  });
  return form;
}

async function usersPage() {
  const main = setPage("Users");
  if (!isManager()) {
    main.append(h("p", { text: "The users' settings are for managers." }));
    return;
  }
  const body = h("div", {});
  main.append(h("p", { class: "hint", text: isAdmin() ? "Assignment skips a rep at capacity, outside working hours or away." : "Only admins change these; assignment skips a rep at capacity, outside working hours or away." }), body);
  await load(body, () => api("GET", "/users"), ({ data }) => {
    users = data.items || data.users || [];
    const reload = () => usersPage();
    for (const user of users) {
      body.append(h("section", { class: "card wide" },
        h("h2", { text: `${user.name} (${user.role}${user.active ? "" : ", inactive"})` }),
        h("p", { class: "hint", text: `${user.email} · teams ${(user.teams || []).join(", ") || "—"} · ${user.open_leads ?? 0} open leads` }),
        userForm(user, reload)));
    }
  });
}

/* ------------------------------------------------------------------ Nurture sequences */
function stepsText(steps) {
  return (steps || []).map((step) => `${step.delay_hours} ${step.template}`).join("\n");
}

/* One step a line: `delay_hours template`. */
function parseSteps(text) {
  return String(text || "").split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [hours, ...rest] = line.split(/\s+/);
    const delay = Number(hours);
    return { delay_hours: Number.isInteger(delay) ? delay : hours, template: rest.join(" ") };
  });
}

function sequenceForm(sequence, reload) {
  const key = sequence ? sequence.id.replace(/[^A-Za-z0-9_-]/g, "_") : "new";
  const input = (name, attrs) => h("input", { name, id: `ns-${key}-${name}`, autocomplete: "off", ...attrs });
  const form = h("form", { novalidate: true, "aria-label": sequence ? `Nurture sequence ${sequence.name}` : "New nurture sequence" },
    h("div", { class: "filters" },
      field("Name", input("name", { type: "text", value: sequence ? sequence.name : "" })),
      field("Priority", input("priority", { type: "number", min: "0", step: "1", value: sequence ? sequence.priority : "" }), "Lowest tried first")),
    field("Steps", h("textarea", { name: "steps", id: `ns-${key}-steps`, rows: "3" }, sequence ? stepsText(sequence.steps) : ""),
      "One a line: hours to wait, then the email template, e.g. 24 nurture-welcome"),
    field("Conditions", h("textarea", { name: "conditions", id: `ns-${key}-conditions`, rows: "2" }, sequence ? conditionsText(sequence.conditions) : ""),
      "One a line: field operator value; empty: every nurture lead"),
    h("div", { class: "check" }, h("input", { type: "checkbox", name: "active", id: `ns-${key}-active`, checked: !sequence || sequence.active ? true : null }),
      h("label", { for: `ns-${key}-active`, text: "Active" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, sequence ? `Save ${sequence.name}` : "Add sequence"),
      sequence ? deleteButton(`Delete ${sequence.name}`, `/nurture-sequences/${encodeURIComponent(sequence.id)}`, sequence.version, reload) : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const priority = Number(data.get("priority"));
    const body = {
      name: String(data.get("name") || ""),
      priority: data.get("priority") !== "" && Number.isInteger(priority) ? priority : String(data.get("priority")),
      steps: parseSteps(data.get("steps")),
      conditions: parseConditions(data.get("conditions")),
      active: data.get("active") === "on",
    };
    await saveItem(form, "/nurture-sequences", sequence, body, reload);
  });
  return form;
}

function nurturePage() {
  return collectionPage({
    title: "Nurture sequences",
    who: "Nurture sequences",
    hint: "Leads below the sales threshold join the first active sequence whose conditions match.",
    collection: "/nurture-sequences",
    newTitle: "New nurture sequence",
    form: sequenceForm,
    page: nurturePage,
  });
}

/* ------------------------------------------------------------------ Analytics */
function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

async function analyticsPage() {
  const main = setPage("Analytics");
  if (!isManager()) {
    main.append(h("p", { text: "Analytics are for managers." }));
    return;
  }
  const today = new Date();
  const from = new Date(today.getTime() - 29 * 86400000);
  const form = h("form", { class: "filters", "aria-label": "Date range" },
    field("From", h("input", { type: "date", name: "from", value: isoDay(from) })),
    field("To", h("input", { type: "date", name: "to", value: isoDay(today) })),
    h("div", {}, h("button", { type: "submit" }, "Show")));
  const charts = h("div", {});
  main.append(form, charts);
  const show = async () => {
    showFieldErrors(form, null);
    const data = new FormData(form);
    const query = { from: data.get("from"), to: data.get("to") };
    charts.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
    try {
      const [funnel, sources, speed] = await Promise.all([
        api("GET", "/analytics/funnel", { query }),
        api("GET", "/analytics/sources", { query }),
        api("GET", "/analytics/speed-to-lead", { query }),
      ]);
      charts.replaceChildren(
        funnelChart(funnel.data), sourcesChart(sources.data), speedChart(speed.data));
    } catch (error) {
      if (error.kind === "http" && error.status < 500 && error.body.fields) {
        charts.replaceChildren();
        showFieldErrors(form, error);
      } else {
        charts.replaceChildren(errorBox(error, show));
      }
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); show(); });
  await show();
}

function barChart(id, title, summary, bars, unit) {
  const max = Math.max(1, ...bars.map(([, value]) => value));
  return h("section", { "aria-labelledby": id },
    h("h2", { id, text: title }),
    summary ? h("p", { text: summary }) : null,
    h("ul", { class: "chart", "aria-label": title }, bars.map(([label, value]) => h("li", {},
      h("span", { text: label }),
      h("span", { class: "bar", style: null, "aria-hidden": "true", "data-width": String(Math.round((value / max) * 100)) }),
      h("span", { class: "value", text: `${value}${unit || ""}` })))));
}

function sizeBars(root) {
  for (const bar of root.querySelectorAll(".bar[data-width]")) bar.style.width = `${bar.dataset.width}%`;
}

function funnelChart(data) {
  const total = data.total;
  const order = ["new", "contacted", "qualified", "unqualified", "converted"];
  const bars = order.map((status) => [status, total.by_status[status] || 0]);
  const chart = barChart("funnel-title", "Funnel",
    `${total.leads} lead${total.leads === 1 ? "" : "s"} captured; ${Math.round(total.qualification_rate * 100)}% qualified, ${Math.round(total.conversion_rate * 100)}% converted.`,
    bars);
  sizeBars(chart);
  return chart;
}

function sourcesChart(data) {
  const chart = barChart("sources-title", "Leads by source", null, data.sources.map((s) => [s.source, s.leads]));
  sizeBars(chart);
  return chart;
}

function minutes(seconds) {
  return seconds === null || seconds === undefined ? "—" : `${Math.round(seconds / 60)} min`;
}

function speedChart(data) {
  const o = data.overall;
  const bars = data.reps.map((rep) => [userName(rep.rep === "unassigned" ? null : rep.rep), Math.round((rep.median_seconds || 0) / 60)]);
  const chart = barChart("speed-title", "Speed to lead (median minutes per rep)",
    `${o.contacted} contacted; median ${minutes(o.median_seconds)}, 90th percentile ${minutes(o.p90_seconds)}.`, bars, " min");
  sizeBars(chart);
  return chart;
}

/* ------------------------------------------------------------------ start */
async function start() {
  document.getElementById("sign-out").addEventListener("click", signOut);
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    config = await response.json();
  } catch {
    setPage("The console could not start", h("p", { text: "Its settings could not be read; reload the page." }));
    return;
  }
  const params = new URLSearchParams(window.location.search);
  if (params.has("code")) {
    if (!(await finishSignIn(params))) return;
  } else {
    const stored = JSON.parse(STORE.getItem("lf.session") || "null");
    if (stored && stored.refreshToken) {
      session = stored;
      scheduleRefresh();
    }
  }
  if (params.has("error")) {
    window.history.replaceState(null, "", window.location.pathname + window.location.hash);
    showSignIn(`Sign-in did not complete (${params.get("error")}).`);
    return;
  }
  window.addEventListener("hashchange", () => { route(); });
  await route();
}

start();
