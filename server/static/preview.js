// The team preview: the server's own integer arithmetic (raid/scoring.py) on the exact terms that
// team.options sends, in BigInt so no number is rounded.

export function previewTeam(options, team, currentHp) {
  const terms = options.scoring;
  const rows = new Map(options.characters.map((c) => [c.character_id, c]));
  let baseNum = 0n;
  let weak = 0;
  let resisted = 0;
  for (const id of team) {
    const row = rows.get(id);
    baseNum += BigInt(row.contribution_num);
    weak += row.weak ? 1 : 0;
    resisted += row.resisted ? 1 : 0;
  }
  const [p, q] = terms.multipliers[weak][resisted].map(BigInt);
  const baseDen = BigInt(terms.base_den);
  const score = (baseNum * p) / (baseDen * q);
  const outcome = (action) => {
    const [fNum, fDen] = terms.fortify[action].map(BigInt);
    return (score * fNum) / (fDen * BigInt(terms.divisors[action]));
  };
  const damage = outcome("fight");
  return {
    base: ratio(baseNum, baseDen),
    multiplier: ratio(p, q),
    score,
    damage: currentHp === undefined || damage < BigInt(currentHp) ? damage : BigInt(currentHp),
    analysis: outcome("analyze"),
  };
}

function ratio(num, den) {
  return Number(num) / Number(den);
}
