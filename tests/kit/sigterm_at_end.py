"""`vssl -p kit.sigterm_at_end ...`: SIGTERM while each run ends, after its last step."""

from kit.faults import SigtermAtTrainEnd

_plugin = SigtermAtTrainEnd()
vssl_train_end = _plugin.vssl_train_end
