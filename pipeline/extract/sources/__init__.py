"""Per-source rules for captured text pages: each module registers one `TextRules`.

Every module in this package is imported by `pipeline.extract`, so adding a source is adding a file.
"""
