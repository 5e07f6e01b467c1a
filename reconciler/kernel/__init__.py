"""The kernel layer: the only code that talks to netlink and touches namespaces and their files.

`observe` reads and never writes; `apply` performs one small idempotent step
per (verb, kind).
"""
