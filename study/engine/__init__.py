"""The engine: device and precision, the training loop, inference, metrics, checkpoints, divergence.

Imports only study.config / names / data / model below it; study.tune and the CLIs import it."""
