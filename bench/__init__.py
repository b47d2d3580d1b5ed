"""Benchmarks that print figures (never pass/fail timing asserts): ``edgeorder bench``.

The modules by role: ``events`` (payloads), ``wire``/``client`` (the bench's own lean MQTT 3.1.1
client), ``load`` (load generator and status watcher on it),
``counter``/``raw`` (the broker ceiling), ``services``/``procs`` (the chain as processes, CPU
and RSS from /proc), ``tracker``/``phases``/``run`` (measuring), ``stats``/``reconcile``
(pure figures and the exactly-once check), ``progress``/``report``/``cli`` (output).
"""

import sys
from pathlib import Path

# The bench runs the project's own test Mosquitto (deploy/mosquitto/, tests/support/) and the
# services from this checkout, so it needs the checkout on sys.path even when started through
# the installed ``edgeorder`` script (an editable install maps only the packages).
_CHECKOUT = Path(__file__).resolve().parents[1]
if not (_CHECKOUT / "tests" / "support" / "mosquitto.py").is_file():
    raise ImportError(
        f"edgeorder bench runs from a source checkout (tests/support/ missing under {_CHECKOUT})"
    )
if str(_CHECKOUT) not in sys.path:
    sys.path.append(str(_CHECKOUT))

from edgeorder.bench.run import BenchConfig, run_bench  # noqa: E402

__all__ = ["BenchConfig", "run_bench"]
