"""The Redis-backed stores of what users create, and the validation of their input.

Accounts (`accounts`, `account_input`, `credentials` for passwords encrypted at rest), access
tokens (`tokens`), runtime settings (`settings`), the admin password (`admin_password`) and the
per-minute webhook counts of the admin overview (`webhook_stats`). Each store takes a Redis client
and `shared.keys.Keys`; none records metrics or touches the metrics directory, so the stores stay
usable from any process, the CLI included. May be imported by the rest of `shared`, by `web` and
by `workers`; imports only the plumbing modules of `shared` (keys, errors, event_names), never
`shared.metrics` (a test keeps it so).
"""
