"""Helpers the tests share (common.py) and the scripts they run (asha_driver.py)."""
