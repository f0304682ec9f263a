"""Episode views: copy-on-write overlay, fork isolation, commit policy, working notes."""

from __future__ import annotations

from reasonloop.memory import MemorySessions, MemoryStore, MemoryView

NS = ("facts", "u", "a", "f")
NOTES = ("notes", "u", "a", "f")


def test_writes_stay_in_the_view_until_commit(store: MemoryStore) -> None:
    store.put(NS, "base", {"text": "the base fact about rivers"})
    view = MemoryView(store, episode_id="ep-1")
    view.put(NS, "mine", {"text": "my own fact about rivers"})
    view.delete(NS, "base")
    assert store.get(NS, "mine") is None and store.get(NS, "base") is not None
    assert view.get(NS, "base") is None and view.get(NS, "mine") == {"text": "my own fact about rivers"}
    assert [h.key for h in view.search(("facts",), "rivers")] == ["mine"]
    assert view.commit() == 2
    assert store.get(NS, "base") is None and store.get(NS, "mine") is not None
    log = [(e["op"], e["key"], e["actor"]) for e in store.history(NS)]
    assert log == [("put", "base", ""), ("put", "mine", "ep-1"), ("delete", "base", "ep-1")]


def test_fork_isolates_siblings(store: MemoryStore) -> None:
    parent = MemoryView(store, episode_id="p")
    parent.put(NS, "shared", {"text": "written before the fork"})
    child = parent.fork("c")
    parent.put(NS, "left", {"text": "left branch marker"})
    child.put(NS, "right", {"text": "right branch marker"})
    child.delete(NS, "shared")
    assert parent.get(NS, "right") is None and child.get(NS, "left") is None
    assert parent.get(NS, "shared") is not None and child.get(NS, "shared") is None
    assert [h.key for h in parent.search(("facts",), "branch marker")] == ["left"]
    assert [h.key for h in child.search(("facts",), "branch marker")] == ["right"]
    grandchild = child.fork()
    grandchild.put(NS, "deep", {"text": "deep marker"})
    assert child.get(NS, "deep") is None and grandchild.get(NS, "right") is not None


def test_sessions_commit_policy_and_working_notes(store: MemoryStore) -> None:
    keep, drop = MemorySessions(store, commit="on_close"), MemorySessions(store, commit="never")
    v1, v2 = keep.open(), drop.open()
    v1.put(NS, "kept", {"text": "kept fact"})
    v1.put(NOTES, "note", {"text": "scratch note"})
    v2.put(NS, "dropped", {"text": "dropped fact"})
    forked = keep.fork(v1)
    keep.close(v1)
    drop.close(v2)
    keep.close(v1)  # idempotent
    assert store.get(NS, "kept") is not None
    assert store.get(NS, "dropped") is None
    assert store.get(NOTES, "note") is None  # working notes die with the episode
    assert forked.get(NOTES, "note") is not None  # the fork still has its copy
    assert v1.closed and v1.committed == 1


def test_a_branch_that_commits_early_does_not_leak_into_its_sibling(store: MemoryStore) -> None:
    store.put(NS, "code", {"text": "the door code is 1111"})
    parent = MemoryView(store, episode_id="p")
    parent.put(NS, "seen", {"text": "parent note before the fork"})
    child = parent.fork("c")
    child.put(NS, "code", {"text": "the door code is 2222"})
    child.put(NS, "child-only", {"text": "child marker"})
    child.close(commit=True)
    assert store.get(NS, "code").value["text"] == "the door code is 2222"  # type: ignore[union-attr]
    # The parent still reads what the store held before its family committed.
    assert parent.get(NS, "code") == {"text": "the door code is 1111"}
    assert parent.get(NS, "child-only") is None
    assert [h.value["text"] for h in parent.search(("facts",), "door code")] == ["the door code is 1111"]
    assert parent.search(("facts",), "child marker") == []
    # An unrelated episode sees the committed value.
    assert MemoryView(store).get(NS, "code") == {"text": "the door code is 2222"}
