"""Batch work on clusters people already run (Ray): :mod:`.ray_batch` schedules files on actors that each
hold one engine built by :mod:`.worker`. Needs the ``cluster`` extra; depends on the engine, never the reverse."""
