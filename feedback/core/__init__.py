"""Infrastructure both apps share: checks on untrusted text, outbound HTTP, secrets at rest,
background jobs (`jobs`).

Pure where it can be (no ORM in `validators`), so the ingestion hot path can use it.
"""
