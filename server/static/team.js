// Team selection: the roster from team.options, the live exact preview, Fight and Analyze.

import { h, replace } from "./dom.js";
import { clock, number } from "./format.js";
import { previewTeam } from "./preview.js";

const stars = (n) => "★".repeat(n) + "☆".repeat(5 - n);

function restText(character, exhaustedUntil, now) {
  if (!character.exhausted) return null;
  const until = exhaustedUntil[character.character_id];
  if (until === "event" || until === undefined) return "Resting for the rest of this raid";
  return until > now ? `Resting until ${clock(until)}` : "Resting";
}

function characterRow(c, { selected, full, hub, now, onToggle }) {
  const id = `pick-${c.character_id}`;
  const desc = `${id}-desc`;
  const rest = restText(c, hub.me.exhausted_characters, now);
  const dominant = new Set(hub.raid.dominant_stats);
  const stats = Object.entries(c.stats).filter(([, v]) => v > 0);
  const checked = selected.has(c.character_id);
  return h("li", { class: `char${c.exhausted ? " resting" : ""}${checked ? " picked" : ""}` },
    h("input", {
      type: "checkbox", id, checked, disabled: c.exhausted || (full && !checked),
      "aria-describedby": desc, "data-character": c.character_id,
      onchange: (e) => onToggle(c.character_id, e.target.checked),
    }),
    h("label", { for: id, class: "char-name" }, c.name),
    h("div", { id: desc, class: "char-info" },
      h("span", { class: "rarity", "aria-label": `rarity ${c.rarity} of 5` }, stars(c.rarity)), " ",
      h("span", { class: "contrib" }, `contributes ${number(c.contribution)}`),
      c.weak ? h("span", { class: "chip weak" }, "hits a weakness") : null,
      c.resisted ? h("span", { class: "chip resist" }, "resisted") : null,
      h("ul", { class: "chips" }, c.tags.map((t) =>
        h("li", { class: `chip${hub.raid.weaknesses.includes(t) ? " weak" : ""}${hub.raid.resistances.includes(t) ? " resist" : ""}` }, t))),
      h("span", { class: "stats" }, stats.map(([s, v]) =>
        h("span", { class: dominant.has(s) ? "stat dominant" : "stat" }, `${s} ${v}`))),
      rest ? h("span", { class: "rest" }, rest) : null));
}

export function renderTeam(el, { options, hub, selected, now, busy, offline, error, onToggle, onStrike }) {
  const focusedId = document.activeElement?.id;
  const cap = options.max_team_size;
  const full = selected.size >= cap;
  const active = hub.raid.status === "active";
  const capped = hub.raid.active_curses.some((c) => c.kind === "team_cap" && c.params.max <= cap);
  const sorted = [...options.characters].sort((a, b) =>
    (a.exhausted - b.exhausted) || (b.contribution - a.contribution) || a.name.localeCompare(b.name));
  const available = sorted.filter((c) => !c.exhausted).length;
  const pv = selected.size ? previewTeam(options, [...selected], hub.raid.current_hp) : null;
  const cooling = hub.me.cooldown_until && hub.me.cooldown_until > now;
  const disabled = !pv || busy || offline || !active || cooling;
  replace(el,
    h("h2", { id: "team-title" }, "Team"),
    h("p", { id: "team-cap" }, `Team cap: ${cap}`, capped ? " (lowered by a curse)" : "",
      ` · ${available} of ${options.characters.length} characters ready`),
    options.characters.length === 0 ? h("p", { class: "muted" }, "Your roster is empty: an operator grants characters.") : null,
    h("ul", { class: "roster" }, sorted.map((c) => characterRow(c, { selected, full, hub, now, onToggle }))),
    h("div", { class: "preview", id: "preview", "aria-live": "polite" },
      pv
        ? [h("p", {}, `Team of ${selected.size}: base ${number(pv.base)} × ${number(pv.multiplier)} = score `, h("strong", {}, pv.score.toString())),
           h("p", {}, "Fight: ", h("strong", { id: "preview-damage" }, pv.damage.toString()), " damage · Analyze: ",
             h("strong", { id: "preview-analysis" }, pv.analysis.toString()), " analysis points")]
        : h("p", { class: "muted" }, "Choose characters to see the score they would make.")),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "fight", class: "primary", disabled, onclick: () => onStrike("fight") }, "Fight"),
      h("button", { type: "button", id: "analyze", disabled, onclick: () => onStrike("analyze") }, "Analyze")),
    h("p", { id: "strike-hint", class: "muted" },
      offline ? "Waiting for the connection…" : !active ? "This raid is not running." : cooling ? "Your team is recovering (see your cooldown)." : busy ? "Striking…" : ""),
    h("p", { id: "strike-error", class: "error", role: "alert" }, error ?? ""));
  if (focusedId) document.getElementById(focusedId)?.focus();
}
