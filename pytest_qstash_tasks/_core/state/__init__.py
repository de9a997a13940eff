"""What the fake keeps: the tasks and their pages, published messages and their
deliveries, the calls that reached it, the faults planned, the loop guard's streaks.
Pure data and the rules that keep it consistent: no HTTP, no time of its own."""
