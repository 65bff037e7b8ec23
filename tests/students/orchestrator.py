"""A student's saga orchestrator (Lab 2): customer onboarding, exactly once.

Correct by default: reads CHINOOK_COMMANDS_TOPIC and CHINOOK_SAGA_TOPIC in the
group CHINOOK_GROUP (read_committed); a CreateCustomer command starts a saga
unless one with its correlation id exists; each saga message is answered by the
next one (create-customer, welcome-email, billing-setup, saga-completed), and a
step named by CHINOOK_FAIL_AT fails and is followed by the compensation of the
completed steps, newest first. Each answer is one transaction holding the
output records and the consumer offset, under a transactional id that survives
restarts. SIGTERM/SIGINT: exit 0 after the current message.
STUDENT_BUG switches on one deliberate mistake:
  no-compensation  a failed step ends the saga at once; nothing is undone
  no-causation     every message's causation id is the saga's correlation id
  no-dedupe        a redelivered command starts its saga again
"""

import signal
import sys
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import common

common.check_bug(("no-compensation", "no-causation", "no-dedupe"))

STEP = {name: common.SAGA_STEP.values_by_name[f"SAGA_STEP_{name}"].number
        for name in ("UNSPECIFIED", "CREATE_CUSTOMER", "WELCOME_EMAIL", "BILLING_SETUP")}
STEPS = [STEP["CREATE_CUSTOMER"], STEP["WELCOME_EMAIL"], STEP["BILLING_SETUP"]]
FAIL_AT = {"create-customer": STEP["CREATE_CUSTOMER"], "welcome-email": STEP["WELCOME_EMAIL"],
           "billing-setup": STEP["BILLING_SETUP"], "": None}[common.env("CHINOOK_FAIL_AT", " ").strip()]
DELETED = common.EVENT_TYPE.values_by_name["CUSTOMER_EVENT_TYPE_DELETED"].number

stopping = False


def request_stop(_signum, _frame):
    global stopping
    stopping = True


sagas = {}  # correlation id -> {"customer", "failed", "compensated"}


def learn(m):
    s = sagas.setdefault(m.correlation_id, {"customer": None, "failed": None, "compensated": []})
    case = m.WhichOneof("body")
    if case == "started":
        s["customer"] = m.started.customer
    elif case == "failed":
        s["failed"] = m.step
    elif case == "compensated" and m.step not in s["compensated"]:
        s["compensated"].append(m.step)


def message(correlation, causation, step):
    m = common.SagaMessage(message_id=f"msg-{uuid.uuid4()}", correlation_id=correlation, step=step)
    m.causation_id = correlation if common.BUG == "no-causation" else causation
    m.timestamp.GetCurrentTime()
    return m


def event(cause, customer, version, event_type):
    e = common.CustomerEvent(event_id=f"evt-{uuid.uuid4()}", event_type=event_type, version=version,
                             correlation_id=cause.correlation_id, causation_id=cause.message_id,
                             aggregate_id=str(customer.id), aggregate_type="customer")
    e.timestamp.GetCurrentTime()
    return e


def run_step(step, cause, s):
    """(saga messages, customer events) for doing `step`, answering `cause`."""
    m = message(cause.correlation_id, cause.message_id, step)
    if step == FAIL_AT:
        m.failed.reason = "failed on purpose"
        return [m], []
    m.completed.detail = f"step {step} done for customer {s['customer'].id}"
    if step == STEP["CREATE_CUSTOMER"]:
        e = event(cause, s["customer"], 1, common.CREATED)
        e.customer_created.customer.CopyFrom(s["customer"])
        e.customer_created.source = "saga"
        return [m], [e]
    return [m], []


def undo_step(step, cause, s):
    m = message(cause.correlation_id, cause.message_id, step)
    m.compensated.detail = f"step {step} undone for customer {s['customer'].id}"
    if step == STEP["CREATE_CUSTOMER"]:
        e = event(cause, s["customer"], 2, DELETED)
        e.customer_deleted.customer_id = s["customer"].id
        e.customer_deleted.reason = "onboarding compensated"
        return [m], [e]
    return [m], []


