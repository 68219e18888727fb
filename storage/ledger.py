"""Our own rows beside Optuna's tables: what Optuna's storage API cannot do atomically.

* Finalisation claims: one row per (study key, round). The study key is the study's name plus
  a creation nonce and its data fingerprint, so a study deleted and created again under the same
  name never sees its predecessor's rows; a round is one set of confirmation candidates. A
  worker wins the right to confirm and test-score by a conditional ``UPDATE`` (rowcount 1 wins)
  with a lease on the database clock, renewed while it works; a holder that is dead on this
  host is replaced at once (:meth:`Ledger.take_over`), any other when its lease runs out.
  ``done`` rows keep the exported record.
* Publication: one row per study key naming the round whose record is published and the count
  of complete trials it was chosen from. :meth:`Ledger.publish` is a compare-and-set (a
  conditional ``UPDATE``, or the first ``INSERT``): a round chosen from fewer complete trials
  than the published one never replaces it, so publishing is monotone however late an old
  round's finaliser comes back.
* The budget lock: a short critical section per study around "count trials, then ask", so N
  workers never start more trials than the study's budget (PostgreSQL: a transaction-scoped
  advisory lock; SQLite: an ``flock`` on a file beside the database, one host only).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()

finalisation = Table(
    "optimise_finalisation_v2",
    metadata,
    Column("study_key", String(700), primary_key=True),
    Column("round_key", String(64), primary_key=True),
    Column("trial_number", Integer, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("owner", String(256), nullable=True),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("finished_at", Float, nullable=True),  # database clock: orders a study's rounds
    Column("result", Text, nullable=True),
)


publication = Table(
    "optimise_publication",
    metadata,
    Column("study_key", String(700), primary_key=True),
    Column("round_key", String(64), nullable=False),
    Column("complete_trials", Integer, nullable=False),  # what the round was chosen from
    Column("trial_number", Integer, nullable=False),  # the round's winner
    Column("published_at", Float, nullable=False),  # database clock
)


@dataclass(frozen=True)
class Publication:
    """The round whose record is published for a study: chosen from ``complete_trials``
    complete trials, won by ``trial_number``."""

    round_key: str
    complete_trials: int
    trial_number: int


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: ``won`` (you finalise), ``done`` (result ready) or ``busy``
    (``owner`` holds it)."""

    state: str
    result: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Round:
    """A finished finalisation round of a study."""

    round_key: str
    trial_number: int
    result: str


