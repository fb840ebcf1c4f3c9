"""``python -m airflow_provider_userattrs.sandbox``: serve the four vendor APIs on one port."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from airflow_provider_userattrs.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="userattrs-sandbox",
        description="Local AltaTech, Fyno, DX and User.com APIs with fault injection (for development and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8090, help="port (0 picks a free one; default 8090)")
    parser.add_argument("--token", action="append", help="accepted API token (repeatable; default sandbox-token)")
    parser.add_argument("--fyno-workspace", action="append", help="accepted Fyno workspace id (default sandboxwsid)")
    parser.add_argument("--faults", help='fault settings as JSON, e.g. \'{"latency": 0.02, "error_rate": 0.1}\'')
    parser.add_argument(
        "--usercom-attribute",
        action="append",
        default=[],
        metavar="NAME",
        help="a custom attribute that exists in the User.com app (repeatable); User.com refuses any other",
    )
    parser.add_argument(
        "--no-usercom-attribute-check", action="store_true", help="accept any User.com attribute name (lenient)"
    )
    parser.add_argument(
        "--answer-shapes",
        help='shapes of the answer parts no vendor publishes, e.g. \'{"fyno_batch": "batch", "dx_failures": "names"}\'',
    )
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(message)s")

    server = SandboxServer(
        args.host,
        args.port,
        tokens=args.token or ["sandbox-token"],
        fyno_workspaces=args.fyno_workspace or ["sandboxwsid"],
        usercom_attributes=None if args.no_usercom_attribute_check else args.usercom_attribute,
        answer_shapes=json.loads(args.answer_shapes) if args.answer_shapes else None,
    )
    if args.faults:
        server.set_faults(**json.loads(args.faults))
    if args.port_file:
        args.port_file.write_text(str(server.port))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logging.info("serving AltaTech, Fyno, DX and User.com on %s (inspect: %s/_sandbox/stats)", server.url, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        logging.info("stopping")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
