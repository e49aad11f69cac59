"""The event contracts (JSON Schema files), shipped in the wheel as `pipeline.schemas`.

This folder is the source of truth; pyproject.toml maps it into the package, and
`pipeline.contracts` reads it through importlib.resources.
"""
