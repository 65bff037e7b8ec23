"""What the student programs share: the CustomerEvent classes and the lab contract.

The message classes are built at start-up from the repository's .proto files:
`protoc` compiles them to a FileDescriptorSet, which is loaded into a fresh
descriptor pool. No generated *_pb2.py, so the protoc that compiled the schema
and the protobuf runtime never have to agree on a generated-code version.
Nothing here comes from chinook: only its schemas.
"""

import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(REPO, "proto")
SCHEMAS = ["events/v1/customer_events.proto", "events/v1/saga.proto", "events/v1/window_result.proto"]


def _load_pool():
    with tempfile.TemporaryDirectory(prefix="student-proto-") as tmp:
        out = os.path.join(tmp, "descriptors.pb")
        try:
            subprocess.run(
                ["protoc", "-I", PROTO_DIR, "--include_imports", f"--descriptor_set_out={out}", *SCHEMAS],
                check=True,
                capture_output=True,
                text=True,
            )
        except FileNotFoundError:
            sys.exit("student: protoc not found (Debian: apt-get install protobuf-compiler libprotobuf-dev)")
        except subprocess.CalledProcessError as e:
            sys.exit(f"student: protoc failed on {' '.join(SCHEMAS)}: {e.stderr.strip()}")
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    # --include_imports lists dependencies before the files that import them.
    for file_proto in fds.file:
        pool.Add(file_proto)
    return pool


POOL = _load_pool()


def message_class(full_name):
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


CustomerEvent = message_class("events.v1.CustomerEvent")
CustomerCreated = message_class("events.v1.CustomerCreated")
Customer = message_class("customer.v1.Customer")
CustomerCommand = message_class("events.v1.CustomerCommand")
SagaMessage = message_class("events.v1.SagaMessage")
SAGA_STEP = POOL.FindEnumTypeByName("events.v1.SagaStep")
WindowResult = message_class("events.v1.WindowResult")

EVENT_TYPE = POOL.FindEnumTypeByName("events.v1.CustomerEventType")
CREATED = EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_CREATED"].number

# The payload case each known event type must carry.
PAYLOAD_OF_TYPE = {
    EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_CREATED"].number: "customer_created",
    EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_UPDATED"].number: "customer_updated",
    EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_DELETED"].number: "customer_deleted",
    EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_STATUS_CHANGED"].number: "status_changed",
    EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_CONTACT_UPDATED"].number: "contact_updated",
}


def type_name(number):
    """The enum value's name, or the bare number for one the schema does not know."""
    value = EVENT_TYPE.values_by_number.get(number)
    return value.name if value is not None else str(number)


# --- the lab contract ------------------------------------------------------


def env(name, default=None):
    value = os.environ.get(name, "")
    if value:
        return value
    if default is not None:
        return default
    sys.exit(f"student: {name} is not set")


BUG = os.environ.get("STUDENT_BUG", "").strip()


def check_bug(known):
    """Refuses a STUDENT_BUG this program does not know (exit 2), so a typo is not a silent pass."""
    if BUG and BUG not in known:
        err(f"student: unknown STUDENT_BUG {BUG!r} (this program knows: {', '.join(known)})")
        sys.exit(2)


def log(*parts):
    print(*parts, flush=True)


def err(*parts):
    print(*parts, file=sys.stderr, flush=True)
