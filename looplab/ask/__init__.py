"""Ask: query strategies, diversity, the labeling queue, the scoring job, suggestions and
active-learning simulation.
"""
