from alembic import context

from crm.db.engine import make_engine
from crm.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option('sqlalchemy.url'),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get('connection')
    if connectable is None:
        url = config.get_main_option('sqlalchemy.url')
        assert url, 'alembic: sqlalchemy.url is not set'
        engine = make_engine(url)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:
    sqlite = connection.dialect.name == 'sqlite'
    if sqlite:
        # Batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the drop would
        # cascade into every table that refers to it. The pragma only works outside a transaction.
        connection.exec_driver_sql('PRAGMA foreign_keys=OFF')
        connection.commit()  # end the autobegun transaction, so the migrations' own one commits
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite)
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            connection.exec_driver_sql('PRAGMA foreign_keys=ON')
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
