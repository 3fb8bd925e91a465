// The browser client: login, one raid at a time (hub, team, report, rewards, announcements) and
// the operator's view. State lives here; the other modules only draw it.

import { Connection, ConnectionError } from "./connection.js";
import { $, h, replace } from "./dom.js";
import { duration, errorText } from "./format.js";
import { cooldownText, renderHub, timeLeft } from "./hub.js";
import { renderOperator } from "./operator.js";
import { renderReport } from "./report.js";
import { renderRewards } from "./rewards.js";
import { renderTeam } from "./team.js";

const FEED_MAX = 50; // announcements kept on screen
const HUB_REFRESH_MS = 3000; // at most one hub reload per this interval while hp events arrive
const RESTING = new Set(["defeated", "expired", "ended"]);

const s = {
  conn: null,
  user: null,
  role: null,
  clockOffset: 0, // server time minus local time, seconds
  raids: [], // [{raid_id, name, status}] from hello
  meta: new Map(), // raid_id -> {event_start, event_end, status, boss_id} from raid.hub
  raidId: null,
  seq: null, // the latest event seq seen for raidId
  hub: null,
  options: null,
  rewards: null,
  report: null,
  team: new Set(),
  names: new Map(), // character_id -> name
  curses: new Map(), // curse id -> {name, kind, params}, as seen in hubs
  feed: [],
  busy: false,
  strikeError: null,
  pendingStrike: null, // a strike sent but not answered when the connection dropped
  claimMessage: null,
  claiming: null,
  op: { pending: null, message: null, confirmEnd: false },
  refreshTimer: null,
  loading: 0, // reloads in flight
  lastHubLoad: 0,
};

const now = () => Date.now() / 1000 + s.clockOffset;

// ---- login -----------------------------------------------------------------------------------

function login(token) {
  if (s.conn) s.conn.stop();
  $("login-error").textContent = "";
  sessionStorage.setItem("raid-token", token);
  s.conn = new Connection({ token, onHello, onEvent, onState: showConnection, onRejected });
  s.conn.start();
}

function logout() {
  if (s.conn) s.conn.stop();
  s.conn = null;
  sessionStorage.removeItem("raid-token");
  history.replaceState(null, "", location.pathname);
  Object.assign(s, { raidId: null, hub: null, options: null, rewards: null, report: null, feed: [] });
  $("game").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("conn").textContent = "Not connected";
  $("token").focus();
}

function onRejected(reply) {
  logout();
  $("login-error").textContent = errorText(reply);
}

function showConnection(info) {
  const text = {
    connecting: info.attempt ? "Reconnecting…" : "Connecting…",
    connected: `Connected as ${info.user}${info.role === "admin" ? " (operator)" : ""}`,
    waiting: `Connection lost; reconnecting in ${duration((info.delay ?? 0) / 1000)}…`,
    stopped: "Not connected",
  }[info.state];
  $("conn").textContent = text;
  $("conn").dataset.state = info.state;
  drawTeam(); // Fight and Analyze wait for the connection
}

async function loadDemoAccounts() {
  let accounts;
  try {
    const response = await fetch("/demo/tokens", { cache: "no-store" });
    if (!response.ok) return; // not a demo server
    accounts = (await response.json()).accounts;
  } catch {
    return;
  }
  const select = $("demo-account");
  replace(select, accounts.map((a) =>
    h("option", { value: a.token }, a.role === "admin" ? "Operator (admin)" : a.user_id)));
  $("demo-form").hidden = false;
}

// ---- session -----------------------------------------------------------------------------------

async function onHello(hello, reconnected) {
  s.user = hello.user_id;
  s.role = hello.role;
  s.clockOffset = hello.server_time - Date.now() / 1000;
  s.raids = hello.raids;
  $("login").hidden = true;
  $("game").hidden = false;
  $("logout").hidden = false;
  $("operator").hidden = s.role !== "admin";
  loadMeta();
  const known = s.raids.some((r) => r.raid_id === s.raidId);
  if (reconnected && known) {
    await resume();
  } else {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("raid");
    const pick = s.raids.find((r) => r.raid_id === wanted) ?? s.raids.find((r) => r.status === "active") ?? s.raids[0];
    await selectRaid(pick?.raid_id ?? null);
    if (!reconnected && !document.activeElement?.closest("#game")) $("main").focus();
  }
  if (s.role === "admin") renderOperatorView();
}

