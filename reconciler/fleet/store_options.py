"""`--store`, `--store-ca`, `--store-cert`, `--store-key` and their `CNM_*` variables.

Shared by every command that reaches the cluster store (`cnm cluster ...`,
and plan/apply/delete/watch with overlay networks). Building the parser loads
nothing but argparse; `store_config` parses the URL when the command runs.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import StoreConfig

#: option → environment variable giving its default
ENVIRONMENT = {"store": "CNM_STORE", "store_ca": "CNM_STORE_CA",
               "store_cert": "CNM_STORE_CERT", "store_key": "CNM_STORE_KEY"}


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """The four store options on `parser` (defaults from the environment when it runs)."""
    parser.add_argument("--store", metavar="URL",
                        help="the cluster store, etcd://IP:PORT[,IP:PORT...] (env CNM_STORE)")
    parser.add_argument("--store-ca", metavar="PEM",
                        help="CA that signed the store's certificate; turns TLS on "
                             "(env CNM_STORE_CA)")
    parser.add_argument("--store-cert", metavar="PEM",
                        help="client certificate for the store (env CNM_STORE_CERT)")
    parser.add_argument("--store-key", metavar="PEM",
                        help="the client certificate's key (env CNM_STORE_KEY)")


def store_config(args: argparse.Namespace) -> StoreConfig | None:
    """The store the arguments (or the environment) name; None when neither names one."""
    from .records import parse_store_url

    values = {name: getattr(args, name, None) or os.environ.get(env) or None
              for name, env in ENVIRONMENT.items()}
    url = values["store"]
    if url is None:
        return None
    return parse_store_url(url, ca=values["store_ca"], cert=values["store_cert"],
                           key=values["store_key"])
