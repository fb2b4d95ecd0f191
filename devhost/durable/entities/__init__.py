"""Durable entities as the extension runs them for out-of-process languages on the Azure Storage provider.

What is followed (extension 2.x/3.x "legacy" entities, the ones Python apps get):

* An entity is an instance with id ``@{name lower-cased}@{key}`` in the task hub's tables and queues.
* Operations travel as ``EventRaised`` messages named ``op`` whose input is a ``RequestMessage``
  (``id``, ``op``, ``signal``, ``input``, ``parent``, ``timestamp``); an orchestration's call or signal
  is recorded in its history as ``EventSent`` with the next sequence id, and a call's answer comes back
  as ``EventRaised`` named by the request id, holding a ``ResponseMessage`` (``result``, and
  ``exceptionType`` for a failed operation), which is what the Python SDK matches.
* The entity function gets a batch: ``{"self": {"name", "key"}, "exists", "state", "batch": [{"name",
  "input"}...]}`` and answers ``{"entityExists", "entityState", "results": [...], "signals": [...]}``.
* After each batch the entity continues as new: its history is one generation (``OrchestratorStarted``,
  ``ExecutionStarted`` whose input is the scheduler state, ``OrchestratorCompleted``), its Instances row
  is Running with the same state as input.

Where devhost goes its own way: the scheduler state is ``{"exists", "state", "processed"}``, where
``processed`` lists the request ids of recent operations so that a message redelivered after a crash
is not applied twice (the extension's message sorter does this per sender for orchestrations only).
Locks (critical sections) are not supported.
"""