async function loadMeta() {
  const open = s.raids.filter((r) => !RESTING.has(r.status)).slice(0, 30);
  await Promise.all(open.map(async (r) => {
    try {
      const reply = await s.conn.ok({ op: "raid.hub", raid_id: r.raid_id });
      rememberHub(reply);
    } catch {
      /* the list shows the raid without its time */
    }
  }));
  renderRaidList();
}

function rememberHub(hub) {
  const raid = hub.raid;
  s.meta.set(raid.raid_id, { event_start: raid.event_start, event_end: raid.event_end, status: raid.status, boss_id: raid.boss_id });
  for (const c of raid.active_curses) s.curses.set(c.id, c);
  const listed = s.raids.find((r) => r.raid_id === raid.raid_id);
  if (listed) Object.assign(listed, { status: raid.status, name: raid.name });
}

async function selectRaid(raidId) {
  const previous = s.raidId;
  if (previous && previous !== raidId && s.conn?.ready) {
    s.conn.send({ op: "raid.unsubscribe", raid_id: previous }).catch(() => {});
  }
  Object.assign(s, { raidId, seq: null, hub: null, options: null, rewards: null, report: null, feed: [], strikeError: null, claimMessage: null });
  s.team = new Set();
  s.op.confirmEnd = false;
  renderRaidList();
  $("raid").hidden = !raidId;
  $("no-raid").hidden = Boolean(raidId);
  $("report").hidden = true;
  renderFeed();
  if (!raidId) return;
  history.replaceState(null, "", `#raid=${encodeURIComponent(raidId)}`);
  try {
    const sub = await s.conn.ok({ op: "raid.subscribe", raid_id: raidId });
    s.seq = sub.seq;
    await refresh();
  } catch (error) {
    showRaidError(error);
  }
}

// After a reconnect: pick the subscription up where it stopped, or reload on resync.
async function resume() {
  try {
    const sub = await s.conn.ok({ op: "raid.subscribe", raid_id: s.raidId, since_seq: s.seq ?? 0 });
    if (sub.resync) {
      s.seq = sub.seq;
      addFeed("Reconnected; the raid was reloaded.");
    }
    await refresh();
    if (s.pendingStrike) await strike(s.pendingStrike.action, s.pendingStrike);
  } catch (error) {
    showRaidError(error);
  }
}

function showRaidError(error) {
  if (error instanceof ConnectionError && error.code === "disconnected") return; // resume retries
  replace($("hub"), h("h2", { id: "hub-title" }, "Raid"), h("p", { class: "error", role: "alert" }, errorText(error)));
}

// body[data-loading] while a reload is due or under way: tests wait for the page to settle.
function markLoading(delta) {
  s.loading += delta;
  document.body.toggleAttribute("data-loading", s.loading > 0 || s.refreshTimer !== null);
}

async function refresh() {
  const raidId = s.raidId;
  markLoading(1);
  let hub, options, rewards;
  try {
    [hub, options, rewards] = await Promise.all([
      s.conn.ok({ op: "raid.hub", raid_id: raidId }),
      s.conn.ok({ op: "team.options", raid_id: raidId }),
      s.conn.ok({ op: "rewards.list", raid_id: raidId }),
    ]);
  } finally {
    markLoading(-1);
  }
  if (raidId !== s.raidId) return;
  s.lastHubLoad = Date.now();
  s.hub = hub;
  s.options = options;
  s.rewards = rewards;
  rememberHub(hub);
  for (const c of options.characters) s.names.set(c.character_id, c.name);
  for (const id of [...s.team]) {
    const row = options.characters.find((c) => c.character_id === id);
    if (!row || row.exhausted) s.team.delete(id);
  }
  while (s.team.size > options.max_team_size) s.team.delete([...s.team].at(-1));
  renderAll();
}

function scheduleRefresh(delayMs) {
  if (s.refreshTimer) return;
  s.refreshTimer = setTimeout(async () => {
    s.refreshTimer = null;
    markLoading(0);
    if (!s.conn?.ready || !s.raidId) return;
    try {
      await refresh();
    } catch (error) {
      showRaidError(error);
    }
  }, delayMs);
  markLoading(0);
}

// ---- events ----------------------------------------------------------------------------------

function onEvent(event) {
  if (event.raid_id !== s.raidId) return;
  s.seq = event.seq;
  if (!s.hub) return;
  const raid = s.hub.raid;
  switch (event.type) {
    case "hp":
      raid.current_hp = event.current_hp;
      raid.total_hp = event.total_hp;
      raid.strike_count = event.strike_count;
      raid.analysis_points = event.analysis_points;
      drawHub();
      scheduleRefresh(Math.max(0, HUB_REFRESH_MS - (Date.now() - s.lastHubLoad)));
      break;
    case "announcement":
      addFeed(event.text);
      break;
    case "raid_ended":
      raid.status = event.status;
      rememberHub(s.hub);
      renderAll();
      scheduleRefresh(200);
      break;
    case "breakthrough":
    case "retaliation":
    case "victory":
      scheduleRefresh(200); // weaknesses, curses, the team cap or the status changed
      break;
    default:
      break;
  }
}

