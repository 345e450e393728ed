"""Typed client → server messages (docs/protocol.md). Extra fields are refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from studio.docstate import MAX_OPS_PER_EDIT, ObjId

ClientOpId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Revision = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Ping(_Message):
    type: Literal["ping"]
    id: Any = None


class Sync(_Message):
    type: Literal["sync"]
    since: Revision | None = None


class EditMessage(_Message):
    type: Literal["edit"]
    client_op_id: ClientOpId
    base_revision: Revision | None = None
    # Each op is validated by the action, which names the bad one.
    ops: Annotated[list[Any], Field(min_length=1, max_length=MAX_OPS_PER_EDIT)]


class Undo(_Message):
    type: Literal["undo"]
    client_op_id: ClientOpId


class Redo(_Message):
    type: Literal["redo"]
    client_op_id: ClientOpId


class Gesture(_Message):
    type: Literal["gesture"]
    kind: Literal["project", "track", "clip", "effect", "marker"]
    id: ObjId
    props: dict[str, Any] = Field(default_factory=dict, max_length=16)
    end: bool = False


class Presence(_Message):
    type: Literal["presence"]
    selection: Annotated[list[ObjId], Field(max_length=100)] | None = None
    playhead: Annotated[float, Field(ge=0.0, le=86400.0)] | None = None


class SaveVersion(_Message):
    type: Literal["version.save"]
    client_op_id: ClientOpId
    # Stripped as the saved name is, so a blank name is a bad message.
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Restore(_Message):
    type: Literal["restore"]
    client_op_id: ClientOpId
    version: Annotated[int, Field(ge=1, le=2**63 - 1)]


ClientMessage = Annotated[
    Ping | Sync | EditMessage | Undo | Redo | Gesture | Presence | SaveVersion | Restore,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)
TYPES = frozenset(
    ("ping", "sync", "edit", "undo", "redo", "gesture", "presence", "version.save", "restore")
)


class MessageError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_message(data: dict[str, Any]) -> Any:
    """A decoded message with a known `type` into its typed form."""
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        # The first location element is the union tag; drop it from the path.
        loc = [str(p) for p in err["loc"][1:]]
        where = ".".join(loc) or "message"
        raise MessageError(f"{where}: {err['msg']}") from None
