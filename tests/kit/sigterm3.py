"""`vssl -p kit.sigterm3 train ...`: the run receives SIGTERM at the end of step 3."""

from kit.faults import SigtermAt

_plugin = SigtermAt(3)
vssl_step_end = _plugin.vssl_step_end
