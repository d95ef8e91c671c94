"""Writers that insert usage rows for as long as a test runs something."""

import threading
import time
from dataclasses import dataclass, field

import psycopg

INSERT = ("insert into public.llm_usage (provider_name, model_name, agent_name, prompt_tokens, completion_tokens) "
          "values ('openai', 'gpt-4o-mini', %s, 10, 5) returning id")


@dataclass
class Writer:
    url: str
    name: str
    pause: float
    stop: threading.Event
    ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    self.ids.append(conn.execute(INSERT, (self.name,)).fetchone()[0])
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                time.sleep(self.pause)


class TeamWriter(threading.Thread):
    """Usage rows by name, as the agents write them, until stopped: `inserted` counts them."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.inserted, self.errors = url, threading.Event(), 0, []

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    conn.execute("insert into llm_usage (provider_name, model_name, agent_name, prompt_tokens) "
                                 "values ('openai', 'gpt-4o', 'team-writer', 3)")
                    self.inserted += 1
                except psycopg.Error as exc:
                    self.errors.append(str(exc))


class Writers:
    """with Writers(url, 2) as w: ... — w.ids and w.errors after the block; every id is recorded."""

    def __init__(self, url: str, count: int = 2, pause: float = 0.002):
        self.stop = threading.Event()
        self.writers = [Writer(url, f"writer-{n}", pause, self.stop) for n in range(count)]
        self.threads = [threading.Thread(target=w.run, daemon=True) for w in self.writers]

    def __enter__(self) -> "Writers":
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 10
        while not all(w.ids for w in self.writers) and time.monotonic() < deadline:
            time.sleep(0.01)  # every writer is inserting before the work starts
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.05)  # and still inserting after it ends
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    @property
    def ids(self) -> list[int]:
        return sorted(i for w in self.writers for i in w.ids)

    @property
    def errors(self) -> list[str]:
        return [e for w in self.writers for e in w.errors]


class Client(threading.Thread):
    """One client's statement, run again and again on its own connection until stopped, as an agent or a report
    does: `ids` holds what an INSERT ... RETURNING id gave back, `errors` every failure, `calls` the count run."""

    def __init__(self, url: str, statement: str, pause: float = 0.002):
        super().__init__(daemon=True)
        self.url, self.statement, self.pause = url, statement, pause
        self.stop = threading.Event()
        self.ids: list[int] = []
        self.errors: list[str] = []
        self.calls = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    rows = conn.execute(self.statement).fetchall()
                    self.calls += 1
                    if self.statement.lower().startswith("insert"):
                        self.ids += [r[0] for r in rows]
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                time.sleep(self.pause)

    def halt(self) -> None:
        self.stop.set()
        self.join(timeout=30)


def start(*clients: Client) -> None:
    """Start the clients and wait until each has run once."""
    for client in clients:
        client.start()
    deadline = time.monotonic() + 10
    while not all(c.calls or c.errors for c in clients) and time.monotonic() < deadline:
        time.sleep(0.01)
