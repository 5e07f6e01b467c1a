"""The kernel layer: the only code that talks to netlink (pyroute2) and the filesystem state.

`observe` reads and never writes; `apply` performs one small idempotent step
per (verb, kind).
"""