class Ledger:
    """Access to our tables on the same database as the studies, through Optuna's own engine
    (built by :class:`storage.database.Database`; the ledger never opens an engine itself).

    ``sqlite_path`` is the SQLite database file (``None`` for PostgreSQL or in-memory SQLite):
    the budget lock's ``flock`` file sits beside it.
    """

    def __init__(self, engine: Engine, sqlite_path: Path | None = None) -> None:
        self.engine = engine
        self._sqlite_path = sqlite_path
        self._thread_lock = threading.Lock()
        for attempt in range(5):
            try:
                metadata.create_all(self.engine)
                break
            except (IntegrityError, ProgrammingError):  # another worker created it meanwhile
                time.sleep(0.2 * (attempt + 1))

    def _now(self) -> ColumnElement[float]:
        """Seconds since the epoch on the database's clock."""
        if self.engine.dialect.name == "sqlite":
            return (func.julianday("now") - 2440587.5) * 86400.0
        # SQLAlchemy types EXTRACT as an integer; EXTRACT(epoch ...) is fractional seconds
        return func.extract("epoch", func.now())  # type: ignore[return-value]

    @staticmethod
    def _key(study_key: str, round_key: str) -> ColumnElement[bool]:
        return and_(finalisation.c.study_key == study_key, finalisation.c.round_key == round_key)

    def claim(
        self, study_key: str, round_key: str, trial_number: int, owner: str, lease_s: float
    ) -> Claim:
        """Try to take the finalisation round; at most one live holder wins.

        Idempotent for one ``owner`` (unique per finalisation attempt): a claim repeated after
        its first attempt committed (a retry whose acknowledgement was lost) finds the round
        held by ``owner`` and wins again, renewing the lease, instead of waiting for itself."""
        key = self._key(study_key, round_key)
        with contextlib.suppress(IntegrityError), self.engine.begin() as connection:
            if connection.execute(select(finalisation.c.status).where(key)).first() is None:
                connection.execute(
                    insert(finalisation).values(
                        study_key=study_key,
                        round_key=round_key,
                        trial_number=trial_number,
                        status="pending",
                        owner=None,
                        lease_until=0.0,
                    )
                )
        with self.engine.begin() as connection:
            now = self._now()
            won = connection.execute(
                update(finalisation)
                .where(key)
                .where(finalisation.c.status == "pending")
                .where(
                    or_(
                        finalisation.c.owner.is_(None),
                        finalisation.c.owner == owner,  # ours already: a repeated claim
                        finalisation.c.lease_until < now,
                    )
                )
                .values(owner=owner, lease_until=now + lease_s)
            ).rowcount
            if won == 1:
                return Claim("won")
            row = connection.execute(
                select(finalisation.c.status, finalisation.c.result, finalisation.c.owner).where(
                    key
                )
            ).one()
        if row.status == "done":
            return Claim("done", row.result)
        return Claim("busy", owner=row.owner)

    def _update_pending(
        self, study_key: str, round_key: str, holder: str | tuple[str, ...], **values
    ) -> bool:
        """A conditional UPDATE of a pending round held by ``holder`` (or by one of several);
        ``True`` if it applied."""
        holders = (holder,) if isinstance(holder, str) else holder
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(finalisation)
                    .where(self._key(study_key, round_key))
                    .where(finalisation.c.status == "pending")
                    .where(finalisation.c.owner.in_(holders))
                    .values(**values)
                ).rowcount
                == 1
            )

    def take_over(
        self, study_key: str, round_key: str, dead_owner: str, owner: str, lease_s: float
    ) -> bool:
        """Take a pending round from ``dead_owner`` (known dead); ``True`` if it is now ours.
        Idempotent: repeated after its first attempt committed, it finds the round ours."""
        lease = self._now() + lease_s
        return self._update_pending(
            study_key, round_key, (dead_owner, owner), owner=owner, lease_until=lease
        )

    def renew(self, study_key: str, round_key: str, owner: str, lease_s: float) -> bool:
        """Extend our lease; ``False`` if the round is no longer ours."""
        return self._update_pending(study_key, round_key, owner, lease_until=self._now() + lease_s)

    def complete(self, study_key: str, round_key: str, owner: str, result: str) -> bool:
        """Record the result; ``False`` if the lease was lost to another worker meanwhile.

        Idempotent: repeated after its first attempt committed, it finds the round done by
        ``owner`` (``complete`` keeps the owner, and no one else completes a round ``owner``
        holds) and returns ``True`` again."""
        key = self._key(study_key, round_key)
        with self.engine.begin() as connection:
            applied = connection.execute(
                update(finalisation)
                .where(key)
                .where(finalisation.c.status == "pending")
                .where(finalisation.c.owner == owner)
                .values(status="done", result=result, finished_at=self._now())
            ).rowcount
            if applied == 1:
                return True
            row = connection.execute(
                select(finalisation.c.status, finalisation.c.owner).where(key)
            ).first()
        return row is not None and row.status == "done" and row.owner == owner

    def release(self, study_key: str, round_key: str, owner: str) -> None:
        """Give up a claim after a failure so another worker may take it at once."""
        self._update_pending(study_key, round_key, owner, owner=None, lease_until=0.0)

    def rounds(self, study_key: str) -> list[Round]:
        """Finished finalisation rounds of one study (this incarnation only), oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(finalisation.c.round_key, finalisation.c.trial_number, finalisation.c.result)
                .where(finalisation.c.study_key == study_key)
                .where(finalisation.c.status == "done")
                .order_by(finalisation.c.finished_at, finalisation.c.round_key)
            ).all()
        return [Round(r.round_key, r.trial_number, r.result) for r in rows]

    def publish(
        self, study_key: str, round_key: str, complete_trials: int, trial_number: int
    ) -> Publication | None:
        """Make ``round_key`` the study's published round unless a newer one is: compare and
        set in one transaction. Newer means chosen from more complete trials; a round chosen
        from as many replaces the published one (a re-export, other confirmation settings).

        Returns ``None`` when the round is now the published one (also when it already was),
        else the newer published round that refused it.
        """
        key = publication.c.study_key == study_key
        for _ in range(10):  # each pass either decides or lost a race to a first INSERT
            values = {
                "round_key": round_key,
                "complete_trials": complete_trials,
                "trial_number": trial_number,
                "published_at": self._now(),
            }
            with self.engine.begin() as connection:
                applied = connection.execute(
                    update(publication)
                    .where(key)
                    .where(publication.c.complete_trials <= complete_trials)
                    .values(**values)
                ).rowcount
                if applied == 1:
                    return None
                row = connection.execute(
                    select(
                        publication.c.round_key,
                        publication.c.complete_trials,
                        publication.c.trial_number,
                    ).where(key)
                ).first()
            if row is not None:
                if row.complete_trials > complete_trials:
                    return Publication(row.round_key, row.complete_trials, row.trial_number)
                continue  # committed between our UPDATE and SELECT: try again
            with contextlib.suppress(IntegrityError), self.engine.begin() as connection:
                connection.execute(insert(publication).values(study_key=study_key, **values))
                return None
        raise RuntimeError(f"could not record the published round of {study_key}")

    def published(self, study_key: str) -> Publication | None:
        """The study's published round (``None`` before the first publication)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    publication.c.round_key,
                    publication.c.complete_trials,
                    publication.c.trial_number,
                ).where(publication.c.study_key == study_key)
            ).first()
        return None if row is None else Publication(*row)

    @contextlib.contextmanager
    def budget_lock(self, study_name: str) -> Iterator[None]:
        """Serialise "count, then ask" for one study across processes (and threads)."""
        with self._thread_lock:
            if self.engine.dialect.name == "postgresql":
                key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big")
                key -= 1 << 63 if key >= 1 << 63 else 0
                with self.engine.begin() as connection:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                    yield
                return
            if self._sqlite_path is None:  # in-memory: one process, the thread lock is enough
                yield
                return
            lock_file = Path(f"{self._sqlite_path}.lock")
            with open(lock_file, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)


def trial_counts(engine: Engine, study_id: int) -> dict[str, int]:
    """Trials of a study by state name, read in one query from Optuna's ``trials`` table."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT state, COUNT(*) FROM trials WHERE study_id = :sid GROUP BY state"),
            {"sid": study_id},
        ).all()
    return {str(getattr(state, "name", state)).split(".")[-1]: int(n) for state, n in rows}


def interrupted_count(engine: Engine, study_id: int) -> int:
    """FAIL trials that were interrupted (user attr ``interrupted``), not failures."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT COUNT(*) FROM trials t JOIN trial_user_attributes a "
                    "ON a.trial_id = t.trial_id WHERE t.study_id = :sid "
                    "AND a.key = 'interrupted' AND a.value_json = 'true'"
                ),
                {"sid": study_id},
            ).scalar_one()
        )
