"""Collect: read CSV, JSONL, Parquet and Label Studio files into records (content-hash dedupe,
provenance), and write them back out.
"""
