"""`python -m smsgate.modemd --config FILE`: the daemon and its webhooks on the configured modems (no web app).

An entry point like `smsgate serve`, so it runs the same `Gateway`, only without the web server and
without simulated modems.
"""

from __future__ import annotations

import argparse
import logging
import sys

from smsgate.config import ConfigError, load_config
from smsgate.gateway import Gateway, StartupError

from .tunables import FAST, Tunables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smsgate.modemd", description=__doc__)
    parser.add_argument("--config", help="configuration file (default: $SMSGATE_CONFIG, /etc/smsgate/smsgate.toml)")
    parser.add_argument("--fast", action="store_true", help="short timings (tests and demos on simulated modems)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"smsgate: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not config.modems:
        print("smsgate: no [[modems]] configured; `smsgate serve` starts simulated ones", file=sys.stderr)
        return 2
    try:
        return Gateway(config, web=False, tunables=FAST if args.fast else Tunables()).run()
    except StartupError as exc:
        print(f"smsgate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
