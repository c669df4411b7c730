"""The per-theorem walk: ground-truth path in Lean, policy candidates at every state, labelled tree.

One coroutine per theorem (:func:`walk_theorem`), split by concern:

* ``context``      the walk's state (tree, attempts, counters) and its one path to Lean (``send``/``log``)
* ``start``        ``copyFrom`` + ``intro``: reach the trace's first state
* ``align``        which of Lean's goals each ground-truth step works on
* ``ground_truth`` a ground-truth step, retried inside ``open … in`` on a Lean failure
* ``candidates``   the policy's candidates at a state, sent and labelled; ``chains`` their later tactics
* ``theorem``      the loop, the per-theorem budget, the result

Fixes over the reference implementation (SPEC §4): the ground-truth tactic is retried as
``open <prefixes> in <tactic>`` on a *Lean* failure (not only on a transport error); a per-theorem
timeout keeps every record produced so far (the tree lives outside the timed coroutine) and marks the
theorem ``timed_out``; an infrastructure failure (process died, hung, answered garbage) fails only that
request: the session replays its path on another process, and the walk retries the request once
(ground-truth steps: ``infra_retries`` times) or skips that candidate. Nothing already recorded is lost.
"""

from workbench.mining.records import Attempt, EndReason, Status, TheoremResult
from workbench.mining.walk.context import WalkParams
from workbench.mining.walk.theorem import walk_theorem

__all__ = ["WalkParams", "Attempt", "TheoremResult", "Status", "EndReason", "walk_theorem"]
