"""What moves the fake: its clock, and the delivery of published messages as the clock
reaches them (the courier, the receivers, the signatures, the retry delay, the
destinations' scripts)."""
