"""Benchmarks that print figures (never pass/fail timing asserts): ``edgeorder bench``.

The modules by role: ``events`` (payloads), ``load`` (paho load generator and status watcher),
``counter``/``raw`` (the broker ceiling), ``services``/``procs`` (the chain as processes, CPU
and RSS from /proc), ``tracker``/``phases``/``run`` (measuring), ``stats``/``reconcile``
(pure figures and the exactly-once check), ``progress``/``report``/``cli`` (output).
"""

from bench.run import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench"]
