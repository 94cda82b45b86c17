"""Blueprints, forms, sessions, headers and error pages: thin views that call services."""
