"""Servlets of the Webware test application (one per file, named as the file)."""
