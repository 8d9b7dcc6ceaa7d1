"""Benchmark protocols of henasy-bench (EgoMCQ, EK100-MIR, EK100-CLS, EGTEA, Ego4D NLQ and MQ).

``benchmarks.metrics`` holds every metric with the semantics of the official evaluation code (LaViLa,
JPoSE, Ego4D episodic-memory), as pure numpy functions; the protocol modules that run models live next
to it.
"""
