"""Catalogue search: text analysis, the per-database index, synonyms and corrections."""
