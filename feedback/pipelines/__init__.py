"""Answer pipelines the platform can run itself, and the connectors that call external ones."""
