"""What the long lists («Обращения», «Журнал действий») share: a total counted only up to a cap, and a
CSV export of the filtered list."""

from __future__ import annotations

from dataclasses import dataclass


class CappedTotal:
    """A page's ``total`` counted up to ``cap`` + 1 rows: counting every match of a million-row filter
    would cost more than the page itself."""

    total: int  # at most cap + 1
    cap: int  # how far it was counted

    @property
    def total_capped(self) -> bool:
        """More than ``cap`` match: the pager shows ``cap`` + 1 rows' worth of pages."""
        return self.total > self.cap

    @property
    def total_label(self) -> str:
        return f'более {self.cap:,}'.replace(',', ' ') if self.total_capped else str(self.total)


@dataclass(frozen=True)
class CsvExport:
    data: bytes
    rows: int
    cut: bool  # more matched than ``limit``: the file says so in its last line
    limit: int = 100_000

    @property
    def note(self) -> str | None:
        """What the page tells the user when the file was cut."""
        limit = f'{self.limit:,}'.replace(',', ' ')
        return (
            f'Выгружены первые {limit} строк: уточните фильтры, чтобы получить остальные'
            if self.cut
            else None
        )
