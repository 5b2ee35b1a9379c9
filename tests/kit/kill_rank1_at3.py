"""`vssl -p kit.kill_rank1_at3 train ...` under torchrun: rank 1 is killed at the end of step 3."""

from kit.faults import KillRankAt

_plugin = KillRankAt(3, 1)
vssl_step_end = _plugin.vssl_step_end