function addFeed(text) {
  s.feed.unshift({ text, at: new Date() });
  s.feed.length = Math.min(s.feed.length, FEED_MAX);
  renderFeed();
}

// ---- actions ---------------------------------------------------------------------------------

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function strike(action, retry = null) {
  const request = retry ?? { op: "strike", raid_id: s.raidId, action, team: [...s.team], strike_id: randomId() };
  s.busy = true;
  s.strikeError = null;
  s.pendingStrike = request;
  drawTeam();
  let reply;
  try {
    reply = await s.conn.send(request);
  } catch (error) {
    s.busy = false;
    if (error.code !== "disconnected") s.pendingStrike = null;
    s.strikeError = error.code === "disconnected"
      ? "The connection dropped; the strike will be sent again (safely) when it is back."
      : errorText(error);
    drawTeam();
    return;
  }
  s.busy = false;
  s.pendingStrike = null;
  if (request.raid_id !== s.raidId) return;
  if (reply.op === "error") {
    s.strikeError = errorText(reply, s.names);
    drawTeam();
    scheduleRefresh(0);
    return;
  }
  s.report = reply;
  s.team = new Set();
  s.hub.raid.current_hp = Math.min(s.hub.raid.current_hp, reply.boss_hp);
  s.hub.me.cooldown_until = reply.cooldown_until;
  renderReportView();
  $("report").hidden = false;
  $("report").focus();
  try {
    await refresh();
  } catch (error) {
    showRaidError(error);
  }
}

async function claim(key) {
  s.claiming = key;
  drawRewards();
  let reply;
  try {
    reply = await s.conn.send({ op: "rewards.claim", raid_id: s.raidId, key });
  } catch (error) {
    reply = { op: "error", code: error.code };
  }
  s.claiming = null;
  s.claimMessage = reply.op === "error"
    ? { error: true, text: errorText(reply) }
    : { error: false, text: `Claimed: ${labelOf(reply)}.` };
  try {
    s.rewards = await s.conn.ok({ op: "rewards.list", raid_id: s.raidId });
  } catch {
    /* keep the old list; the message says what happened */
  }
  drawRewards();
}

