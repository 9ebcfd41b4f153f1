"""`make chaos`: the fault-injection run of issue 11 (workers killed, S3 and MongoDB faults, duplicates)."""
