"""The HTTP API (FastAPI): `create_app` in service.app, `reelsense serve` to run it.

POST /v1/analyze (sync, short videos), POST/GET/DELETE /v1/jobs (async, SQLite-backed), /healthz,
/readyz, /metrics. Importing this package loads no model and touches no file.
"""
