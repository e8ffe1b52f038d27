"""Benchmarks of the study's data path and training step: not library code (nothing imports them).

    python -m benchmarks.throughput --compare --json     # training images/s, and against ImageFolder + DataLoader
    python -m benchmarks.cache ROOT --resolution 200     # the image cache: build vs load
"""
