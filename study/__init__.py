"""Pneumonia CNN study on Ray Tune. Data flows one way:
data -> model -> train -> trainable -> tuner -> run (config is read by all)."""
