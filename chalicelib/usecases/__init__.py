"""The service layer: what the entry points ask for, orchestrated over the domain and the adapters.

- `jobs`: one function per job route (create and enqueue, retry, cancel, delete, clear, list, stats).
- `intake`: an SQS message's job spec validated like a create, and the job created when it is new.
- `dead_letter`: a dead-lettered message marks its job failed `DEAD_LETTERED`.

Nothing below this package imports it (tests/unit/test_package_layers.py).
"""
