// Human wording: error messages, curses, rewards, times. One place for every text the server's
// codes turn into.

const ERRORS = {
  bad_request: "The server could not read that request",
  unauthenticated: "That token was not accepted: it is malformed, expired or signed with another secret.",
  forbidden: "Only an operator may do that.",
  unknown_op: "The server does not know that operation (is the page older than the server?).",
  unknown_raid: "That raid does not exist (any more).",
  raid_not_active: "This raid is not running, so no strike can be made.",
  invalid_team: "That team is not allowed: pick between one character and the team cap, each once.",
  on_cooldown: "Your team is still recovering.",
  character_not_owned: "Some of those characters are not in your roster",
  character_exhausted: "Some of those characters are resting",
  already_claimed: "You have already claimed this reward.",
  not_eligible: "You cannot claim this reward (yet): you do not qualify, or the claim window is closed.",
  rate_limited: "Too many requests at once.",
  unavailable: "The server cannot do that right now; nothing was changed. Try again in a moment.",
  internal: "Something went wrong on the server; it has been logged. Try again.",
  disconnected: "The connection dropped before the server answered.",
  timeout: "The server did not answer in time.",
};

export function errorText(error, names = new Map()) {
  const base = ERRORS[error.code] ?? `The server refused: ${error.code}.`;
  const ids = error.character_ids ?? [];
  switch (error.code) {
    case "bad_request":
      return `${base}: ${error.message}.`;
    case "on_cooldown":
    case "rate_limited":
      return `${base} Try again in ${duration(error.retry_after)}.`;
    case "character_not_owned":
    case "character_exhausted":
      return `${base}: ${ids.map((id) => names.get(id) ?? id).join(", ")}.`;
    default:
      return base;
  }
}

export const KNOWN_ERROR_CODES = Object.keys(ERRORS);

const factor = (f) => `× ${f}`;

export function curseEffect(kind, params) {
  switch (kind) {
    case "stat_drain": return `${params.stat} counts ${factor(params.factor)} in contributions`;
    case "tag_suppression": return `${params.tag} characters contribute ${factor(params.factor)}`;
    case "dampen_weakness": return `weakness bonus ${factor(params.factor)}`;
    case "fortify":
      return `${params.action === "fight" ? "damage" : "analysis points"} ${factor(params.factor)}`;
    case "team_cap": return `teams of at most ${params.max}`;
    case "cooldown_surge": return `strike cooldown ${factor(params.factor)}`;
    default: return kind;
  }
}

export function rewardLabel(key) {
  const [kind, arg] = key.split(/:(.*)/s);
  switch (kind) {
    case "damage": return `Deal ${arg} damage`;
    case "analysis": return `Reach ${arg} analysis points`;
    case "breakthrough": return `Breakthrough ${arg}`;
    case "victory": return "Victory cache";
    case "strike": return "Strike reward";
    default: return key;
  }
}

export function bundleText(bundle) {
  const parts = Object.entries(bundle).map(([what, n]) => `${n} ${what.replaceAll("_", " ")}`);
  return parts.length ? parts.join(", ") : "nothing";
}

export function duration(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} days`;
}

export const clock = (unix) =>
  new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export const number = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 });
