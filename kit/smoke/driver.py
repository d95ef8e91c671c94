"""What a smoke route provides: the driver protocol the runner calls (a failed request raises errors.CheckError).

The runner (kit/smoke/__init__.py) picks a driver and calls only these methods; the drivers
(kit/smoke/sql.py, kit/smoke/rest.py) import this module, never the runner.
"""

from collections.abc import Callable
from typing import Protocol

from kit.smoke.rows import Shape


class Driver(Protocol):
    """One route to llm_usage; a failed request raises CheckError, a setup problem a kit error."""

    def where(self) -> str: ...  # the database the driver writes to, as the smoke ledger records it
    def models(self) -> list[tuple[str, str]]: ...
    def shape(self) -> Shape: ...
    def insert(self, row: dict) -> dict: ...
    def insert_each(self, rows: list[dict]) -> list: ...  # per row: the row written, or its CheckError
    def compare_each(self, items: list[tuple], types: dict) -> list: ...  # per (sent, key, marker): (row, wrong)
    def delete_and_count(self, keys: list[tuple], marker: list | None) -> int: ...  # rows left after the deletes
    async def insert_many(self, rows: list[dict]) -> tuple[list[float], list[dict]]: ...
    def select_keys(self, keys: list[tuple]) -> list[dict]: ...
    def delete_keys(self, keys: list[tuple]) -> None: ...
    def select_marker(self, column: str, kind: str, run_id: str) -> list[dict]: ...
    def delete_marker(self, column: str, kind: str, run_id: str) -> None: ...
    def differences(self, sent: dict, got: dict, key: tuple | None, marker: list | None, types: dict) -> list[str]: ...
    def legacy_insert(self, row: dict) -> tuple[str | None, dict | None]: ...
    def close(self) -> None: ...


class KeyColumns:
    """For a driver: llm_usage's primary key columns, read from the driver's shape() once."""

    shape: Callable[[], Shape]  # the driver's own

    def _key(self) -> list[str]:
        if not hasattr(self, "_key_columns"):
            self._key_columns = self.shape().key
        return self._key_columns

    def refused_only_model_id(self, row: dict) -> bool:
        """After an unknown-column answer: whether model_id is the row's one column llm_usage lacks, so the
        refusal is the legacy payload's and not another column's."""
        return [name for name in row if name not in self.shape().columns] == ["model_id"]
