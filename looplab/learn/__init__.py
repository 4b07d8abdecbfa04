"""Learn: labeled sets, pipelines, evaluation and calibration, the model registry, the training
job, and promotion through the gate.
"""
