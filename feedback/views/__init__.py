"""Server-rendered pages (htmx) of the feedback app, by area."""