def finish_failed(cause, s):
    m = message(cause.correlation_id, cause.message_id, STEP["UNSPECIFIED"])
    m.saga_failed.failed_step = s["failed"] or 0
    m.saga_failed.compensated.extend(s["compensated"])
    return [m], []


def react(m):
    s = sagas.get(m.correlation_id)
    case = m.WhichOneof("body")
    if s is None or s["customer"] is None:
        return [], []
    if case == "started":
        return run_step(STEPS[0], m, s)
    if case == "completed":
        i = STEPS.index(m.step)
        if i + 1 < len(STEPS):
            return run_step(STEPS[i + 1], m, s)
        done = message(m.correlation_id, m.message_id, STEP["UNSPECIFIED"])
        done.saga_completed.customer_id = s["customer"].id
        return [done], []
    if case in ("failed", "compensated"):
        if common.BUG == "no-compensation":
            return finish_failed(m, s) if case == "failed" else ([], [])
        i = STEPS.index(m.step)
        return undo_step(STEPS[i - 1], m, s) if i > 0 else finish_failed(m, s)
    return [], []


def on_command(c):
    if c.WhichOneof("action") != "create_customer":
        return [], []
    correlation = c.correlation_id or c.command_id
    if correlation in sagas and common.BUG != "no-dedupe":
        return [], []
    m = message(correlation, c.command_id, STEP["UNSPECIFIED"])
    m.started.customer.CopyFrom(c.create_customer.customer)
    m.started.command_id = c.command_id
    return [m], []


def replay(brokers, topic):
    """Learns every committed saga message already on the topic (what a restart continues from)."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "student-orchestrator-replay",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    ends = {}
    for p in c.list_topics(topic, timeout=10).topics[topic].partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    while ends:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            learn(common.SagaMessage.FromString(m.value()))
        for tp in c.position([TopicPartition(topic, p) for p in list(ends)]):
            if tp.offset >= ends[tp.partition]:
                del ends[tp.partition]
    c.close()


def main():
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    brokers = common.env("CHINOOK_BROKERS")
    commands, saga, events = (common.env("CHINOOK_COMMANDS_TOPIC"), common.env("CHINOOK_SAGA_TOPIC"),
                              common.env("CHINOOK_EVENTS_TOPIC"))
    group = common.env("CHINOOK_GROUP")
    replay(brokers, saga)
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "session.timeout.ms": 10000, "fetch.wait.max.ms": 20})
    consumer.subscribe([commands, saga])
    producer = Producer({"bootstrap.servers": brokers, "transactional.id": f"student-orchestrator.{group}",
                         "transaction.timeout.ms": 10000})
    producer.init_transactions(30)
    answered = 0
    while not stopping:
        m = consumer.poll(0.2)
        if m is None or m.error() is not None:
            continue
        if m.topic() == saga:
            msg = common.SagaMessage.FromString(m.value())
            learn(msg)
            out, evs = react(msg)
        else:
            out, evs = on_command(common.CustomerCommand.FromString(m.value()))
        producer.begin_transaction()
        for o in out:
            producer.produce(saga, key=o.correlation_id, value=o.SerializeToString())
        for e in evs:
            producer.produce(events, key=e.aggregate_id, value=e.SerializeToString())
        producer.send_offsets_to_transaction([TopicPartition(m.topic(), m.partition(), m.offset() + 1)],
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        answered += 1
        for o in out:
            common.log(f"{o.correlation_id}: {o.WhichOneof('body')} step {o.step}")
    consumer.close()
    common.log(f"orchestrator: answered {answered} messages, {len(sagas)} sagas known")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        common.err(f"orchestrator: {e}")
        sys.exit(1)
