"""JSON values between Python and the wire. The wire carries a context's and a result's numbers
as JSON does, as doubles (google.protobuf.Struct); here a number that is whole comes back an
int, so that `range(step.context["count"])` works, and a dict goes out as a Struct."""
from typing import Any, Dict, Mapping, Optional

from google.protobuf import json_format, struct_pb2

# Doubles hold every integer up to 2^53 exactly; past that a whole double is no longer one
# integer, so it stays a float.
_EXACT = 2 ** 53


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def to_dict(struct: Optional[struct_pb2.Struct]) -> Dict[str, Any]:
    """A Struct as a dict: whole numbers as ints, the rest as JSON gives them."""
    if struct is None:
        return {}
    return _whole(json_format.MessageToDict(struct))


def to_struct(mapping: Optional[Mapping[str, Any]]) -> struct_pb2.Struct:
    """A dict (of JSON values) as a Struct; TypeError names what cannot be one."""
    struct = struct_pb2.Struct()
    if mapping:
        if not isinstance(mapping, Mapping):
            raise TypeError("a context or results is a dict of JSON values, not %s" % type(mapping).__name__)
        try:
            struct.update(dict(mapping))
        except (ValueError, TypeError) as error:
            raise TypeError("not a dict of JSON values: %s" % error) from None
    return struct
