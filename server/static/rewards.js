// Rewards: claimable ones with a Claim button each, claimed ones, and the last claim's outcome.

import { h, replace } from "./dom.js";
import { bundleText, clock, rewardLabel } from "./format.js";

export function renderRewards(el, { rewards, message, busyKey, onClaim }) {
  const focusedKey = document.activeElement?.dataset?.key;
  replace(el,
    h("h2", { id: "rewards-title" }, "Rewards"),
    h("p", { id: "claim-message", class: message?.error ? "error" : "ok", role: "status", tabindex: -1 }, message?.text ?? ""),
    h("h3", {}, "Ready to claim"),
    rewards.claimable.length
      ? h("ul", { class: "reward-list" }, rewards.claimable.map((r) => {
          const label = `claim-${r.key}`;
          return h("li", {},
            h("span", { id: label }, h("strong", {}, rewardLabel(r.key)), `: ${bundleText(r.bundle)}`),
            h("button", { type: "button", "data-key": r.key, "aria-describedby": label, disabled: busyKey === r.key,
              onclick: () => onClaim(r.key) }, "Claim"));
        }))
      : h("p", { class: "muted" }, "Nothing to claim right now."),
    h("h3", {}, "Claimed"),
    rewards.claimed.length
      ? h("ul", { class: "reward-list claimed" }, rewards.claimed.map((r) =>
          h("li", {}, h("strong", {}, rewardLabel(r.key)), `: ${bundleText(r.bundle)} `, h("span", { class: "muted" }, `at ${clock(r.at)}`))))
      : h("p", { class: "muted" }, "Nothing yet."));
  if (focusedKey) {
    const again = el.querySelector(`button[data-key="${CSS.escape(focusedKey)}"]`);
    (again ?? el.querySelector("#claim-message")).focus();
  }
}
