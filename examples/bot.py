"""A raid bot built on raidclient: logs in, joins a raid, strikes with its best team
whenever its cooldown allows, and prints the raid's announcements.

    python examples/bot.py --url ws://127.0.0.1:8765/ws --token TOKEN [--raid ID]

``make run`` prints tokens for demo players. The bot stops when the raid is over, when
every character rests for the rest of the raid, after ``--strikes`` strikes, or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import raidclient


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    parser.add_argument("--token", required=True, help="a player token")
    parser.add_argument("--raid", help="raid id (default: the first active raid)")
    parser.add_argument("--action", choices=("fight", "analyze"), default="fight")
    parser.add_argument("--strikes", type=int, help="stop after this many strikes")
    return parser.parse_args()


async def announce(events: raidclient.Subscription) -> None:
    """Print announcements as they come; say so when events were missed."""
    async for item in events:
        if isinstance(item, raidclient.AnnouncementEvent):
            print(f"  >> {item.text}", flush=True)
        elif isinstance(item, raidclient.Resync):
            print(f"  (reconnected: boss at {item.hub.raid.current_hp:,} hp)", flush=True)


async def next_rested(client: raidclient.RaidClient, raid_id: str, offset: float) -> bool:
    """Wait until a character is rested again; False if all rest for the whole raid."""
    hub = await client.hub(raid_id)
    times = [t for t in hub.me.exhausted_characters.values() if isinstance(t, float | int)]
    if not times:
        return False
    await asyncio.sleep(max(0.0, min(times) - (time.time() + offset)) + 0.01)
    return True


async def play(args: argparse.Namespace) -> None:
    async with await raidclient.connect(args.url, args.token) as client:
        assert client.hello is not None
        offset = client.hello.server_time - time.time()  # server clock - ours
        raid_id = args.raid or next(
            (r.raid_id for r in client.hello.raids if r.status == "active"), None
        )
        if raid_id is None:
            print("no active raid to join", file=sys.stderr)
            return
        hub = await client.hub(raid_id)
        print(f"{client.user_id} joins {hub.raid.name} ({hub.raid.current_hp:,} hp left)")
        async with client.subscribe(raid_id) as events:
            announcer = asyncio.create_task(announce(events))
            strikes = 0
            while args.strikes is None or strikes < args.strikes:
                team = (await client.team_options(raid_id)).best_team()
                if not team:
                    if await next_rested(client, raid_id, offset):
                        continue
                    print("every character rests until the raid ends")
                    break
                try:
                    report = await client.strike(raid_id, args.action, team)
                except raidclient.OnCooldown as exc:
                    await asyncio.sleep(exc.retry_after or 1.0)
                    continue
                except raidclient.RaidNotActive as exc:
                    print(f"the raid is over: {exc.message}")
                    break
                strikes += 1
                print(
                    f"strike {report.strike_count} with {len(report.team)}: "
                    f"{report.damage:,} damage, {report.analysis_points:,} analysis, "
                    f"boss at {report.boss_hp:,} hp"
                )
                if report.victory:
                    print("victory!")
                    break
                await asyncio.sleep(max(0.0, report.cooldown_until - (time.time() + offset)))
            await asyncio.sleep(0.5)  # let the last announcements arrive
            announcer.cancel()


def main() -> int:
    args = parse_args()
    try:
        asyncio.run(play(args))
    except KeyboardInterrupt:
        return 0
    except raidclient.RaidClientError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
