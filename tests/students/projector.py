"""A student's projector (Lab 2): the customer table rebuilt from CustomerEvents.

Correct by default: reads CHINOOK_TOPIC from the beginning to the end offsets it
finds at start-up (read_committed), applies each customer's events in order and
writes one JSON line per remaining customer to CHINOOK_OUTPUT with the Customer
table's columns. STUDENT_BUG switches on one deliberate mistake:
  ignore-deletes   a customer-deleted event is skipped: deleted customers stay
"""

import json
import sys

from confluent_kafka import Consumer, TopicPartition

import common

common.check_bug(("ignore-deletes",))


def read_all(topic):
    c = Consumer({
        "bootstrap.servers": common.env("CHINOOK_BROKERS"),
        "group.id": "student-projector",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    partitions = c.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {}
    for p in partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    events = []
    while ends:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            events.append(common.CustomerEvent.FromString(m.value()))
        for tp in c.position([TopicPartition(topic, p) for p in list(ends)]):
            if tp.offset >= ends[tp.partition]:
                del ends[tp.partition]
    c.close()
    return events


def row(customer):
    labels = dict(customer.labels)
    contact = customer.contact
    text = lambda v: v or None
    rep = labels.get("support_rep_id")
    return {
        "customer_id": customer.id,
        "first_name": labels.get("first_name", ""),
        "last_name": labels.get("last_name", ""),
        "company": labels.get("company") or None,
        "address": text(contact.address_line),
        "city": text(contact.city),
        "state": labels.get("state") or None,
        "country": labels.get("country") or None,
        "postal_code": text(contact.postal_code),
        "phone": text(contact.phone),
        "fax": labels.get("fax") or None,
        "email": customer.email,
        "support_rep_id": int(rep) if rep else None,
    }


def main():
    customers = {}
    for e in read_all(common.env("CHINOOK_TOPIC")):
        case = e.WhichOneof("payload")
        cid = int(e.aggregate_id)
        if case in ("customer_created", "customer_updated"):
            c = common.Customer()
            c.CopyFrom(getattr(e, case).customer)
            customers[cid] = c
        elif case == "contact_updated" and cid in customers:
            customers[cid].contact.CopyFrom(e.contact_updated.contact)
            customers[cid].email = e.contact_updated.contact.email
        elif case == "status_changed" and cid in customers:
            customers[cid].status = e.status_changed.new_status
        elif case == "customer_deleted" and common.BUG != "ignore-deletes":
            customers.pop(cid, None)
    with open(common.env("CHINOOK_OUTPUT"), "w") as out:
        for cid in sorted(customers):
            out.write(json.dumps(row(customers[cid])) + "\n")
    common.log(f"projector: {len(customers)} customers written")


if __name__ == "__main__":
    sys.exit(main())
