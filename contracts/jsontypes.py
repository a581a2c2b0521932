"""The name of what travels as JSON, so a signature says "a JSON object" rather than "a dict".

A JSON object decoded by ``json.loads`` or about to be encoded by ``json.dumps``: event
envelopes, schemas, documents, examples. The values stay ``Any``: spelling the recursive JSON
type out would make every reader of a field cast it, for no check that pydantic does not already
make where the object enters.
"""

from __future__ import annotations

from typing import Any, TypeAlias

JsonObject: TypeAlias = dict[str, Any]
