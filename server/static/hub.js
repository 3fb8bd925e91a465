// The raid hub: boss, hp and analysis bars, tags, curses, my standing and the leaderboards.

import { h, replace } from "./dom.js";
import { curseEffect, duration, number } from "./format.js";

export function timeLeft(meta, now) {
  if (!meta) return "";
  if (meta.status === "scheduled") return `starts in ${duration(meta.event_start - now)}`;
  if (meta.status === "active") return `${duration(meta.event_end - now)} left`;
  return "";
}

const chips = (items, cls, empty) =>
  items.length ? h("ul", { class: "chips" }, items.map((t) => h("li", { class: `chip ${cls}` }, t))) : h("p", { class: "muted" }, empty);

function bar({ id, label, now, max, cls, text }) {
  const pct = max > 0 ? Math.min(100, (100 * now) / max) : 0;
  const fill = h("div", { class: `fill ${cls}` });
  fill.style.width = `${pct}%`;
  return h("div", { class: "bar-block" },
    h("div", { class: "bar-label" }, h("span", { id: `${id}-label` }, label), h("span", { id: `${id}-text` }, text)),
    h("div", {
      id, role: "progressbar", class: "bar", "aria-labelledby": `${id}-label`,
      "aria-valuemin": 0, "aria-valuemax": max, "aria-valuenow": now, "aria-valuetext": text,
    }, fill));
}

function analysisBar(raid) {
  const thresholds = raid.analysis_thresholds;
  const next = raid.next_analysis_threshold;
  const max = next ?? Math.max(raid.analysis_points, thresholds.at(-1) ?? 0, 1);
  const passed = `${raid.analysis_breakthroughs} of ${thresholds.length} breakthroughs`;
  const text = next === null
    ? `${number(raid.analysis_points)} points, all ${thresholds.length} breakthroughs reached`
    : `${number(raid.analysis_points)} / ${number(next)} points to the next breakthrough (${passed})`;
  return bar({ id: "analysis-bar", label: "Analysis", now: Math.min(raid.analysis_points, max), max, cls: "analysis", text });
}

function leaderboard(title, rows, me, myRank, myValue) {
  const mine = rows.some((r) => r.user_id === me);
  return h("table", { class: "board" },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, "Player"), h("th", { scope: "col", class: "num" }, "Total"))),
    h("tbody", {},
      rows.map((r, i) => h("tr", { class: r.user_id === me ? "me" : null },
        h("td", {}, i + 1), h("td", {}, r.user_id === me ? `${r.user_id} (you)` : r.user_id), h("td", { class: "num" }, number(r.value)))),
      !mine && myRank !== null
        ? h("tr", { class: "me" }, h("td", {}, myRank), h("td", {}, `${me} (you)`), h("td", { class: "num" }, number(myValue)))
        : null,
      rows.length ? null : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No strikes yet"))));
}

export function renderHub(el, { hub, meta, now, user }) {
  const { raid, me, leaderboard: boards } = hub;
  const left = timeLeft(meta, now);
  replace(el,
    h("h2", { id: "hub-title" }, raid.name),
    h("p", { class: "status-line" },
      h("span", { class: `badge ${raid.status}` }, raid.status), " ",
      h("span", { id: "raid-time-left" }, left), " · ", `${number(raid.strike_count)} strike${raid.strike_count === 1 ? "" : "s"}`),
    bar({ id: "hp-bar", label: "Boss HP", now: raid.current_hp, max: raid.total_hp, cls: "hp",
      text: `${number(raid.current_hp)} / ${number(raid.total_hp)} hp` }),
    analysisBar(raid),
    h("div", { class: "facts" },
      h("div", {}, h("h3", {}, "Dominant stats"), chips(raid.dominant_stats, "stat", "none")),
      h("div", {}, h("h3", {}, "Weaknesses"), chips(raid.weaknesses, "weak", "none known yet")),
      h("div", {}, h("h3", {}, "Resistances"), chips(raid.resistances, "resist", "none"))),
    h("h3", {}, `Active curses (${raid.active_curses.length} of at most ${raid.curse_limit})`),
    raid.active_curses.length
      ? h("ul", { class: "curses" }, raid.active_curses.map((c) =>
          h("li", {}, h("strong", {}, c.name), `: ${curseEffect(c.kind, c.params)}`)))
      : h("p", { class: "muted" }, "No curses."),
    h("h3", {}, "You"),
    h("dl", { class: "me-stats" },
      h("dt", {}, "Damage"), h("dd", { id: "my-damage" }, number(me.personal_damage), me.rank_damage ? ` (rank ${me.rank_damage})` : ""),
      h("dt", {}, "Analysis"), h("dd", { id: "my-analysis" }, number(me.personal_analysis), me.rank_analysis ? ` (rank ${me.rank_analysis})` : ""),
      h("dt", {}, "Cooldown"), h("dd", { id: "my-cooldown" }, cooldownText(me.cooldown_until, now))),
    h("div", { class: "boards" },
      leaderboard("Damage leaderboard", boards.damage, user, me.rank_damage, me.personal_damage),
      leaderboard("Analysis leaderboard", boards.analysis, user, me.rank_analysis, me.personal_analysis)));
}

export function cooldownText(until, now) {
  return until && until > now ? `ready in ${duration(until - now)}` : "ready";
}
