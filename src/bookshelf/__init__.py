"""Bookshelf: a books REST service on PostgreSQL."""
