"""A minimal Django project for the cross-process test (under gunicorn) and the benchmark.

Which session backend it uses comes from the environment (see ``settings.py``), so the same
app and workload run against sessiondir and Django's own backends side by side.
"""
