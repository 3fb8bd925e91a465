"""Command-line arguments of ``serve --workers``, ``host`` and ``gateway`` (kept apart from
their implementation so that ``raid-server --help`` imports nothing heavy)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from server.raid_link import DEFAULT_PREFIX, LEASE_TTL_S, REQUEST_TIMEOUT_S

ArgType = Callable[[str], object]


def add_workers_argument(parser: argparse.ArgumentParser, positive_int: ArgType) -> None:
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="gateway processes (default 1: one process, no NATS; N > 1: an embedded "
        "nats-server, one raid host and N gateways sharing the port)",
    )


def _link_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats", required=True, metavar="URL", help="NATS server, e.g. nats://10.0.0.5:4222"
    )
    parser.add_argument(
        "--subject-prefix",
        default=DEFAULT_PREFIX,
        help=f"NATS subject prefix shared by hosts and gateways (default {DEFAULT_PREFIX})",
    )


def add_host_arguments(parser: argparse.ArgumentParser, positive_float: ArgType) -> None:
    _link_arguments(parser)
    parser.add_argument(
        "--lease-ttl",
        type=positive_float,
        default=LEASE_TTL_S,
        help=f"seconds the host's lease lasts unless renewed (default {LEASE_TTL_S:g})",
    )
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="take the lease even if another machine's host holds it (that host is gone)",
    )


def add_gateway_arguments(
    parser: argparse.ArgumentParser, port: ArgType, positive_float: ArgType
) -> None:
    _link_arguments(parser)
    parser.add_argument("--host", help="address to listen on (config [server] host)")
    parser.add_argument(
        "--port", type=port, help="port 0-65535 (config [server] port; 0 = any free)"
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="SO_REUSEPORT: several gateways of this machine share the port",
    )
    parser.add_argument(
        "--request-timeout",
        type=positive_float,
        default=REQUEST_TIMEOUT_S,
        help="seconds to wait for a host before answering unavailable "
        f"(default {REQUEST_TIMEOUT_S:g})",
    )
