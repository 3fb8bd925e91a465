// The operator's view (admin tokens): create and end raids, snapshots, the pending rewards feed.

import { h, nextId, replace } from "./dom.js";
import { bundleText, clock, rewardLabel } from "./format.js";

function field(label, input) {
  const id = nextId("op");
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

export function renderOperator(el, { raid, bosses, pending, message, confirmEnd, actions }) {
  // Redrawn when the raid changes: keep what the operator was typing, and the focus.
  const typed = new Map([...el.querySelectorAll("input[name]")].map((i) => [i.name, i.value]));
  const focusedName = el.contains(document.activeElement) ? document.activeElement.name : null;
  const boss = h("input", { name: "boss", required: true, list: "boss-ids", autocomplete: "off" });
  const raidId = h("input", { name: "raid_id", autocomplete: "off", placeholder: "automatic" });
  const end = h("input", { name: "end", type: "datetime-local" });
  const final = raid && raid.status !== "active" && raid.status !== "scheduled";
  replace(el,
    h("h2", { id: "operator-title" }, "Operator"),
    h("p", { id: "operator-message", class: message?.error ? "error" : "ok", role: "status" }, message?.text ?? ""),
    h("h3", {}, "Create a raid"),
    h("form", { class: "stack", onsubmit: async (e) => {
        e.preventDefault();
        const created = await actions.create({ boss: boss.value.trim(), raid_id: raidId.value.trim() || undefined,
          end: end.value ? new Date(end.value).toISOString() : undefined });
        if (created) for (const input of el.querySelectorAll("input[name]")) input.value = "";
      } },
      field("Boss template", boss),
      h("datalist", { id: "boss-ids" }, bosses.map((b) => h("option", { value: b }))),
      field("Raid id (optional)", raidId),
      field("Ends at (optional, your local time)", end),
      h("button", { type: "submit" }, "Create raid")),
    h("h3", {}, raid ? `This raid: ${raid.name}` : "No raid selected"),
    raid
      ? h("div", { class: "actions" },
          h("button", { type: "button", onclick: actions.snapshot }, "Take snapshot"),
          confirmEnd
            ? [h("span", {}, `End ${raid.raid_id} for everyone?`),
               h("button", { type: "button", class: "danger", onclick: actions.endConfirmed }, "Yes, end it"),
               h("button", { type: "button", onclick: actions.endCancelled }, "Cancel")]
            : h("button", { type: "button", class: "danger", disabled: final, onclick: actions.endAsked }, "End raid"))
      : null,
    h("h3", {}, "Rewards waiting for the game backend"),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: actions.loadPending }, "Refresh pending rewards"),
      h("button", { type: "button", disabled: !pending?.length, onclick: actions.ackPending }, "Acknowledge these")),
    pending === null
      ? h("p", { class: "muted" }, "Not loaded yet.")
      : pending.length
        ? h("div", { class: "scroll" }, h("table", { class: "board" },
            h("caption", {}, `${pending.length} pending (oldest first)`),
            h("thead", {}, h("tr", {}, ["Id", "Raid", "Player", "Reward", "Bundle", "At"].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, pending.map((r) => h("tr", {},
              h("td", {}, r.id), h("td", {}, r.raid_id), h("td", {}, r.user_id), h("td", {}, rewardLabel(r.key)),
              h("td", {}, bundleText(r.bundle)), h("td", {}, clock(r.at)))))))
        : h("p", { class: "muted" }, "No pending rewards."));
  for (const input of [boss, raidId, end]) input.value = typed.get(input.name) ?? "";
  if (focusedName) el.querySelector(`input[name="${focusedName}"]`)?.focus();
}
