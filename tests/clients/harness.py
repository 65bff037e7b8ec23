"""What the Python client programs (confluent.py, kafka_python.py) share: the
check runner, its output format and the settings every check reads.

Each check is a function of its deadline that returns the detail of a success,
or raises Failed (a wrong result) or NotApplicable (the client cannot do it).
The runner gives it its own thread, never waits longer than CLIENT_CHECK_TIMEOUT
(+5 s), and prints one JSON line:
{"client", "version", "check", "ok", "detail", "secs"} (+ "na": true).
"""

import json
import os
import sys
import threading
import time

SCHEMA_TOPIC = os.environ.get("CLIENT_SCHEMA_TOPIC") or "customer_events"
CHECK_TIMEOUT = float(os.environ.get("CLIENT_CHECK_TIMEOUT") or 60)

class NotApplicable(Exception):
    """The client (this version) cannot do the check at all."""


class Failed(Exception):
    """The check ran and the result is wrong: the message is the detail."""


def short(text, limit=500):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def emit(client, version, check, ok, detail, secs, na=False):
    line = {"client": client, "version": version, "check": check, "ok": ok, "detail": short(detail)}
    if na:
        line["na"] = True
    line["secs"] = round(secs, 2)
    print(json.dumps(line), flush=True)


def run_check(client, version, name, fn):
    """Run fn(deadline) in a daemon thread; never wait more than CHECK_TIMEOUT (+5 s grace).

    fn returns the detail of a success, or raises Failed / NotApplicable / anything else.
    """
    start = time.monotonic()
    deadline = start + CHECK_TIMEOUT
    outcome = {}

    def body():
        try:
            outcome["result"] = (True, fn(deadline), False)
        except NotApplicable as e:
            outcome["result"] = (False, str(e), True)
        except Failed as e:
            outcome["result"] = (False, str(e), False)
        except Exception as e:  # anything the client raised
            text = str(e) or "no message (a wait that ran out of time?)"
            outcome["result"] = (False, f"{type(e).__name__}: {text}", False)

    worker = threading.Thread(target=body, name=name, daemon=True)
    worker.start()
    worker.join(CHECK_TIMEOUT + 5)
    secs = time.monotonic() - start
    if "result" not in outcome:
        emit(client, version, name, False, f"timed out after {CHECK_TIMEOUT:.0f} s (the client call never returned)", secs)
        return
    ok, detail, na = outcome["result"]
    emit(client, version, name, ok, detail, secs, na)


def left(deadline, cap=None):
    """Seconds left before the deadline (at least a little, so calls still get a chance)."""
    rest = max(0.1, deadline - time.monotonic())
    return min(rest, cap) if cap else rest


def main(client, version, checks):
    """Runs `checks` ([(name, fn)]), or those named on the command line; exits 0."""
    only = sys.argv[1:]
    unknown = [c for c in only if c not in dict(checks)]
    if unknown:
        print(f"usage: {sys.argv[0]} [check...]; unknown: {unknown}; checks: {[c for c, _ in checks]}", file=sys.stderr)
        return 2
    for name, fn in checks:
        if not only or name in only:
            run_check(client, version, name, fn)
    sys.stdout.flush()
    # A check that timed out may have left a thread inside the client: do not wait for it.
    os._exit(0)
