"""The runtime: compiler driver, kernel cache, ctypes loading, executor.

It imports only fusec.errors and fusec.ir (no compiler stage), so it can be tested with hand-written C.
"""
