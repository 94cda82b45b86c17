"""Flask-Migrate wiring: the migrations folder and the metadata and engine Alembic compares."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import Engine, MetaData

from transitions.models import Base
from transitions.paths import MIGRATIONS_DIR
from transitions.services.deps import ServiceDeps


@dataclass(frozen=True)
class MigrationTarget:
    metadata: MetaData
    engine: Engine


def install_migrations(app: Flask) -> None:
    deps: ServiceDeps = app.extensions["transitions"]
    Migrate(app, MigrationTarget(Base.metadata, deps.db.engine), directory=str(MIGRATIONS_DIR),
            render_as_batch=True, compare_type=True)
