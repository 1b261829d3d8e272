"""Hub controllers. `federation` runs the loop (placement, health/failover, status, deletion);
`health`, `status`, `snapshot` and `placing` hold its decisions as pure, table-tested functions."""
