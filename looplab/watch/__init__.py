"""Watch: drift, windows, accuracy from feedback and estimated, triggers, targeted labeling, alerts
and the views people read.
"""
