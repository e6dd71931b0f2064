"""Infrastructure both apps share: the API's error shape, parsing and rendering (`api`), API
keys and the project a request acts on (`auth`), page access checks (`access`) and htmx
rendering (`pages`), the middleware, background jobs (`jobs`), checks on untrusted text,
outbound HTTP, secrets at rest.

Pure where it can be (no ORM in `validators`), so the ingestion hot path can use it.
"""