function labelOf(reply) {
  const bundle = Object.entries(reply.bundle).map(([k, v]) => `${v} ${k.replaceAll("_", " ")}`).join(", ");
  return `${reply.key} (${bundle || "nothing"})`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// ---- operator --------------------------------------------------------------------------------

async function opCall(request, describe) {
  try {
    const reply = await s.conn.ok(request);
    s.op.message = { error: false, text: describe(reply) };
    return reply;
  } catch (error) {
    s.op.message = { error: true, text: errorText(error) };
    return null;
  } finally {
    renderOperatorView();
  }
}

const operatorActions = {
  async create(fields) {
    const reply = await opCall({ op: "admin.raid.create", ...fields }, (r) => `Raid ${r.raid_id} created.`);
    if (!reply) return false;
    s.raids.push({ raid_id: reply.raid_id, name: fields.boss, status: "active" });
    await selectRaid(reply.raid_id);
    await loadMeta();
    return true;
  },
  async snapshot() {
    await opCall({ op: "admin.snapshot", raid_id: s.raidId },
      (r) => `Snapshot ${r.snapshot_id} taken at strike ${r.seq}.`);
  },
  endAsked() {
    s.op.confirmEnd = true;
    renderOperatorView();
  },
  endCancelled() {
    s.op.confirmEnd = false;
    renderOperatorView();
  },
  async endConfirmed() {
    s.op.confirmEnd = false;
    await opCall({ op: "admin.raid.end", raid_id: s.raidId }, (r) => `The raid is now ${r.status}.`);
    scheduleRefresh(0);
  },
  async loadPending() {
    const reply = await opCall({ op: "admin.rewards.pending", limit: 100 }, (r) => `${plural(r.rewards.length, "pending reward")}.`);
    if (reply) s.op.pending = reply.rewards;
    renderOperatorView();
  },
  async ackPending() {
    const ids = (s.op.pending ?? []).map((r) => r.id);
    const reply = await opCall({ op: "admin.rewards.ack", ids }, (r) => `${plural(r.acked, "reward")} acknowledged.`);
    if (reply) s.op.pending = [];
    renderOperatorView();
  },
};

// ---- drawing ---------------------------------------------------------------------------------

function renderAll() {
  renderRaidList();
  drawHub();
  drawTeam();
  drawRewards();
  renderReportView(); // a retaliation's curse is named once the hub has been reloaded
  if (s.role === "admin") renderOperatorView();
}

function renderRaidList() {
  const t = now();
  const list = $("raid-list");
  const focused = document.activeElement?.dataset?.raid;
  const order = { active: 0, scheduled: 1 };
  const raids = [...s.raids].sort((a, b) => (order[a.status] ?? 2) - (order[b.status] ?? 2));
  replace(list, raids.length ? raids.map((r) => {
    const meta = s.meta.get(r.raid_id);
    const status = meta?.status ?? r.status;
    return h("li", {},
      h("button", { type: "button", class: "raid-pick", "data-raid": r.raid_id,
        "aria-current": r.raid_id === s.raidId ? "true" : null,
        onclick: () => selectRaid(r.raid_id) },
        h("span", { class: "raid-name" }, r.name),
        h("span", { class: `badge ${status}` }, status),
        h("span", { class: "muted time-left", "data-raid-time": r.raid_id }, timeLeft(meta, t))));
  }) : h("li", { class: "muted" }, "There are no raids yet."));
  if (focused) list.querySelector(`[data-raid="${CSS.escape(focused)}"]`)?.focus();
}

function drawHub() {
  if (s.hub) renderHub($("hub"), { hub: s.hub, meta: s.meta.get(s.raidId), now: now(), user: s.user });
}

function drawTeam() {
  if (!s.hub || !s.options) return;
  renderTeam($("team"), {
    options: s.options, hub: s.hub, selected: s.team, now: now(), busy: s.busy, error: s.strikeError,
    offline: !s.conn?.ready,
    onToggle: (id, on) => {
      if (on) s.team.add(id);
      else s.team.delete(id);
      drawTeam();
    },
    onStrike: (action) => strike(action),
  });
}

function drawRewards() {
  if (!s.rewards) return;
  renderRewards($("rewards"), { rewards: s.rewards, message: s.claimMessage, busyKey: s.claiming, onClaim: claim });
}

function renderReportView() {
  if (s.report) renderReport($("report"), { report: s.report, names: s.names, curses: s.curses });
}

function renderFeed() {
  replace($("feed"), s.feed.length
    ? s.feed.map((item) => h("li", {}, h("time", { datetime: item.at.toISOString() },
        item.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })), " ", item.text))
    : h("li", { class: "muted" }, "News from the raid appears here as it happens."));
}

function renderOperatorView() {
  const bosses = [...new Set([...s.meta.values()].map((m) => m.boss_id))].sort();
  renderOperator($("operator"), {
    raid: s.hub?.raid ?? null, bosses, pending: s.op.pending, message: s.op.message,
    confirmEnd: s.op.confirmEnd, actions: operatorActions,
  });
}

// Once a second: countdowns, and the Fight button when a cooldown ends.
function tick() {
  const t = now();
  for (const el of document.querySelectorAll("[data-raid-time]")) {
    el.textContent = timeLeft(s.meta.get(el.dataset.raidTime), t);
  }
  if (!s.hub) return;
  const left = $("raid-time-left");
  if (left) left.textContent = timeLeft(s.meta.get(s.raidId), t);
  const cooldown = $("my-cooldown");
  if (cooldown) cooldown.textContent = cooldownText(s.hub.me.cooldown_until, t);
  const until = s.hub.me.cooldown_until;
  if (until && until <= t && until > t - 1.5) drawTeam();
  // Characters resting for a while come back: ask the server once their time has passed.
  const rested = Object.entries(s.hub.me.exhausted_characters).some(([id, end]) =>
    typeof end === "number" && end <= t && s.options?.characters.some((c) => c.character_id === id && c.exhausted));
  if (rested && Date.now() - s.lastHubLoad > 2000) scheduleRefresh(0);
}

// ---- start -----------------------------------------------------------------------------------

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  login($("token").value.trim());
});
$("demo-form").addEventListener("submit", (e) => {
  e.preventDefault();
  login($("demo-account").value);
});
$("logout").addEventListener("click", logout);
setInterval(tick, 1000);

const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
const saved = fromHash ?? sessionStorage.getItem("raid-token");
if (fromHash) history.replaceState(null, "", location.pathname); // keep the token out of history
renderFeed();
loadDemoAccounts();
if (saved) login(saved);
