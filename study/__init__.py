"""Pneumonia CNN study on Ray Tune. Data flows one way:
data -> model -> engine (train loop, inference) -> tune (trainable, tuner, driver) -> run (config is read by all)."""
