"""``comfywire.Pool`` and ``comfywire.AsyncPool`` over three in-process
mocks: every prompt of a batch ends once, spread over the servers, checked
against each mock's own ledger of what it enqueued and ran."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Dict, Iterator, List, Set, Tuple

import pytest

import comfywire
from comfywire.testing import MockServer

Mocks = Tuple[MockServer, MockServer, MockServer]


@pytest.fixture
def mocks() -> Iterator[Mocks]:
    with MockServer(speed=20.0) as a, MockServer(speed=20.0) as b, MockServer(speed=20.0) as c:
        yield (a, b, c)


def servers(mocks: Mocks) -> List[Dict[str, object]]:
    return [{"url": m.url, "label": f"gpu{i}"} for i, m in enumerate(mocks)]


def check_ledgers(mocks: Mocks, outcomes: List[comfywire.PoolOutcome]) -> Counter[str]:
    """Each prompt enqueued and run exactly once over the three mocks, on
    the server its outcome names; answers how many each one ran."""
    ledgers = [m.ledger()["entries"] for m in mocks]
    ran: Counter[str] = Counter()
    for outcome in outcomes:
        where = [
            i
            for i, entries in enumerate(ledgers)
            for e in entries
            if e["prompt_id"] == outcome.prompt_id and e["enqueued"]
        ]
        runs = sum(e["runs"] for entries in ledgers for e in entries if e["prompt_id"] == outcome.prompt_id)
        assert where == [int(outcome.server[3:])], (outcome, where)
        assert runs == 1, (outcome, runs)
        ran[outcome.server] += 1
    return ran


def test_a_batch_over_three_servers_ends_once_each_and_spreads(mocks: Mocks) -> None:
    workflow = mocks[0].sample_workflow()
    with comfywire.Pool(servers(mocks), grace=10) as pool:
        assert pool.labels == ["gpu0", "gpu1", "gpu2"]
        assert pool.wait_healthy(timeout=10) == 3
        # The first pull starts the queue; what a server said since it came
        # up (a late `status`) may be there already: taken until none is left.
        assert any(pool.next_event() is None for _ in range(100))
        outcomes = pool.map([workflow] * 30, timeout=60)

        assert len({o.prompt_id for o in outcomes}) == 30
        for o in outcomes:
            assert o.succeeded, o
            assert o.servers == (o.server,) and o.moves == ()
            assert o.outcome is not None and o.outcome.prompt_id == o.prompt_id
            assert o.files and o.outputs
        ran = check_ledgers(mocks, outcomes)
        assert sorted(ran) == ["gpu0", "gpu1", "gpu2"]
        assert max(ran.values()) <= 1.5 * min(ran.values()), ran

        # One `finished` event per submission, on the server it ended on.
        finished: Counter[str] = Counter()
        seen_progress: Set[str] = set()
        while sum(finished.values()) < 30:
            event = pool.next_event(timeout=10)
            assert event is not None, "an outcome never came"
            assert event.server in ran
            if isinstance(event, comfywire.PoolFinished):
                assert event.outcome.succeeded
                finished[event.prompt_id] += 1
            else:
                # A server's own events are the client's typed classes.
                assert isinstance(event, comfywire.ServerEvent), event
                assert event.kind == event.event.kind
                if isinstance(event.event, comfywire.Progress):
                    seen_progress.add(event.server)
        assert set(finished) == {o.prompt_id for o in outcomes}
        assert set(finished.values()) == {1}
        assert seen_progress <= set(ran) and seen_progress, seen_progress

        stats = {s.label: s for s in pool.stats()}
        assert all(s.healthy and s.in_flight == 0 for s in stats.values())
        assert {label: s.done for label, s in stats.items()} == dict(ran)
    with pytest.raises(comfywire.ClientClosed):
        pool.submit(workflow)


def test_run_wait_and_errors(mocks: Mocks) -> None:
    a = mocks[0]
    pool = comfywire.Pool([m.url for m in mocks])  # plain URLs: labelled host:port
    try:
        assert pool.wait_healthy(timeout=10) == 3
        assert pool.labels == [m.url.split("://")[1] for m in mocks]
        outcome = pool.run(a.sample_workflow(), timeout=60)
        assert outcome.succeeded and outcome.server in pool.labels
        prompt_id = pool.submit(a.sample_workflow())
        with pytest.raises(comfywire.WaitTimeout):
            pool.wait(prompt_id, timeout=0.001)
        assert pool.wait(prompt_id, timeout=60).succeeded
        with pytest.raises(comfywire.ComfyWireError):
            pool.wait("no-such-submission", timeout=1)
        with pytest.raises(ValueError):
            comfywire.Pool([{"label": "no url"}])
        with pytest.raises(TypeError):
            comfywire.Pool("http://one-url-is-not-a-list")
    finally:
        pool.close()
        pool.close()


def test_a_class_no_server_has_is_refused_naming_it(mocks: Mocks) -> None:
    workflow = mocks[0].sample_workflow()
    unknown = dict(workflow)
    unknown["99"] = {"class_type": "NoServerHasThis", "inputs": {}}
    # No mock lists the class in /object_info: the pool refuses the graph
    # before any server sees it.
    with comfywire.Pool(servers(mocks)) as pool:
        assert pool.wait_healthy(timeout=10) == 3
        with pytest.raises(comfywire.ValidationError) as refused:
            pool.submit(unknown)
        assert "NoServerHasThis" in str(refused.value)
        assert refused.value.detail is not None
        assert refused.value.detail["missing"] == ["NoServerHasThis"]
    assert all(not m.ledger()["entries"] for m in mocks)


def test_the_async_pool_runs_a_batch_on_the_loop(mocks: Mocks) -> None:
    workflow = mocks[0].sample_workflow()

    async def main() -> List[comfywire.PoolOutcome]:
        async with comfywire.AsyncPool(servers(mocks)) as pool:
            assert await pool.wait_healthy(timeout=10) == 3
            # The first pull starts the queue (late `status` frames drained).
            for _ in range(100):
                if await pool.next_event() is None:
                    break
            else:
                pytest.fail("the pull queue never emptied")
            ids = [await pool.submit(workflow) for _ in range(12)]
            outcomes = await asyncio.gather(*(pool.wait(i, timeout=60) for i in ids))
            assert [o.prompt_id for o in outcomes] == ids
            # The events of the batch: each submission's one outcome, the
            # same as `wait` answered.
            ended: Dict[str, comfywire.PoolOutcome] = {}
            while len(ended) < len(ids):
                event = await pool.next_event(timeout=10)
                assert event is not None, "an outcome never came"
                if isinstance(event, comfywire.PoolFinished):
                    assert event.prompt_id not in ended
                    ended[event.prompt_id] = event.outcome
            assert ended == {o.prompt_id: o for o in outcomes}
            one = await pool.run(workflow, timeout=60)
            return [*outcomes, one]

    outcomes = asyncio.run(main())
    assert all(o.succeeded for o in outcomes)
    ran = check_ledgers(mocks, outcomes)
    assert sum(ran.values()) == 13 and len(ran) == 3, ran
