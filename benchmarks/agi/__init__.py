"""FastAGI benchmark: a fake-Asterisk load generator, one menu flow, three servers, a runner.

`python -m benchmarks.agi.run` starts each server, drives the same load against it and prints
the comparison; see docs/benchmarks-agi.md for the method and the figures.
"""
