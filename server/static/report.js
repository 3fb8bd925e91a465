// The after-action report of the player's last strike (the strike.ok reply).

import { h, replace } from "./dom.js";
import { bundleText, clock, curseEffect, number, rewardLabel } from "./format.js";

function curseText(id, curses) {
  const curse = curses.get(id);
  return curse ? `${curse.name} (${curseEffect(curse.kind, curse.params)})` : id;
}

export function renderReport(el, { report, names, curses }) {
  const who = report.team.map((id) => names.get(id) ?? id).join(", ");
  const fight = report.action === "fight";
  replace(el,
    h("h2", { id: "report-title" }, "After-action report"),
    h("p", {}, `${fight ? "Fight" : "Analyze"} with ${who} — strike ${number(report.strike_count)} of the raid.`),
    h("p", { class: "equation" },
      `base ${number(report.base)} × multiplier ${number(report.multiplier)} = score `,
      h("strong", {}, number(report.score))),
    h("p", { class: "big", id: "report-outcome" },
      fight ? [h("strong", { id: "report-damage" }, number(report.damage)), " damage"]
            : [h("strong", { id: "report-analysis" }, number(report.analysis_points)), " analysis points"]),
    h("p", {}, fight ? `Boss hp now ${number(report.boss_hp)}.` : `Raid analysis now ${number(report.analysis_total)} points.`),
    report.breakthroughs.length
      ? h("ul", { class: "good" }, report.breakthroughs.map((b) =>
          h("li", {}, `Breakthrough ${b.index}! `, b.weakness ? `The boss is now weak to ${b.weakness}.` : "No new weakness was left to find.")))
      : null,
    report.retaliations.length
      ? h("ul", { class: "bad" }, report.retaliations.map((r) =>
          h("li", {}, `The boss retaliated with ${curseText(r.curse, curses)}`,
            r.replaced ? `, replacing ${curseText(r.replaced, curses)}.` : ".")))
      : null,
    report.victory ? h("p", { class: "victory" }, "Victory! You dealt the final blow.") : null,
    h("h3", {}, "Rewards granted"),
    h("ul", {}, report.rewards.map((r) => h("li", {}, `${rewardLabel(r.key)}: ${bundleText(r.bundle)}`))),
    h("p", {}, `Next strike from ${clock(report.cooldown_until)}. `,
      report.exhausted_until === null
        ? "This team rests for the rest of the raid."
        : `This team rests until ${clock(report.exhausted_until)}.`));
}
