"""Per-sender limits hold when several processors count the same sender at once (SPEC §11;
gateway/store/limits.py `hold_senders`): on PostgreSQL a transaction that holds a sender waits out
another transaction's count of the same sender; on SQLite the write lock already does that.

The end-to-end proof is in test_held_outcomes.py and test_my_tickets.py, whose hourly limits held
exactly once a PostgreSQL node ran two worker processes only with these locks."""

from __future__ import annotations

import threading
import time

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from gateway.store.db import make_session_factory, unit_of_work
from gateway.store.limits import hold_senders, sender_key


def test_a_second_transaction_waits_for_the_first_to_end_before_it_counts_the_sender(
    fresh_postgres: str,
) -> None:
    engine = create_engine(fresh_postgres)
    sessions = make_session_factory(engine)
    first_holds, waited = threading.Event(), []

    def second() -> None:
        first_holds.wait(10)
        started = time.monotonic()
        with unit_of_work(sessions) as session:
            hold_senders(session, ["  Maria@Customer.example"])  # the same sender, written otherwise
            waited.append(time.monotonic() - started)

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with unit_of_work(sessions) as session:
            hold_senders(session, ["maria@customer.example", "other@customer.example"])
            hold_senders(session, ["maria@customer.example"])  # held already: no second lock taken
            first_holds.set()
            time.sleep(0.5)  # the second transaction must still be waiting now
            assert waited == []
    finally:
        thread.join(10)
        engine.dispose()
    assert len(waited) == 1 and waited[0] >= 0.4


def test_another_sender_is_not_held_up(fresh_postgres: str) -> None:
    engine = create_engine(fresh_postgres)
    sessions = make_session_factory(engine)
    done = threading.Event()
    try:
        with unit_of_work(sessions) as session:
            hold_senders(session, ["maria@customer.example"])

            def other() -> None:
                with unit_of_work(sessions) as second:
                    hold_senders(second, ["jo@customer.example"])
                done.set()

            thread = threading.Thread(target=other)
            thread.start()
            assert done.wait(5), "a transaction holding another sender was kept waiting"
            thread.join()
    finally:
        engine.dispose()


@given(st.emails(), st.sampled_from([str.upper, str.lower, str.title]), st.sampled_from(["", " ", "\t"]))
def test_the_key_is_the_address_whatever_its_case_and_surrounding_space(
    address: str, case: object, space: str
) -> None:
    assert sender_key(space + case(address) + space) == sender_key(address)  # type: ignore[operator]
    assert -(2**63) <= sender_key(address) < 2**63
