"""Command line: `python -m crm.manage prepare` migrates and, in demo mode, fills an empty database."""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy.exc import OperationalError

from crm.config import Settings
from crm.db.engine import make_engine, make_sessions
from crm.db.migrate import upgrade


def prepare(settings: Settings, borrowers: int) -> None:
    try:
        upgrade(settings.database_url)
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        raise SystemExit(f'CRM_DATABASE_URL: cannot migrate the database ({reason})') from None
    if not settings.demo:
        return
    from crm.db.demo import is_empty, seed_demo
    from crm.db.demo_templates import seed_missing_templates

    engine = make_engine(settings.database_url)
    clock = settings.clock()  # with CRM_CLOCK_START the data is as of the day the app's clock starts on
    sessions = make_sessions(engine, clock)
    try:
        if is_empty(sessions):
            started = time.perf_counter()
            seed_demo(sessions, borrowers=borrowers, clock=clock)
            print(f'demo data: {borrowers} borrowers in {time.perf_counter() - started:.1f} s')
        elif added := seed_missing_templates(sessions, clock):  # a demo database older than templates
            print(f'demo data: {added} message templates')
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m crm.manage')
    commands = parser.add_subparsers(dest='command', required=True)
    prepare_cmd = commands.add_parser('prepare', help='migrate; in demo mode fill an empty database')
    prepare_cmd.add_argument('--borrowers', type=int, default=2000)
    commands.add_parser('migrate', help='apply migrations only')
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == 'prepare':
        prepare(settings, args.borrowers)
    else:
        upgrade(settings.database_url)


if __name__ == '__main__':
    main()
    sys.exit(0)
