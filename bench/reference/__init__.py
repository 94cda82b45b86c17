"""Reference pages for bench/b_pages.py: bare Flask + SQLAlchemy Core + Jinja, rendering the same rows.

See pages.py for exactly what each reference page does (and does not do).
"""
