"""The fan-out benchmark behind `shoal bench` and `bench/fanout.py`.

`fanout` runs one measurement (a server, loader processes, one client count, one protocol), `loader` is
the load-generator process, `sweep` runs many points with a progress bar, and `plot` draws the report.
Only the benchmark imports this package; the server never does.
"""
