"""Alembic environment for hwnas's own tables (Optuna manages its tables itself)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from nas.store.db import VERSION_TABLE
from nas.store.models import Base

config = context.config


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
        )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
            include_name=lambda name, type_, _parent: type_ != "table" or name.startswith("hwnas_"),
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
