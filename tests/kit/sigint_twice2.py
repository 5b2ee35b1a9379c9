"""`vssl -p kit.sigint_twice2 train ...`: Ctrl-C pressed twice at the end of step 2."""

import signal

from kit.faults import SignalAt

_plugin = SignalAt(2, signal.SIGINT, times=2)
vssl_step_end = _plugin.vssl_step_end
