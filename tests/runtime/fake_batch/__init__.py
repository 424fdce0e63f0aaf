"""A fake SLURM/PBS for the job-queue tests: see :mod:`fake_batch.fakebatch`."""
