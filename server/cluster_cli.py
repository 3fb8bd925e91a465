"""The multi-process commands: ``serve --workers N``, ``host`` and ``gateway`` (server/cli.py
parses them, server/commands.py dispatches here)."""

from __future__ import annotations

import argparse
import asyncio

from raid.config import Config
from server.app import event_loop_factory
from server.cluster import run_cluster
from server.errors import StartupError
from server.gateway_app import GatewayOptions, run_gateway
from server.host_app import HostOptions, run_host
from server.raid_link import DEFAULT_PREFIX


def _child_args(args: argparse.Namespace) -> list[str]:
    return [
        "--config",
        str(args.config),
        "--db",
        str(args.db),
        "--log-format",
        str(args.log_format),
        "--log-level",
        str(args.log_level),
    ]


def serve_cluster(args: argparse.Namespace, config: Config, host: str, port: int) -> int:
    if args.demo:
        raise StartupError("--demo runs in one process: drop --workers (or use --workers 1)")

    def listening() -> None:
        args.new_files.keep = True

    with asyncio.Runner() as runner:
        return runner.run(
            run_cluster(
                config, _child_args(args), host, port, args.workers, DEFAULT_PREFIX, listening
            )
        )


def host_command(args: argparse.Namespace, config: Config) -> int:
    options = HostOptions(
        db_path=args.db,
        nats_url=args.nats,
        prefix=args.subject_prefix,
        lease_ttl_s=args.lease_ttl,
        take_over=args.take_over,
    )
    args.new_files.keep = True  # the host's lease row makes the database worth keeping
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(run_host(config, options))


def gateway_command(args: argparse.Namespace, config: Config, secret: str) -> int:
    options = GatewayOptions(
        host=args.host or config.server.host,
        port=config.server.port if args.port is None else args.port,
        nats_url=args.nats,
        prefix=args.subject_prefix,
        secret=secret,
        reuse_port=args.reuse_port,
        request_timeout_s=args.request_timeout,
    )
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(run_gateway(config, options))
