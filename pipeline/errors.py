"""Why a record was rejected, as a stable machine-readable code plus a human message.

Every stage raises `Rejected`; the shell turns it into a dead-letter record. Codes are part of the
public contract (dashboards and alerts group by them): add codes, never rename them.
"""

from __future__ import annotations

# code -> one-line meaning (README and the DLQ schema list these)
ERROR_CODES: dict[str, str] = {
    "too_large": "the payload is over the size limit (NEWSPIPE_MAX_EVENT_BYTES), or its clean "
    "record would be over the 1 MB a Kafka record may hold",
    "empty": "the payload is empty or only whitespace",
    "not_utf8": "the payload is not valid UTF-8",
    "not_json": "the payload is not JSON (or is truncated)",
    "json.duplicate_key": "a JSON object repeats a key",
    "json.too_deep": "JSON nesting is deeper than NEWSPIPE_MAX_JSON_DEPTH",
    "not_object": "the JSON value is not an object",
    "unknown_schema_major": "schema_version has a major version this worker does not know",
    "schema.missing_field": "a required field is missing",
    "schema.wrong_type": "a field has the wrong type",
    "schema.invalid_value": "a field's value is outside what the schema allows",
    "field.too_long": "a text field is over NEWSPIPE_MAX_FIELD_CHARS",
    "field.control_chars": "a field holds NUL or other control characters that cannot be text",
    "time.invalid": "a timestamp cannot be parsed",
    "time.out_of_range": "a timestamp is implausibly far in the future or past",
    "content.empty": "nothing is left after normalization (empty or only boilerplate)",
    "key.invalid": "the Kafka key is empty-but-present or too large",
    "internal": "the pipeline failed on this record (a bug); the record is kept for replay",
}


class Rejected(Exception):
    """A record that cannot go on; carries the DLQ code, the field and the stage."""

    def __init__(self, code: str, message: str, field: str | None = None, stage: str = "validate"):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.stage = stage

    def __repr__(self) -> str:
        return (
            f"Rejected({self.code!r}, {self.message!r}, field={self.field!r}, stage={self.stage!r})"
        )
