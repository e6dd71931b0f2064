"""Infrastructure both apps share: the errors services raise (`errors`), the API's error shape,
parsing and rendering (`api`), API keys and the project a request acts on (`auth`), page access
checks (`access`), htmx rendering (`pages`) and the pages' forms in front of a service
(`forms`), the middleware, background jobs (`jobs`), checks on untrusted text, outbound HTTP,
secrets at rest.

Pure where it can be (no ORM in `validators`), so the ingestion hot path can use it.
"""
