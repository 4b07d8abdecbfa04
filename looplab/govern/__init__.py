"""Govern: users, roles and tokens, model cards and reports."""
