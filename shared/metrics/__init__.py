"""The metrics storage layer: what worker processes record, and where it lives on disk.

- `definitions`: every metric a process records (the contract of DESIGN section 3), and `safely`;
- `directory`: the per-host multiprocess directory, instance ids, markers, the directory lock;
- `archive`: folding the files of dead processes into one archive, exactly.

Importing this package imports nothing: `definitions` loads prometheus_client, which must come
after shared.runtime.bootstrap.prepare() has put PROMETHEUS_MULTIPROC_DIR in the environment.
May be imported by the process plumbing of `shared` (bootstrap, lifecycle, events), by `web` and
by `workers`; never by `shared.stores`, and it imports no store itself (a test keeps it so).
"""
