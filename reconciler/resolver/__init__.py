"""cnm's resolver: the names of each network's endpoints, served to its sandboxes.

`records.py` (pure) turns manifests into the desired `Resolver` resource and
its configuration file; `server.py` is the process that serves it (a small
DNS server on dnspython, listening on the networks' gateway addresses);
`kernel/resolver.py` observes, starts, reloads and stops that process.
"""
