"""The fleet: what several hosts share through the cluster store (etcd v3).

`records.py` holds the pure values (the store's URL, what the store says about
hosts, networks and endpoints); `keys.py` the key layout under one prefix;
`gateway.py` the HTTP(S) calls to etcd's JSON gateway; `store.py` the
`ClusterStore` that reads and writes the records; `store_options.py` the
`--store*` options; `cluster_cli.py` the `cnm cluster status|forget` commands.
Nothing here imports the kernel layer: the overlay driver and the planner use
the store through `ClusterStore` and the `ClusterView` snapshots it returns.
"""
