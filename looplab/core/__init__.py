"""What every stage stands on: settings, the store and its tables, errors, the audit log, the job
queue and the project's settings. It imports no stage.
"""
