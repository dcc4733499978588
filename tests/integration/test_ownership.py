"""One owner per run (runner.store.ownership) on each real S3 server (moto and SeaweedFS) and on a local store: a
held run is refused with its holder, a lease that is renewed holds, a killed owner's lease is taken over within
its bound, the loser of a takeover writes nothing, a released lease is free at once."""

import os
import time

import boto3
import pytest

from runner.errors import OwnershipLost, RunHeld
from runner.layout import LEASE_FILE
from runner.store import RunStore, lease_holder, open_store
from runner.store.ownership import S3Lease

RUN = "baseline-tiny-s0"
SECONDS = 2.0  # the tests' lease; the default is 120 s


@pytest.fixture
def store(s3_bucket):
    found = open_store(f"s3://{s3_bucket}/runs")
    found.check()
    return found


def killed(lease: S3Lease) -> None:
    """As if its process were SIGKILLed: the heartbeat stops, nothing is released."""
    lease._stop.set()
    lease._thread.join()


def test_a_held_run_is_refused_with_its_holder(store):
    first = S3Lease(store, RUN, SECONDS)
    first.acquire()
    try:
        with pytest.raises(RunHeld, match=rf"run {RUN} is held by \S+ pid {os.getpid()} until \d\d:\d\d:\d\d"):
            S3Lease(store, RUN, SECONDS).acquire()
        holder = lease_holder(store, RUN)
        assert holder is not None and f"pid {os.getpid()}" in holder.who and 0 < holder.seconds_left <= SECONDS
    finally:
        first.release()
    assert lease_holder(store, RUN) is None  # released: free at once
    again = S3Lease(store, RUN, SECONDS)
    again.acquire()
    again.release()


def test_the_heartbeat_keeps_the_lease_past_its_lifetime(store):
    owner = S3Lease(store, RUN, SECONDS)
    owner.acquire()
    try:
        time.sleep(3 * SECONDS)  # three lifetimes: only the renewals keep it
        with pytest.raises(RunHeld):
            S3Lease(store, RUN, SECONDS).acquire()
        owner.check()  # still its own
    finally:
        owner.release()


def test_a_killed_owners_lease_is_taken_over_within_its_bound_and_the_loser_writes_nothing(store, s3_bucket):
    loser = S3Lease(store, RUN, SECONDS)
    loser.acquire()
    killed(loser)
    started = time.monotonic()
    with pytest.raises(RunHeld):
        S3Lease(store, RUN, SECONDS).acquire()
    taker = S3Lease(store, RUN, SECONDS)
    while True:  # the store's clock has 1 s steps: at most the bound plus two of them
        try:
            taker.acquire()
            break
        except RunHeld:
            assert time.monotonic() - started < SECONDS + 2.5
            time.sleep(0.2)
    try:
        assert time.monotonic() - started >= SECONDS - 1  # not before it expired
        with pytest.raises(OwnershipLost):
            loser.check()
        run = RunStore(store, RUN)
        run.owner = loser
        with pytest.raises(OwnershipLost):
            run.save_checkpoint(10, b"a checkpoint of the process that lost the run")
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
        assert keys == [f"runs/{RUN}/{LEASE_FILE}"]  # nothing of the loser's
    finally:
        taker.release()


def test_a_lease_that_is_not_a_lease_is_taken_over(store):
    store.write(f"{RUN}/{LEASE_FILE}", b"\x00 planted, not json")
    lease = S3Lease(store, RUN, SECONDS)
    lease.acquire()
    lease.check()
    lease.release()


def test_a_local_run_is_held_by_a_lock_with_the_owners_pid(tmp_path):
    store = open_store(str(tmp_path))
    with RunStore(store, RUN).owned():
        with pytest.raises(RunHeld, match=f"held by process {os.getpid()} on this machine"):
            with RunStore(store, RUN).owned():
                pass
    with RunStore(store, RUN).owned():  # released with the block
        pass
